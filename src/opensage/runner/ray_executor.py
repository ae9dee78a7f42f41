"""The Ray executor: each host of a job runs on a node of the cluster.

The only module that imports Ray (lazily: ``ray`` is the optional ``ray`` extra). It is the
local executor with one step replaced: where ``LocalExecutor._attempt`` stages the hosts'
directories on this machine and starts their processes, this one

- reserves the job's hosts as one placement group (a bundle of CPUs, memory and GPUs from
  the instance type per host, spread across nodes where the cluster has them); while the
  cluster has no room the job stays ``Starting`` with a StatusMessage saying it waits for
  capacity;
- opens a :class:`runner.remote_host.RemoteHost` per host in this server's agent on the node
  its bundle was placed on (:class:`runner.node_agent.NodeAgent`, one long-lived actor per
  node, so a job starts no Python process but its own, forked warm for a built-in); the
  host stages its channels and checkpoints through the server's S3 facade, runs the same
  command, and uploads the model through S3 (``RemoteHost.finish``);
- hands ``_supervise`` a :class:`RayProcess` per host, the part of ``Popen`` it uses, whose
  ``stdout`` is fed with the lines the host hands out: logs, metrics, stop, MaxRuntime
  and the first failure are the local executor's code.

Script mode runs there too: each host unpacks the code and gets the framework's environment
on its node (``RemoteHost.stage``); the hosts of a multi-host job meet at algo-1's node
(``MASTER_ADDR``/``MASTER_PORT``, torchrun's ``--master_addr``), their placement spread
across nodes. Own images and EnableNetworkIsolation run with the local executor.

Under ``--auth sigv4`` the hosts sign their S3 calls with a session the server issued for the
job (``_endpoint``): its role's, so the facade checks them as the role, else a short-lived one
of the server's own; a denial fails the job as the local check's does.

A node lost mid-job (its agent dies) makes the attempt ``Interrupted``: a job with a
CheckpointConfig then restarts from its checkpoints (the spot loop of ``LocalExecutor._run``),
one without fails saying which host's node was lost. The agents belong to this server's Ray
driver: when the server dies they die with it, their hosts' processes too, and the next
start runs the job again.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from opensage.algorithms.contract import is_peer_failure
from opensage.data.archives import ArchiveLimits
from opensage.runner import processing
from opensage.runner.channels import ChannelError
from opensage.runner.checkpoints import CheckpointSync
from opensage.runner.environments import EnvironmentBuildError
from opensage.runner.job_role import JobRoles, RoleDenied
from opensage.runner.local import (
    DEFAULT_ARCHIVE_LIMITS,
    ExecutorClosing,
    JobEnded,
    JobFailure,
    LocalExecutor,
    Outcome,
    TrainingEvents,
    TrainingSpec,
    _failed,
    _Host,
    _input_data_config,
    _processing_ended,
    _processing_timeout,
    _Run,
)
from opensage.runner.node_agent import NodeAgent
from opensage.runner.object_access import ObjectAccess, S3Endpoint
from opensage.runner.processing import ProcessingSpec
from opensage.runner.remote_host import HostUnfit
from opensage.runner.toolkit import script
from opensage.runner.workspace import Workspace, ray_resources
from opensage.store.objects import ObjectStore

log = logging.getLogger(__name__)
MISSING_EXTRA = ("The Ray executor needs Ray, which is the optional 'ray' extra of opensage: "
                 "install it with `pip install 'opensage[ray]'` (or `uv sync --extra ray`)")
CAPACITY_POLL_SECONDS = 1.0
SESSION_MARGIN_SECONDS = 900  # a Ray job's session outlives its MaxRuntime by this (uploads)
NAMESPACE = "opensage"
# calls one node's agent serves at once: a host holds about three (its output, a stop, a
# stage or finish), so some eighty hosts a node
AGENT_CONCURRENCY = 256


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


def import_ray() -> Any:
    """Ray, imported here and nowhere else."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(MISSING_EXTRA) from None
    return ray


def connect(address: str | None) -> Any:
    """This process as a driver of the cluster at ``address`` ("auto": one started on this
    machine with ``ray start``). Never starts a cluster of its own."""
    ray = import_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address or "auto", namespace=NAMESPACE, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise RayUnavailable(f"Could not connect to the Ray cluster at "
                                 f"{address or 'auto'}: {err}") from None
    return ray


