"""The Ray executor: each host of a training job is a Ray actor on a node of the cluster.

The only module that imports Ray (lazily: ``ray`` is the optional ``ray`` extra). It is the
local executor with one step replaced: where ``LocalExecutor._attempt`` stages the hosts'
directories on this machine and starts their processes, this one

- reserves the job's hosts as one placement group (a bundle of CPUs, memory and GPUs from
  the instance type per host, spread across nodes where the cluster has them); while the
  cluster has no room the job stays ``Starting`` with a StatusMessage saying it waits for
  capacity;
- starts a :class:`runner.remote_host.RemoteHost` actor per host in its bundle; the actor
  stages its channels and checkpoints through the server's S3 facade, runs the same
  command, and uploads the model through S3 (``RemoteHost.finish``);
- hands ``_supervise`` a :class:`RayProcess` per host, the part of ``Popen`` it uses, whose
  ``stdout`` is fed with the lines the actor hands out: logs, metrics, stop, MaxRuntime
  and the first failure are the local executor's code.

Script mode runs there too: each host unpacks the code and gets the framework's environment
on its node (``RemoteHost.stage``); the hosts of a multi-host job meet at algo-1's node
(``MASTER_ADDR``/``MASTER_PORT``, torchrun's ``--master_addr``), their placement spread
across nodes. Own images and EnableNetworkIsolation run with the local executor.

A node lost mid-job (the actor dies) makes the attempt ``Interrupted``: a job with a
CheckpointConfig then restarts from its checkpoints (the spot loop of ``LocalExecutor._run``),
one without fails saying which host's node was lost. The actors belong to this server's Ray
driver: when the server dies they die with it, and the next start runs the job again.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

from opensage.algorithms.contract import is_peer_failure
from opensage.data.archives import ArchiveLimits
from opensage.runner.channels import ChannelError
from opensage.runner.checkpoints import CheckpointSync
from opensage.runner.environments import EnvironmentBuildError, Environments
from opensage.runner.local import (
    DEFAULT_ARCHIVE_LIMITS,
    JobFailure,
    LocalExecutor,
    Outcome,
    TrainingEvents,
    TrainingSpec,
    _input_data_config,
    _Run,
)
from opensage.runner.object_access import ObjectAccess, S3Endpoint
from opensage.runner.own_image import memory_for
from opensage.runner.remote_host import RemoteHost
from opensage.runner.toolkit import script
from opensage.runner.workspace import Workspace, gpus_for, vcpus_for
from opensage.store.objects import ObjectStore

log = logging.getLogger(__name__)
MISSING_EXTRA = ("The Ray executor needs Ray, which is the optional 'ray' extra of opensage: "
                 "install it with `pip install 'opensage[ray]'` (or `uv sync --extra ray`)")
CAPACITY_POLL_SECONDS = 1.0
NAMESPACE = "opensage"


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
    """A host actor seen as the part of ``subprocess.Popen`` the supervision uses."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self._ray, self.actor = ray, actor
        read_fd, self._write_fd = os.pipe()
        self.stdout: IO[bytes] | None = os.fdopen(read_fd, "rb")
        self.returncode: int | None = None
        self.lost: str | None = None  # why the actor died (its node was lost)
        self._ended = threading.Event()
        threading.Thread(target=self._feed, daemon=True).start()

    def _feed(self) -> None:
        code: int | None = None
        try:
            with os.fdopen(self._write_fd, "wb") as pipe:
                while code is None:
                    try:
                        lines, code = self._ray.get(self.actor.read.remote())
                    except self._ray.exceptions.RayActorError as err:
                        self.lost = str(err).strip().splitlines()[0][:300] if str(err) else (
                            "the actor died")
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
            self.actor.signal.remote(sig)
        except self._ray.exceptions.RayError:  # gone already: nothing left to signal
            log.debug("could not signal a Ray host", exc_info=True)


class RayExecutor(LocalExecutor):
    """Training jobs' hosts as actors on a Ray cluster (see the module's docstring)."""

    def __init__(self, jobs_root: Path, objects: ObjectStore, events: TrainingEvents, *,
                 address: str | None, endpoint: S3Endpoint, slots: int,
                 stop_grace_seconds: float, spot_interruptions_per_hour: float = 0.0,
                 environments: Environments | None = None,
                 archive_limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS) -> None:
        """``environments``: where each node keeps script mode's framework environments
        (the same directory on every node; None: script-mode jobs fail saying so)."""
        super().__init__(jobs_root, objects, events, slots=slots,
                         stop_grace_seconds=stop_grace_seconds,
                         spot_interruptions_per_hour=spot_interruptions_per_hour,
                         environments=environments, archive_limits=archive_limits)
        self.address, self.endpoint = address, endpoint
        self._ray: Any = None
        self._uploaded: dict[str, bool] = {}
        self._remote_host: Any = None

    def start(self) -> None:
        self._ray = connect(self.address)
        self._remote_host = self._ray.remote(RemoteHost)
        super().start()

    # -- one attempt -----------------------------------------------------------------------
    def _attempt(self, run: _Run, ws: Workspace,
                 budget: float) -> tuple[Outcome, CheckpointSync | None]:
        spec = run.spec
        assert isinstance(spec, TrainingSpec)
        if spec.module is None and spec.script is None:
            raise JobFailure(spec.unsupported_reason or "The training image is not runnable")
        if spec.container is not None or spec.network_isolation:
            raise JobFailure("The Ray executor runs built-in algorithms and script mode; own "
                             "images and EnableNetworkIsolation run with --executor local")
        hosts = self._hosts(spec, ws)
        for host in hosts:
            host.ws.create()  # the server's mirror: the host's failure text lands here
        ray = self._ray
        cpus = vcpus_for(spec.instance_type)
        bundle: dict[str, float] = {"CPU": cpus}
        memory = memory_for(spec.instance_type, cpus)
        if memory is not None:
            bundle["memory"] = memory
        if gpus := gpus_for(spec.instance_type):
            bundle["GPU"] = gpus
        group = ray.util.placement_group([bundle] * len(hosts), strategy="SPREAD",
                                         name=f"opensage-{spec.name}")
        actors: list[Any] = []
        try:
            if not self._placed(run, group, len(hosts), bundle):
                return Outcome("Stopped"), None
            strategy = ray.util.scheduling_strategies.PlacementGroupSchedulingStrategy
            config = _input_data_config(spec)
            for index in range(len(hosts)):
                actors.append(self._remote_host.options(
                    num_cpus=cpus, memory=bundle.get("memory"), num_gpus=gpus,
                    max_concurrency=4, max_restarts=0, name=None,
                    scheduling_strategy=strategy(
                        placement_group=group, placement_group_bundle_index=index),
                ).remote(spec, index, len(hosts), self.endpoint, config, cpus,
                         environments=self.environments if spec.script else None,
                         archive_limits=self.archive_limits))
            self.events.advance(spec.name, "Downloading")
            try:
                self._stage(run, actors, budget)
            except ray.exceptions.RayActorError as err:
                return self._lost(spec, "staging its input", err), None
            except ray.exceptions.RayTaskError as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, ChannelError):
                    raise ChannelError(str(cause)) from None
                if isinstance(cause, script.ScriptError):
                    raise script.ScriptError(str(cause)) from None
                if isinstance(cause, EnvironmentBuildError) and spec.script is not None:
                    raise JobFailure(f"Could not build the {spec.script.framework.key} "
                                     f"environment: {cause}") from None
                raise JobFailure(f"Staging the input failed: {cause or err}") from None
            extra = self._collective_env(actors, spec.script is not None) if len(hosts) > 1 \
                else {}
            commands = ray.get([actor.start.remote(extra) for actor in actors])
            for host, command in zip(hosts, commands, strict=True):
                host.command = command  # a script's FailureReason names its command line
            self.events.advance(spec.name, "Training")
            epoch = int(time.time())
            streams = [f"{spec.name}/{host.name}-{epoch}" for host in hosts]
            procs = [RayProcess(ray, actor) for actor in actors]
            for host, proc in zip(hosts, procs, strict=True):
                host.proc = proc
            with self._lock:
                run.procs.extend(procs)
            try:
                result = self._supervise(run, hosts, streams, [], budget)
            finally:
                with self._lock:
                    run.procs = []
            lost = next((p for p in procs if p.lost is not None), None)
            if lost is not None and result.status not in ("Stopped", "MaxRuntimeExceeded"):
                return self._lost(spec, "training", lost.lost), None
            finished = ray.get([actor.finish.remote(index == 0)
                                for index, actor in enumerate(actors)])
            for host, report in zip(hosts, finished, strict=True):
                if report["failure"]:
                    host.ws.failure_path.parent.mkdir(parents=True, exist_ok=True)
                    host.ws.failure_path.write_text(report["failure"])
            self._uploaded[spec.name] = bool(finished[0]["uploaded"])
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
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            ray.util.remove_placement_group(group)

    def _placed(self, run: _Run, group: Any, count: int, bundle: dict[str, float]) -> bool:
        """Wait until the cluster has room for the job's hosts (False: stopped meanwhile).
        Meanwhile the job shows ``Starting``, saying it waits for capacity."""
        ready = group.ready()
        told = False
        while not self._ray.wait([ready], timeout=CAPACITY_POLL_SECONDS)[0]:
            if run.stop_requested or self._asked_to_stop(run.spec.name) or self._closing:
                return False
            if not told:
                wants = ", ".join(f"{v:g} {k}" if k != "memory" else f"{v / 1024**3:.1f} GiB"
                                  for k, v in bundle.items())
                self.events.advance(run.spec.name, "Starting",
                                    f"Waiting for capacity on the Ray cluster: {count} "
                                    f"host(s) of {wants} each")
                told = True
        return True

    def _stage(self, run: _Run, actors: list[Any], deadline: float) -> None:
        """The hosts' ``stage`` (a script's first environment build on a node takes
        minutes), while the job keeps watching for a stop and its deadline: either cancels
        the builds and ends the job (``JobEnded``)."""
        refs = [actor.stage.remote() for actor in actors]

        def staged() -> Path:
            self._ray.get(refs)
            return Path()

        try:
            self._while_building(run, staged, deadline)
        except BaseException:
            try:
                self._ray.get([actor.cancel_build.remote() for actor in actors], timeout=10)
            except self._ray.exceptions.RayError:  # gone already: nothing left to cancel
                log.debug("could not cancel a Ray host's build", exc_info=True)
            raise

    def _collective_env(self, actors: list[Any], script_mode: bool) -> dict[str, str]:
        """Where the hosts of a distributed job meet: algo-1's node and a free port there
        (a built-in's collective; a script's ``MASTER_ADDR``/``MASTER_PORT``)."""
        address, port = self._ray.get([actors[0].node_address.remote(),
                                       actors[0].free_port.remote()])
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