class RayProcess:
    """A remote host seen as the part of ``subprocess.Popen`` the supervision uses."""

    def __init__(self, ray: Any, remote: Any) -> None:
        self._ray, self.remote = ray, remote
        read_fd, self._write_fd = os.pipe()
        self.stdout: IO[bytes] | None = os.fdopen(read_fd, "rb")
        self.returncode: int | None = None
        self.lost: str | None = None  # why its agent died (its node was lost)
        self._ended = threading.Event()
        threading.Thread(target=self._feed, daemon=True).start()

    def _feed(self) -> None:
        code: int | None = None
        try:
            with os.fdopen(self._write_fd, "wb") as pipe:
                while code is None:
                    try:
                        lines, code = self._ray.get(self.remote.read.remote())
                    except self._ray.exceptions.RayActorError as err:
                        self.lost = str(err).strip().splitlines()[0][:300] if str(err) else (
                            "its agent died")
                        code = -9
                        break
                    for line in lines:
                        pipe.write(line)
                    pipe.flush()
        except Exception:  # the supervision reads the stream's end and the code below
            log.exception("reading a Ray host's output failed")
            code = -9 if code is None else code
        finally:
            self.returncode = code if code is not None else -9
            self._ended.set()

    def poll(self) -> int | None:
        return self.returncode if self._ended.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired("ray host", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        try:
            self.remote.signal.remote(sig)
        except self._ray.exceptions.RayError:  # gone already: nothing left to signal
            log.debug("could not signal a Ray host", exc_info=True)


class AgentHost:
    """A host held by its node's agent, called as an actor would be
    (``host.stage.remote()`` is ``agent.call.remote(key, "stage")``)."""

    def __init__(self, ray: Any, agent: Any, key: str) -> None:
        self._ray, self.agent, self.key = ray, agent, key

    def __getattr__(self, method: str) -> Any:
        return SimpleNamespace(remote=functools.partial(self.agent.call.remote, self.key,
                                                        method))

    def drop(self) -> None:
        """Kill its processes, remove its directory (nothing to do when the node is gone)."""
        try:
            self.agent.drop.remote(self.key)
        except self._ray.exceptions.RayError:
            log.debug("could not drop a Ray host", exc_info=True)


class RayExecutor(LocalExecutor):
    """Jobs' hosts on a Ray cluster (see the module's docstring)."""

    session_margin = SESSION_MARGIN_SECONDS

    def __init__(self, jobs_root: Path, objects: ObjectStore, events: TrainingEvents, *,
                 address: str | None, endpoint: S3Endpoint, slots: int,
                 stop_grace_seconds: float, spot_interruptions_per_hour: float = 0.0,
                 frameworks_dir: Path | None = None, wheelhouse: tuple[Path, ...] = (),
                 archive_limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
                 roles: JobRoles | None = None, hidden: Sequence[Path] = (),
                 shared: Sequence[Path] = ()) -> None:
        """``frameworks_dir`` and ``wheelhouse``: where a node builds (or finds) a processing
        or script-mode job's framework environment, and the wheels it may use (the server's
        settings; the path is the node's own); ``archive_limits`` caps unpacking a
        ``sourcedir.tar.gz`` there. ``roles`` (``--auth sigv4``): each job's hosts sign their
        S3 calls with its role's session, or a short-lived session of the server's own.
        ``hidden``, ``shared``: as the local executor's, for a node that is this machine."""
        super().__init__(jobs_root, objects, events, slots=slots,
                         stop_grace_seconds=stop_grace_seconds,
                         spot_interruptions_per_hour=spot_interruptions_per_hour,
                         archive_limits=archive_limits, roles=roles, hidden=hidden,
                         shared=shared)
        self._hidden = [str(p) for p in hidden]
        self.address, self.endpoint = address, endpoint
        self.frameworks_dir = frameworks_dir or jobs_root.parent / "frameworks"
        self.wheelhouse = wheelhouse
        self._ray: Any = None
        self._uploaded: dict[str, bool] = {}
        self._node_agent: Any = None
        self._agents: dict[str, Any] = {}  # node id -> this server's agent there

    def start(self) -> None:
        self._ray = connect(self.address)
        self._node_agent = self._ray.remote(NodeAgent)
        for node in self._ray.nodes():  # warm: the first job on a node needs not wait
            if node.get("Alive"):
                self._agent(node["NodeID"])
        super().start()

    # -- the hosts of a job on the cluster -------------------------------------------------
    def _endpoint(self, run: _Run) -> S3Endpoint:
        """Where the job's hosts reach the objects, and as whom: under ``--auth sigv4`` the
        session of the role the job acts as (the facade checks each call against the role's
        policies and the bucket's), else a session of the server's own that expires with the
        job's time (issued once per run); without authentication the endpoint as it is."""
        if run.role is not None and run.role.environment:
            return self.endpoint.with_credentials(run.role.environment)
        if self.roles is None:
            return self.endpoint
        if run.server_session is None:
            spec = run.spec
            seconds = max(spec.max_runtime, getattr(spec, "max_wait", None) or 0)
            run.server_session = self.roles.server_session(seconds + self.session_margin)
        return self.endpoint.with_credentials(run.server_session)

    @contextmanager
    def _on_cluster(self, run: _Run, instance_type: str, count: int, kind: str,
                    args: Callable[[int, int], tuple[Any, ...]],
                    tell: bool = True) -> Iterator[list[AgentHost] | None]:
        """``count`` hosts of ``kind`` (``node_agent.HOST_KINDS``, built with
        ``args(index, cpus)``) in one placement group of a bundle per host (the instance
        type's CPUs, memory and GPUs; spread across nodes), each held by its node's agent.
        Yields None when the job was stopped while it waited for capacity (``tell``: the job
        shows ``Starting`` saying so meanwhile). The hosts are dropped (their processes
        killed) and the group released on leaving."""
        ray = self._ray
        bundle = ray_resources(instance_type)
        cpus = int(bundle["CPU"])
        group = ray.util.placement_group([bundle] * count, strategy="SPREAD",
                                         name=f"opensage-{run.spec.name}")
        hosts: list[AgentHost] = []
        try:
            if not self._placed(run, group, count, bundle, tell):
                yield None
                return
            nodes = ray.util.placement_group_table(group)["bundles_to_node_id"]
            for index in range(count):
                hosts.append(self._open(nodes[index], f"{run.spec.name}-algo-{index + 1}",
                                        kind, args(index, cpus)))
            yield hosts
        finally:
            for host in hosts:
                host.drop()
            ray.util.remove_placement_group(group)

    def _open(self, node: str, name: str, kind: str, args: tuple[Any, ...]) -> AgentHost:
        """A host of ``kind`` on ``node``, held by that node's agent (a new agent when the
        one known has died: the node is alive, since the group was placed there)."""
        key = f"{name}-{uuid.uuid4().hex[:8]}"
        line = f"Placed on Ray node {node}"  # the host's log says where it ran
        for attempt in range(2):
            agent = self._agent(node, fresh=attempt > 0)
            try:
                self._ray.get(agent.open.remote(key, kind, args, line))
                return AgentHost(self._ray, agent, key)
            except self._ray.exceptions.RayActorError as err:
                lost = err
        raise JobFailure(f"The Ray node {node} the job was placed on cannot run it: "
                         f"{str(lost).strip().splitlines()[0][:300] if str(lost) else lost}")

    def _agent(self, node: str, fresh: bool = False) -> Any:
        """This server's agent on ``node`` (``runner.node_agent``), started on first use: a
        process that asks Ray for no resources (each job's group reserves its hosts')."""
        ray = self._ray
        with self._lock:
            agent = None if fresh else self._agents.get(node)
            if agent is None:
                strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy
                agent = self._node_agent.options(
                    num_cpus=0, max_concurrency=AGENT_CONCURRENCY, max_restarts=0,
                    scheduling_strategy=strategy(node_id=node, soft=False),
                ).remote(True, ray_directories)
                self._agents[node] = agent
            return agent

    def _stage(self, run: _Run, remotes: list[Any], deadline: float) -> None:
        """Every host's ``stage``, while the job keeps watching for a stop and its deadline
        (``JobEnded``; an environment build under way is cancelled). A channel that cannot
        be provided is a ``ChannelError``, any other failure a ``JobFailure``; a lost node's
        ``RayActorError`` is raised as it is."""
        ray = self._ray
        refs = [remote.stage.remote() for remote in remotes]
        pending, last_stop_poll = list(refs), time.monotonic()
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1,
                                          timeout=CAPACITY_POLL_SECONDS)
                ray.get(ready)  # the first failure ends the wait
                if self._closing:
                    raise ExecutorClosing(run.spec.name)
                last_stop_poll = self._poll_stop(run, last_stop_poll)
                ended = ("Stopped" if run.stop_requested else
                         "MaxRuntimeExceeded" if time.monotonic() > deadline else None)
                if ended is not None and pending:
                    for remote in remotes:
                        if hasattr(remote, "cancel"):
                            remote.cancel.remote()
                    raise JobEnded(ended)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, RoleDenied):  # the facade refused the job's session
                raise RoleDenied(cause.message) from None
            if isinstance(cause, ChannelError):
                raise ChannelError(str(cause)) from None
            if isinstance(cause, script.ScriptError):  # a script's code cannot be set up
                raise script.ScriptError(str(cause)) from None
            if isinstance(cause, HostUnfit):  # e.g. the node refuses isolation's namespaces
                raise JobFailure(str(cause)) from None
            if isinstance(cause, EnvironmentBuildError):
                raise JobFailure(f"Could not build the environment on the Ray node: "
                                 f"{cause}") from None
            raise JobFailure(f"Staging the input failed: {cause or err}") from None

    # -- one attempt of a training job -----------------------------------------------------
    def _attempt(self, run: _Run, ws: Workspace,
                 budget: float) -> tuple[Outcome, CheckpointSync | None]:
        spec = run.spec
        assert isinstance(spec, TrainingSpec)
        if spec.module is None and spec.script is None:
            raise JobFailure(spec.unsupported_reason or "The training image is not runnable")
        if spec.container is not None:
            raise JobFailure("The Ray executor runs built-in algorithms and script mode; own "
                             "images run with --executor local")
        hosts = self._hosts(spec, ws)
        for host in hosts:
            host.ws.create()  # the server's mirror: the host's failure text lands here
        ray = self._ray
        config = _input_data_config(spec)
        count = len(hosts)
        # script mode: each node's frameworks directory and wheelhouse, the archive limits
        frameworks = (str(self.frameworks_dir), [str(p) for p in self.wheelhouse],
                      self.archive_limits) if spec.script is not None else (None, None, None)
        endpoint = self._endpoint(run)  # the hosts' session; a script gets its role's only
        code = dict(run.role.environment) if run.role is not None else {}
        with self._on_cluster(run, spec.instance_type, count, "training", lambda i, cpus: (
                spec, i, count, endpoint, config, cpus, None, *frameworks, code,
                self._hidden)) as remotes:
            if remotes is None:
                return Outcome("Stopped"), None
            try:
                self.events.advance(spec.name, "Downloading")
                try:
                    self._stage(run, remotes, budget)
                except ray.exceptions.RayActorError as err:
                    return self._lost(spec, "staging its input", err), None
                extra = self._collective_env(remotes, spec.script is not None) if count > 1 \
                    else {}
                commands = ray.get([remote.start.remote(extra) for remote in remotes])
                for host, command in zip(hosts, commands, strict=True):
                    host.command = command  # a script's FailureReason names its command line
                self.events.advance(spec.name, "Training")
                result, procs = self._run_remotes(run, hosts, remotes, budget)
                lost = next((p for p in procs if p.lost is not None), None)
                if lost is not None and result.status not in ("Stopped", "MaxRuntimeExceeded"):
                    return self._lost(spec, "training", lost.lost), None
                if run.abandoned:  # another server runs it now: the hosts upload nothing
                    return Outcome("Stopped"), None
                finished = _denied_as_role(ray, [remote.finish.remote(index == 0)
                                                 for index, remote in enumerate(remotes)])
                _mirror_failures(hosts, finished)
                self._uploaded[spec.name] = bool(finished[0]["uploaded"])
                pipe_error = next((r["pipe_error"] for r in finished if r.get("pipe_error")),
                                  None)
                if pipe_error and result.status in ("Completed", "Failed"):
                    # the algorithm saw a channel cut short: that is the failure to report
                    return Outcome("Failed", f"ClientError: {pipe_error}"[:1024]), None
                if result.status == "Failed":  # the reason from the hosts' output/failure
                    # a host's own reason before one that only says another host broke off
                    failed = next((h for h in hosts if h.ws.read_failure()
                                   and not is_peer_failure(h.ws.read_failure())),
                                  next((h for h in hosts if h.ws.read_failure()), None))
                    if failed is not None:
                        result = Outcome("Failed", failed.ws.read_failure())
                return result, None
            except ray.exceptions.RayActorError as err:
                return self._lost(spec, "finishing", err), None

    def _run_remotes(self, run: _Run, hosts: list[_Host], remotes: list[Any],
                    deadline: float) -> tuple[Outcome, list[RayProcess]]:
        """The started hosts supervised as local processes are (logs to their streams,
        stop, MaxRuntime, the first failure), until each has ended."""
        epoch = int(time.time())
        streams = [f"{run.spec.name}/{host.name}-{epoch}" for host in hosts]
        procs = [RayProcess(self._ray, remote) for remote in remotes]
        for host, proc in zip(hosts, procs, strict=True):
            host.proc = proc
        with self._lock:
            run.procs.extend(procs)
        try:
            return self._supervise(run, hosts, streams, [], deadline), procs
        finally:
            with self._lock:
                run.procs = []

    # -- a processing job ------------------------------------------------------------------
    def _process(self, run: _Run, spec: ProcessingSpec) -> Outcome:
        """A processing job's hosts on the cluster: each builds (or finds) the
        framework's environment on its node, stages its inputs through S3, runs the entry
        point with its own ``/opt/ml`` and uploads the outputs through S3 itself."""
        started = time.time()
        if spec.image is not None:
            return Outcome("Failed", "ClientError: The Ray executor runs processing jobs in "
                           "framework environments; own images run with --executor local",
                           False, started)
        if spec.framework is None:
            return Outcome("Failed", "ClientError: " + (
                spec.unsupported_reason or "The image is not runnable here"), False, started)
        ws = Workspace(self.jobs_root / spec.name)
        ws.remove()
        hosts = [_Host(f"algo-{i}", Workspace(ws.root / f"algo-{i}"),
                       command=processing.command(spec))
                 for i in range(1, spec.instance_count + 1)]
        deadline = time.monotonic() + spec.max_runtime
        ray, count = self._ray, len(hosts)
        # the code signs its own calls with its role's session, never the server's
        frameworks = (str(self.frameworks_dir), [str(p) for p in self.wheelhouse],
                      dict(run.role.environment) if run.role is not None else {})
        endpoint = self._endpoint(run)
        try:
            with self._on_cluster(run, spec.instance_type, count, "processing",
                                  lambda i, cpus: (spec, i, count, endpoint, cpus,
                                                   *frameworks, None, self._hidden),
                                  tell=False) as remotes:
                if remotes is None:
                    return Outcome("Stopped", None, False, started)
                lost: object = None
                try:
                    self._stage(run, remotes, deadline)
                    ray.get([remote.start.remote({}) for remote in remotes])
                    self.events.advance(spec.name, "Processing")
                    result, procs = self._run_remotes(run, hosts, remotes, deadline)
                    lost = next((p.lost for p in procs if p.lost is not None), None)
                    if run.abandoned:  # another server runs it now: the hosts upload nothing
                        return Outcome("Stopped", None, False, started)
                    if lost is None or result.status in ("Stopped", "MaxRuntimeExceeded"):
                        lost = None
                        finished = _denied_as_role(
                            ray, [remote.finish.remote(result.status == "Completed")
                                  for remote in remotes])
                except ray.exceptions.RayActorError as err:
                    lost = err
                if lost is not None:
                    log.warning("processing job %s lost a Ray host: %s", spec.name, lost)
                    return _failed(ws, "InternalServerError: a Ray node running the job was "
                                       f"lost ({lost})", started)
        except JobEnded as ended:
            return _processing_ended(ended, ws, spec, started)
        except (ChannelError, JobFailure) as err:
            return _failed(ws, f"ClientError: {err}", started)
        except RoleDenied as err:
            return _failed(ws, f"ClientError: {err.message}", started)
        _mirror_failures(hosts, finished)
        message = next((report["message"] for report in finished if report["message"]), None)
        if result.status == "MaxRuntimeExceeded":
            result = _processing_timeout(spec)
        elif result.status == "Failed":
            failed = next((h for h in hosts if h.ws.read_failure()), None)
            if failed is not None:
                result = Outcome("Failed", failed.ws.read_failure())
        ws.remove()
        return Outcome(result.status, result.failure_reason, False, started,
                       exit_message=message)

    def _placed(self, run: _Run, group: Any, count: int, bundle: dict[str, float],
                tell: bool = True) -> bool:
        """Wait until the cluster has room for the job's hosts (False: stopped meanwhile).
        Meanwhile the job says it waits for capacity: a training job as ``Starting``'s
        StatusMessage (``tell``), a processing job, which has no status message, as the first
        line of its log. A spot job's wait counts against its MaxWaitTimeInSeconds, as on
        AWS: ``JobEnded`` when it runs out first."""
        ready = group.ready()
        told = False
        name = run.spec.name
        while not self._ray.wait([ready], timeout=CAPACITY_POLL_SECONDS)[0]:
            if run.stop_requested or self._asked_to_stop(name) or self._closing:
                return False
            if run.wait_deadline is not None and time.monotonic() > run.wait_deadline:
                raise JobEnded("MaxWaitTimeExceeded")
            if not told:
                wants = ", ".join(f"{v:g} {k}" if k != "memory" else f"{v / 1024**3:.1f} GiB"
                                  for k, v in bundle.items())
                text = (f"Waiting for capacity on the Ray cluster: {count} host(s) of {wants} "
                        "each")
                if tell:
                    self.events.advance(name, "Starting", text)
                else:
                    self.events.logs(name, f"{name}/algo-1-{int(time.time())}",
                                     [(int(time.time() * 1000), text)])
                told = True
        return True

    def _collective_env(self, remotes: list[Any], script_mode: bool = False) -> dict[str, str]:
        """Where the hosts of a distributed job meet: algo-1's node and a free port there
        (a built-in's collective; a script's ``MASTER_ADDR``/``MASTER_PORT``)."""
        address, port = self._ray.get([remotes[0].node_address.remote(),
                                       remotes[0].free_port.remote()])
        if script_mode:
            return {"MASTER_ADDR": str(address), "MASTER_PORT": str(port)}
        return {"OPENSAGE_COLLECTIVE_ADDRESS": f"{address}:{port}"}

    def _lost(self, spec: TrainingSpec, doing: str, err: object) -> Outcome:
        """A host's node died: Interrupted (restarted from checkpoints) when the job has
        them, else Failed with the reason."""
        log.warning("training job %s lost a Ray host while %s: %s", spec.name, doing, err)
        if spec.checkpoint:
            return Outcome("Interrupted")
        return Outcome("Failed", f"InternalServerError: a Ray node running the job was lost "
                                 f"while {doing} and the job has no CheckpointConfig to "
                                 f"resume from ({err})"[:1024])

    def _upload(self, spec: TrainingSpec, ws: Workspace, objects: ObjectAccess) -> bool:
        """The hosts uploaded the model themselves (``RemoteHost.finish``)."""
        return self._uploaded.pop(spec.name, False)

    def _upload_quietly(self, spec: TrainingSpec, ws: Workspace,
                        objects: ObjectAccess) -> bool:
        return self._uploaded.pop(spec.name, False)


def ray_directories() -> list[str]:
    """On a node (in its agent): Ray's temporary directory there, with the sockets of its
    raylet and object store (a process reaching them is a Ray client), hidden from a host
    with EnableNetworkIsolation."""
    ray = import_ray()
    try:
        return [str(ray._private.worker.global_worker.node.get_temp_dir_path())]
    except AttributeError:  # another Ray's internals: its default place
        return ["/tmp/ray"]


def _denied_as_role(ray: Any, refs: list[Any]) -> list[Any]:
    """``ray.get(refs)``, a host's upload the facade refused raised as the ``RoleDenied`` it
    was on the node (the job fails with it, as locally)."""
    try:
        return list(ray.get(refs))
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, RoleDenied):
            raise RoleDenied(cause.message) from None
        raise


def _mirror_failures(hosts: list[_Host], finished: list[dict[str, Any]]) -> None:
    """Each host's ``output/failure`` from its node into the server's mirror of the host."""
    for host, report in zip(hosts, finished, strict=True):
        if report["failure"]:
            host.ws.failure_path.parent.mkdir(parents=True, exist_ok=True)
            host.ws.failure_path.write_text(report["failure"])
