"""The local executor: each job a subprocess in its own ``/opt/ml``-shaped directory.

It runs training jobs (``TrainingSpec``) and processing jobs (``runner.processing.
ProcessingSpec``: each host in a mount namespace where its directory is ``/opt/ml``); both
share the launcher, the supervision (log streaming, stop, MaxRuntime, SIGTERM then SIGKILL)
and the failure reasons.

A fixed number of job slots drains a queue, so twenty submitted jobs neither overload the
machine nor get lost (queued jobs are rows in the store; a restart re-submits them).
Progress goes out through the ``TrainingEvents`` callbacks the service hands in.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from opensage.algorithms.contract import is_peer_failure
from opensage.containers import (
    ContainerEngine,
    ContainerError,
    ContainerProcess,
    no_engine_reason,
)
from opensage.data.archives import ArchiveLimits
from opensage.errors import AwsError
from opensage.runner import metrics as metric_parsing
from opensage.runner import processing
from opensage.runner.artifacts import has_files, pack_and_upload
from opensage.runner.channels import ChannelError, input_mode, materialize, split_s3_uri
from opensage.runner.checkpoints import CheckpointSync, upload_all
from opensage.runner.cpus import CpuSlots
from opensage.runner.environments import (
    EnvironmentBuildError,
    Environments,
    Framework,
    builtin_environment,
)
from opensage.runner.forkserver import ForkedProcess, ForkServer
from opensage.runner.job_role import AsRole, JobRole, JobRoles, RoleDenied, require_writes
from opensage.runner.object_access import ObjectAccess
from opensage.runner.own_image import (
    CONTAINER_ROOT,
    OwnImage,
    processing_container,
    training_container,
)
from opensage.runner.pipes import PipeFeeders
from opensage.runner.processing import ProcessingSpec
from opensage.runner.toolkit import isolation, script
from opensage.runner.toolkit.contract import (
    UserEntry,
    container_env,
    resource_config,
    to_cmd_args,
    user_hyperparameters,
    without_aws,
)
from opensage.runner.workspace import Workspace, cpus_for, memory_for
from opensage.store.objects import ObjectStore

log = logging.getLogger(__name__)
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
POLL_SECONDS = 0.05
LOG_FLUSH_SECONDS = 0.25
PROMPT_FLUSH_SECONDS = 0.05  # a watched job's metrics: still one write per batch of lines
# How often a running job asks whether its row wants it stopped (a StopTrainingJob answered
# by another server sharing the database): one read of the job's row per job.
STOP_POLL_SECONDS = 1.0
# Pauses between tries of a job's final report: a busy database ("database is locked") gets
# about ten seconds to clear before the job is left InProgress for recovery to run again.
REPORT_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0)
INTERNAL_FAILURE = "InternalServerError: opensage failed to run the job"


class HostProcess(Protocol):
    """A host run elsewhere (a Ray actor): the part of ``Popen`` the supervision uses."""

    @property
    def stdout(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...


# A host's process: a subprocess, a fork of the fork server, an own image's container, or a
# host on another machine.
JobProcess = subprocess.Popen[bytes] | ForkedProcess | ContainerProcess | HostProcess
DEFAULT_ARCHIVE_LIMITS = ArchiveLimits(max_unpacked_bytes=10 * 1024**3, max_ratio=200.0,
                                       max_members=100_000)


@dataclass(frozen=True)
class TrainingSpec:
    name: str
    arn: str
    # What runs: a built-in's ``python -m <module> train`` (forked from the warm fork
    # server), the user's script (``script``) or own image (``container``); none of them:
    # ``unsupported_reason``.
    module: str | None
    unsupported_reason: str | None
    hyperparameters: dict[str, str]
    channels: list[dict[str, Any]]
    input_mode: str
    output_path: str
    instance_type: str
    instance_count: int
    max_runtime: int
    region: str
    environment: dict[str, str] = field(default_factory=dict)
    metric_definitions: list[dict[str, str]] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    spot: bool = False  # managed spot: may be interrupted, then resumes from checkpoints
    max_wait: int | None = None  # spot: wall-clock budget including interruptions
    # A tuner decides on this job's intermediate metrics (early stopping, Hyperband): metric
    # lines are reported as soon as they are read instead of every LOG_FLUSH_SECONDS.
    prompt_metrics: bool = False
    script: script.ScriptMode | None = None
    network_isolation: bool = False  # EnableNetworkIsolation: a network namespace per host
    container: OwnImage | None = None
    # A deep-learning built-in: the framework environment (``builtin-torch``) whose
    # interpreter runs ``module``, with only the opensage package on its PYTHONPATH.
    builtin_environment: str | None = None
    across_hosts: bool = False  # a built-in whose InstanceCount hosts train one model
    role_arn: str = ""  # RoleArn: the role the job acts as (``runner.job_role``)


@dataclass(frozen=True)
class Outcome:
    status: str  # Completed | Failed | Stopped | MaxRuntimeExceeded | Interrupted | ...
    failure_reason: str | None = None
    model_uploaded: bool = False
    training_start: float | None = None
    training_end: float = field(default_factory=time.time)
    exit_message: str | None = None  # a processing job's /opt/ml/output/message


class TrainingEvents(Protocol):
    def advance(self, name: str, status: str, message: str | None = None) -> None: ...
    def metrics(self, name: str, values: list[tuple[str, float, float]]) -> None: ...
    def logs(self, name: str, stream: str, events: list[tuple[int, str]]) -> None: ...
    def finished(self, name: str, outcome: Outcome) -> None: ...
    def stop_requested(self, name: str) -> bool:
        """Whether the job was asked to stop, wherever the request arrived."""
        ...


@dataclass(eq=False)
class _Run:
    """One submission of a job, from the queue to its final report. Stop and interrupt
    requests belong to the run, not to the name, so none can outlive it and reach a later job
    of the same name (names come back after a reset)."""

    spec: TrainingSpec | ProcessingSpec
    stop_requested: bool = False
    recheck_stop: bool = False  # look at the job's row now, not at the next poll
    interrupt_requested: bool = False
    abandoned: bool = False  # another server runs the job now: nothing more is reported
    procs: list[JobProcess] = field(default_factory=list)  # one per host while running
    role: JobRole | None = None  # the execution role the job acts as, if any
    # spot: when MaxWaitTimeInSeconds runs out (time.monotonic()), waiting for room included
    wait_deadline: float | None = None
    # Ray: the server's own session its remote hosts sign with when the job has no role
    server_session: Mapping[str, str] | None = field(default=None, repr=False)


@dataclass(eq=False)
class _Host:
    """One host (``algo-N``) of a running attempt: its own ``/opt/ml``, process and stream."""

    name: str
    ws: Workspace
    command: list[str] | None = None  # script mode: its command line (for FailureReason)
    proc: JobProcess | None = None
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=40))
    eof: bool = False


class JobFailure(Exception):
    """The job fails with this readable reason."""


class ExecutorClosing(Exception):
    """The server is shutting down: the job's row stays InProgress and runs again later."""


class JobEnded(Exception):
    """Stopped, or out of time, before the job's processes started (``status``)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class LocalExecutor:
    # how much longer than the job's time its credentials are asked for (the Ray executor's
    # hosts upload with them after the job's code ended)
    session_margin = 0

    def __init__(self, jobs_root: Path, objects: ObjectStore, events: TrainingEvents, *,
                 slots: int, stop_grace_seconds: float,
                 spot_interruptions_per_hour: float = 0.0,
                 forkserver: ForkServer | None = None,
                 environments: Environments | None = None,
                 archive_limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
                 containers: ContainerEngine | None = None,
                 aws: Mapping[str, str] | None = None,
                 roles: JobRoles | None = None,
                 hidden: Sequence[Path] = (), shared: Sequence[Path] = ()) -> None:
        """``environments`` builds script mode's framework environments (None: script-mode
        jobs fail saying so); ``archive_limits`` caps unpacking a ``sourcedir.tar.gz``;
        ``containers`` runs own images (None: such jobs fail saying so); ``aws`` is what
        boto3 in a job needs to reach this server (``contract.aws_environment``), under the
        job's own ``Environment``; ``roles`` gives a job its execution role (``--auth
        sigv4``): its inputs read and outputs written as the role may, its code given the
        role's credentials. A job with network isolation does not see ``hidden`` (the server's
        files: ``Settings.private_paths``) but for its own directory and, read-only,
        ``shared`` (the framework environments)."""
        self.jobs_root = jobs_root
        self.hidden, self.shared = tuple(hidden), tuple(shared)
        self.objects = objects
        self.events = events
        self.slots = max(1, slots)
        self.stop_grace = stop_grace_seconds
        self._queue: queue.Queue[_Run | None] = queue.Queue()
        self._runs: dict[str, _Run] = {}  # each name's current run, queued or running
        self.spot_interruption_rate = spot_interruptions_per_hour / 3600  # per second
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closing = False
        self.forkserver = forkserver
        self.environments = environments
        self.archive_limits = archive_limits
        self.containers = containers
        self.aws = dict(aws or {})
        self.roles = roles
        self.cpu_slots = CpuSlots()  # each job process on CPUs of its own where there are

    def start(self) -> None:
        for i in range(self.slots):
            worker = threading.Thread(target=self._work, name=f"opensage-job-slot-{i}",
                                      daemon=True)
            worker.start()
            self._workers.append(worker)

    def submit(self, spec: TrainingSpec | ProcessingSpec) -> None:
        run = _Run(spec)
        with self._lock:
            self._runs[spec.name] = run
        self._queue.put(run)

    def stop(self, name: str) -> None:
        """The job's row was asked to stop: the name's current run reads it now rather than at
        its next poll, and stops if the row says so. A request that arrives late, when the
        name runs a later job, reads that job's row and leaves it alone."""
        with self._lock:
            run = self._runs.get(name)
            if run is not None:
                run.recheck_stop = True

    def interrupt(self, name: str) -> None:
        """Reclaim a spot job's capacity: its process is stopped and the job resumes."""
        with self._lock:
            run = self._runs.get(name)
            if run is not None:
                run.interrupt_requested = True

    def abandon(self, name: str) -> None:
        """Another server took the job over (this one lost its run lease): the name's run,
        queued or running, is dropped at once, its processes killed, and nothing more of it
        is reported (no outputs uploaded, no end recorded): the job is the other's now."""
        with self._lock:
            run = self._runs.pop(name, None)
            if run is None:
                return
            run.abandoned = run.stop_requested = True
            procs = list(run.procs)
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)

    def cancel_all(self) -> None:
        """Drop queued jobs and kill running ones at once (state is being wiped)."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            for run in self._runs.values():
                run.stop_requested = True
            procs = self._running_procs()
            self._runs.clear()  # the names are free for new jobs at once
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)

    def shutdown(self, *, wait: float = 10) -> None:
        """Kill running jobs (their rows stay InProgress and are re-run on the next start)."""
        self._closing = True
        with self._lock:
            procs = self._running_procs()
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)
        if self.forkserver is not None:
            self.forkserver.close()
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + wait
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _running_procs(self) -> list[JobProcess]:
        return [proc for run in self._runs.values() for proc in run.procs]

    # -- one job ---------------------------------------------------------------------------
    def _work(self) -> None:
        """A job slot: nothing a job or its reporting raises may end this loop."""
        while True:
            run = self._queue.get()
            if run is None or self._closing:
                return
            try:
                outcome = self._run(run)
            except ExecutorClosing:
                return
            except Exception:
                log.exception("training job %s crashed the runner", run.spec.name)
                outcome = Outcome("Failed", INTERNAL_FAILURE)
            if run.abandoned:
                log.warning("training job %s ended here after another server took it over "
                            "(%s): not recorded", run.spec.name, outcome.status)
                continue
            try:
                self._conclude(run.spec.name, outcome)
            finally:
                with self._lock:
                    if self._runs.get(run.spec.name) is run:
                        del self._runs[run.spec.name]

    def _conclude(self, name: str, outcome: Outcome) -> None:
        """Record how the job ended. When that keeps failing, record it as an internal failure;
        when even that fails, the row stays InProgress and the next start runs the job again."""
        if self._report_finished(name, outcome):
            return
        if outcome.failure_reason != INTERNAL_FAILURE and self._report_finished(
                name, Outcome("Failed", INTERNAL_FAILURE)):
            return
        log.error("could not record that training job %s ended (%s): it stays InProgress "
                  "until the server restarts and runs it again", name, outcome.status)

    def _report_finished(self, name: str, outcome: Outcome) -> bool:
        for delay in (*REPORT_RETRY_DELAYS, None):
            try:
                self.events.finished(name, outcome)
                return True
            except Exception:
                if delay is None:
                    log.exception("reporting training job %s as %s failed", name,
                                  outcome.status)
                    return False
                log.warning("reporting training job %s as %s failed; retrying in %.2f s",
                            name, outcome.status, delay, exc_info=True)
                time.sleep(delay)
        return False

    def _asked_to_stop(self, name: str) -> bool:
        try:
            return self.events.stop_requested(name)
        except Exception:  # a busy database: ask again at the next poll
            log.warning("could not read whether training job %s is to stop", name,
                        exc_info=True)
            return False

    def _interrupted(self, run: _Run, seconds: float) -> bool:
        """A test's request, or the simulated market reclaiming the capacity."""
        if not isinstance(run.spec, TrainingSpec) or not run.spec.spot:
            return False
        with self._lock:
            if run.interrupt_requested:
                run.interrupt_requested = False
                return True
        return random.random() < self.spot_interruption_rate * seconds

    def _run(self, run: _Run) -> Outcome:
        """Run the job to its end and say how it ended (the slot reports it)."""
        spec = run.spec
        if run.stop_requested or self._asked_to_stop(spec.name):
            return Outcome("Stopped")
        if self.roles is not None and spec.role_arn:  # credentials for the job's whole run
            seconds = max(spec.max_runtime, getattr(spec, "max_wait", None) or 0)
            run.role = self.roles.session(spec.role_arn, spec.name,
                                          seconds + self.session_margin)
        if isinstance(spec, ProcessingSpec):
            return self._process(run, spec)
        ws = Workspace(self.jobs_root / spec.name)
        started = time.time()
        wait_deadline = time.monotonic() + (spec.max_wait or spec.max_runtime)
        if spec.max_wait:
            run.wait_deadline = wait_deadline
        budget = float(spec.max_runtime)  # MaxRuntime counts training time over attempts
        while True:
            attempt_start = time.monotonic()
            try:
                result, checkpoints = self._attempt(run, ws, attempt_start + budget)
            except JobEnded as ended:
                outcome = Outcome(ended.status, None, False, started)
                ws.remove()
                return outcome
            except (ChannelError, JobFailure) as err:
                return _failed(ws, f"ClientError: {err}", started)
            except script.ScriptError as err:
                return _failed(ws, str(err), started)
            except AwsError as err:
                return _failed(ws, f"ClientError: {err.message}", started)
            if run.abandoned:  # another server runs it now, from the checkpoints: leave them
                ws.remove()
                return Outcome("Stopped", None, False, started)
            if checkpoints is not None:
                try:
                    checkpoints.upload_changes()
                except RoleDenied as err:
                    return _failed(ws, f"ClientError: {err.message}", started)
            if result.status != "Interrupted":
                break
            budget -= time.monotonic() - attempt_start
            self.events.advance(spec.name, "Interrupted")
            if time.monotonic() > wait_deadline or budget <= 0:
                outcome = Outcome("MaxWaitTimeExceeded", None, self._upload_quietly(spec, ws, self._objects(run)),
                                  started)
                ws.remove()
                return outcome
            self.events.advance(spec.name, "Restarting")
        if result.status != "Completed":
            outcome = Outcome(result.status, result.failure_reason,
                              self._upload_quietly(spec, ws, self._objects(run)), started)
            ws.remove()
            return outcome
        self.events.advance(spec.name, "Uploading")
        try:
            uploaded = self._upload(spec, ws, self._objects(run))
        except RoleDenied as err:  # the role may not write there: nothing was written
            return _failed(ws, f"ClientError: {err.message}", started)
        except AwsError as err:
            return _failed(ws, "ClientError: Could not upload the model artifacts to "
                               f"{spec.output_path}: {err.message}", started)
        ws.remove()
        return Outcome("Completed", None, uploaded, started)

    # -- a processing job ------------------------------------------------------------------
    def _process(self, run: _Run, spec: ProcessingSpec) -> Outcome:
        """Run a processing job: each host's ``/opt/ml`` staged (inputs, config), its
        ``ContainerEntrypoint`` run in the framework's environment with that directory as its
        ``/opt/ml``, outputs uploaded; ``ExitMessage`` from ``/opt/ml/output/message``."""
        ws = Workspace(self.jobs_root / spec.name)
        hosts = [_Host(f"algo-{i}", Workspace(ws.root / f"algo-{i}"))
                 for i in range(1, spec.instance_count + 1)]
        started = time.time()
        deadline = time.monotonic() + spec.max_runtime  # MaxRuntimeInSeconds from the start
        try:
            if spec.image is not None and self.containers is None:  # own image: containers
                raise JobFailure(no_engine_reason(spec.image))
            if spec.image is None and (why := _unrunnable(spec)) is not None:
                raise JobFailure(why)
            ws.remove()
            epoch = int(time.time())
            streams = [f"{spec.name}/{host.name}-{epoch}" for host in hosts]
            python = (None if spec.framework is None else
                      self._environment(run, streams[0], spec.framework, None, deadline))
            for index, host in enumerate(hosts):
                processing.stage(self._objects(run), spec, host.ws.root, host_index=index,
                                 host_count=len(hosts))
            self.events.advance(spec.name, "Processing")
            continuous = [sync for host in hosts for sync in processing.output_syncs(
                self._objects(run), spec, host.ws.root, continuous=True)]
            result = self._run_hosts(run, spec, hosts, streams, python, continuous, deadline)
            message = next(filter(None, (processing.exit_message(host.ws.root)
                                         for host in hosts)), None)
            if result.status == "Completed":
                syncs = [sync for host in hosts for sync in processing.output_syncs(
                    self._objects(run), spec, host.ws.root, continuous=False)]
                upload_all(syncs)  # nothing is written unless all may be
            elif result.status == "MaxRuntimeExceeded":
                result = _processing_timeout(spec)
        except JobEnded as ended:  # stopped or out of time while its environment built
            return _processing_ended(ended, ws, spec, started)
        except (ChannelError, JobFailure) as err:
            return _failed(ws, f"ClientError: {err}", started)
        except AwsError as err:
            return _failed(ws, f"ClientError: {err.message}", started)
        ws.remove()
        return Outcome(result.status, result.failure_reason, False, started,
                       exit_message=message)

    def _run_hosts(self, run: _Run, spec: ProcessingSpec, hosts: list[_Host],
                   streams: list[str], python: Path | None,
                   syncs: Sequence[CheckpointSync], deadline: float) -> Outcome:
        """Each host's process: the entry point in the framework's environment (``python``),
        or the own image's container, until ``deadline`` (``time.monotonic()``)."""
        cpus = cpus_for(spec.instance_type)
        shim = processing.pip_shim(self.jobs_root / ".pip-shim") if python else None
        try:
            for host in hosts:
                proc: JobProcess
                if python is None:
                    proc = self._run_processing_container(spec, host, cpus, self._aws(run))
                else:
                    assert shim is not None
                    env = processing.environment(
                        spec, python, {**without_aws(os.environ), **self._aws(run)}, shim=shim,
                        pip_target=host.ws.root.parent / ".pip" / host.name)
                    host.command = processing.command(spec)
                    proc = self._launch(host.command, str(host.ws.root), env, cpus,
                                        spec.network_isolation, private_ml=host.ws.root,
                                        own=[host.ws.root, host.ws.root.parent / ".pip" /
                                             host.name],
                                        shared=[shim])
                host.proc = proc
                with self._lock:
                    run.procs.append(proc)
            return self._supervise(run, hosts, streams, syncs, deadline)
        except BaseException:
            for host in hosts:
                if host.proc is not None:
                    _signal_group(host.proc, signal.SIGKILL)
            raise
        finally:
            with self._lock:
                run.procs = []

    def _attempt(self, run: _Run, ws: Workspace,
                 deadline: float) -> tuple[Outcome, CheckpointSync | None]:
        """One run of the job from a fresh directory (checkpoints restored from S3), until
        ``deadline`` (``time.monotonic()``; MaxRuntimeInSeconds counts from the start)."""
        spec = run.spec
        assert isinstance(spec, TrainingSpec)
        hosts = self._hosts(spec, ws)
        for host in hosts:
            host.ws.create()
        self.events.advance(spec.name, "Downloading")
        for index, host in enumerate(hosts):
            for channel in spec.channels:
                if input_mode(channel, spec.input_mode) != "Pipe":
                    materialize(self._objects(run), channel,
                                host.ws.channel_dir(channel["ChannelName"]),
                                host_index=index, host_count=len(hosts))
        checkpoints: CheckpointSync | None = None
        if spec.checkpoint:
            ws.default_checkpoint_dir.mkdir()
            checkpoints = CheckpointSync(self._objects(run), spec.checkpoint["S3Uri"],
                                         ws.default_checkpoint_dir)
            checkpoints.restore()
        for host in hosts:
            host.ws.write_config(
                spec.hyperparameters, _input_data_config(spec),
                resource_config(spec.instance_type, spec.instance_count, host.name),
                spec.checkpoint)
        if spec.module is None and spec.script is None and spec.container is None:
            raise JobFailure(spec.unsupported_reason or "The training image is not runnable")
        if spec.container is not None and self.containers is None:
            raise JobFailure(no_engine_reason(spec.container.image))
        if (spec.network_isolation and spec.container is None
                and (why := isolation.unavailable()) is not None):
            raise JobFailure(why)
        epoch = int(time.time())
        streams = [f"{spec.name}/{host.name}-{epoch}" for host in hosts]
        python = (self._prepare_script(run, hosts, streams[0], deadline) if spec.script else
                  self._environment(run, streams[0],
                                    builtin_environment(spec.builtin_environment), None,
                                    deadline)
                  if spec.builtin_environment else None)
        with PipeFeeders(self._objects(run)) as pipes:  # Pipe mode: FIFOs fed until the job ends
            for channel in spec.channels:
                if input_mode(channel, spec.input_mode) == "Pipe":
                    pipes.add(channel, ws.data_dir)
            self.events.advance(spec.name, "Training")
            result = self._train(run, hosts, streams, python, checkpoints, deadline)
        if pipes.errors and result.status in ("Completed", "Failed"):
            # the algorithm saw a channel cut short: that is the failure to report
            result = Outcome("Failed", f"ClientError: {pipes.errors[0]}"[:1024])
        return result, checkpoints

    @staticmethod
    def _hosts(spec: TrainingSpec, ws: Workspace) -> list[_Host]:
        """algo-1 in the job's directory (what is uploaded comes from there); a script-mode
        job's other hosts in directories of their own beneath it (an own image's too: each
        host its container; a built-in that trains across hosts: each its process). Other
        built-ins run one host."""
        count = (spec.instance_count if spec.script or spec.container or spec.across_hosts
                 else 1)
        return [_Host("algo-1", ws)] + [
            _Host(f"algo-{i}", Workspace(ws.root / ".hosts" / f"algo-{i}"))
            for i in range(2, count + 1)]

    def _prepare_script(self, run: _Run, hosts: list[_Host], stream: str,
                        deadline: float) -> Path:
        """The user's code in every host's code directory, and the interpreter of the
        framework's environment (built now if needed, with an overlay for the code's
        ``requirements.txt``; its progress goes to algo-1's log stream). A stop or the
        deadline ends the job while it builds (:meth:`_while_building`)."""
        spec = run.spec
        assert isinstance(spec, TrainingSpec) and spec.script is not None
        primary = hosts[0].ws
        script.unpack_code(self._objects(run), spec.script.request.submit_directory, primary.root,
                           primary.code_dir, self.archive_limits)
        for host in hosts[1:]:
            script.copy_code(primary.code_dir, host.ws.code_dir)
        requirements = primary.code_dir / "requirements.txt"
        return self._environment(run, stream, spec.script.framework,
                                 requirements if requirements.is_file() else None, deadline)

    def _builtin_env(self, env: dict[str, str]) -> None:
        """A built-in environment's interpreter sees the opensage package and its own
        packages, none of the server's (``Environments.opensage_path``)."""
        assert self.environments is not None
        for name in ("PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONSAFEPATH"):
            env.pop(name, None)
        env["PYTHONPATH"] = str(self.environments.opensage_path())

    def _environment(self, run: _Run, stream: str, framework: Framework,
                     requirements: Path | None, deadline: float) -> Path:
        """The interpreter of the framework's environment (with ``requirements`` overlaid),
        built now if needed; its progress goes to the job's log ``stream``. A stop or the
        ``deadline`` ends the job while it builds (:meth:`_while_building`: ``JobEnded``,
        the build cancelled)."""
        name = run.spec.name
        if self.environments is None:
            raise JobFailure(f"The {framework.key} environment is needed to run this job, "
                             f"and this server was started without framework environments")
        environments = self.environments
        cancel = threading.Event()

        def log(line: str) -> None:
            if not cancel.is_set():
                self.events.logs(name, stream, [(int(time.time() * 1000), line)])

        def build() -> Path:
            return environments.python(framework, requirements, log, cancel)

        try:
            return self._while_building(run, build, deadline)
        except EnvironmentBuildError as err:
            raise JobFailure(f"Could not build the {framework.key} environment: "
                             f"{err}") from None
        except JobEnded as ended:
            cancel.set()  # uv is killed; the next job builds the environment again
            self.events.logs(name, stream, [(int(time.time() * 1000), (
                f"{ended.status} while the {framework.key} environment was being built: "
                "the build was cancelled"))])
            raise
        except ExecutorClosing:
            cancel.set()
            raise

    def _while_building(self, run: _Run, build: Callable[[], Path], deadline: float) -> Path:
        """``build()`` (a first-time environment build can take minutes) in a thread of its
        own, while the job keeps watching for a stop and its deadline, which end the job at
        once (``JobEnded``)."""
        done = threading.Event()
        result: list[Path] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                result.append(build())
            except BaseException as err:  # noqa: BLE001 - handed to the job's thread
                errors.append(err)
            finally:
                done.set()

        threading.Thread(target=target, name=f"build-{run.spec.name}", daemon=True).start()
        last_stop_poll = time.monotonic()
        while not done.wait(POLL_SECONDS):
            if self._closing:
                raise ExecutorClosing(run.spec.name)
            last_stop_poll = self._poll_stop(run, last_stop_poll)
            if run.stop_requested:
                raise JobEnded("Stopped")
            if time.monotonic() > deadline:
                raise JobEnded("MaxRuntimeExceeded")
        if errors:
            raise errors[0]
        return result[0]

    def _poll_stop(self, run: _Run, last_poll: float) -> float:
        """Read the job's row when a stop was signalled here or a poll is due, and mark the
        run stopped if it says so; the time of the last poll."""
        moment = time.monotonic()
        if run.stop_requested or not (
                run.recheck_stop or moment - last_poll >= STOP_POLL_SECONDS):
            return last_poll
        run.recheck_stop = False
        if self._asked_to_stop(run.spec.name):
            with self._lock:
                run.stop_requested = True
        return moment

    def _upload(self, spec: TrainingSpec, ws: Workspace, objects: ObjectAccess) -> bool:
        """``model.tar.gz`` (and ``output.tar.gz`` when the job wrote output data) under the
        output path; with a role, both writes are checked before either is made."""
        bucket, prefix = split_s3_uri(spec.output_path.rstrip("/") + "/")
        base = f"{prefix}{spec.name}/output/"
        output = has_files(ws.output_data_dir)
        require_writes(objects, [(bucket, base + "model.tar.gz")]
                       + ([(bucket, base + "output.tar.gz")] if output else []))
        if output:
            pack_and_upload(objects, ws.output_data_dir, ws.root / ".upload" / "output",
                            bucket, base + "output.tar.gz")
        pack_and_upload(objects, ws.model_dir, ws.root / ".upload" / "model", bucket,
                        base + "model.tar.gz")
        return True

    def _upload_quietly(self, spec: TrainingSpec, ws: Workspace,
                        objects: ObjectAccess) -> bool:
        """A stopped job's model is still uploaded when it wrote one (AWS does the same)."""
        if not has_files(ws.model_dir):
            return False
        try:
            return self._upload(spec, ws, objects)
        except (AwsError, ChannelError, OSError):
            return False

    def _objects(self, run: _Run) -> ObjectAccess:
        """The objects as the job's role sees them (``runner.job_role``), else all."""
        return self.objects if run.role is None else AsRole(self.objects, run.role)

    def _aws(self, run: _Run) -> dict[str, str]:
        """What boto3 in the job needs to call this server: with a role, its credentials."""
        return self.aws if run.role is None else {**self.aws, **run.role.environment}

    def _train(self, run: _Run, hosts: list[_Host], streams: list[str], python: Path | None,
               checkpoints: CheckpointSync | None, deadline: float) -> Outcome:
        spec = run.spec
        assert isinstance(spec, TrainingSpec)
        cpus = cpus_for(spec.instance_type)
        entry = None if spec.script is None else UserEntry(
            spec.script.request.submit_directory, spec.script.request.program,
            spec.script.framework_module)
        port = _free_port() if spec.script and spec.script.request.launcher else 0
        hyperparameters = spec.hyperparameters if spec.script is None else (
            spec.script.toolkit_hyperparameters(spec.hyperparameters, spec.name))
        collective = (f"127.0.0.1:{_free_port()}" if spec.across_hosts and len(hosts) > 1
                      else None)
        try:
            for index, host in enumerate(hosts):
                env = {**without_aws(os.environ), **container_env(
                    host.ws, job_name=spec.name, job_arn=spec.arn, region=spec.region,
                    hyperparameters=hyperparameters,
                    input_data_config=_input_data_config(spec),
                    resource=resource_config(spec.instance_type, spec.instance_count,
                                             host.name),
                    num_cpus=cpus, user_env=spec.environment, entry=entry,
                    aws=self._aws(run))}
                env["PYTHONUNBUFFERED"] = "1"
                if collective is not None:
                    env["OPENSAGE_COLLECTIVE_ADDRESS"] = collective
                proc: JobProcess
                if spec.container is not None:
                    proc = self._run_container(spec, host, len(hosts), cpus, self._aws(run))
                elif spec.script is not None and python is not None:
                    _script_env(env, python, host.ws.code_dir, spec.environment)
                    env.update(spec.script.toolkit_environment(spec.region))
                    host.command = script.command(
                        spec.script, python, host.ws.code_dir,
                        to_cmd_args(user_hyperparameters(hyperparameters)),
                        hosts=len(hosts), host_index=index, master_port=port)
                    proc = self._launch(host.command, str(host.ws.code_dir), env, cpus,
                                        spec.network_isolation, own=[host.ws.root])
                elif python is not None:  # a deep-learning built-in, in its environment
                    self._builtin_env(env)
                    proc = self._launch([str(python), "-m", spec.module or "", "train"],
                                        str(host.ws.root), env, cpus, spec.network_isolation,
                                        own=[host.ws.root])
                else:
                    proc = self._start(spec.module or "", str(host.ws.root), env, cpus,
                                       spec.network_isolation, own=[host.ws.root])
                host.proc = proc
                with self._lock:
                    run.procs.append(proc)
            return self._supervise(run, hosts, streams,
                                   [checkpoints] if checkpoints is not None else [], deadline)
        except BaseException:
            for host in hosts:
                if host.proc is not None:
                    _signal_group(host.proc, signal.SIGKILL)
            raise
        finally:
            with self._lock:
                run.procs = []

    def _run_processing_container(self, spec: ProcessingSpec, host: _Host, cpus: int,
                                  aws: Mapping[str, str]) -> ContainerProcess:
        """The host's container: what boto3 needs to reach this server, the job's
        ``Environment`` last; none of the server's own."""
        assert self.containers is not None
        env = {**aws, "AWS_REGION": spec.region, **spec.environment}
        try:
            return self.containers.run(processing_container(spec, host.ws.root, host.name,
                                                            cpus=cpus, env=env))
        except ContainerError as err:
            raise JobFailure(str(err)) from None

    def _run_container(self, spec: TrainingSpec, host: _Host, count: int, cpus: int,
                       aws: Mapping[str, str]) -> ContainerProcess:
        """The host's container, with the environment the platform gives (paths as the
        container sees them, what boto3 needs to reach this server, the job's ``Environment``
        last), none of the server's own."""
        assert spec.container is not None and self.containers is not None
        env = container_env(
            CONTAINER_ROOT, job_name=spec.name, job_arn=spec.arn, region=spec.region,
            hyperparameters=spec.hyperparameters, input_data_config=_input_data_config(spec),
            resource=resource_config(spec.instance_type, spec.instance_count, host.name),
            num_cpus=cpus, user_env=spec.environment, aws=aws)
        try:
            return self.containers.run(training_container(
                spec.container, host.ws.root, host.name, count, env, cpus=cpus,
                memory_bytes=memory_for(spec.instance_type, cpus),
                isolated=spec.network_isolation))
        except ContainerError as err:
            raise JobFailure(str(err)) from None

    def _start(self, module: str, cwd: str, env: dict[str, str], cpus: int,
               isolate: bool = False, own: Sequence[Path] = ()) -> JobProcess:
        """A built-in: forked from the warm fork server when it preloaded the module, else a
        fresh interpreter through the launcher (always so in a network namespace)."""
        if self.forkserver is not None and module in self.forkserver.modules and not isolate:
            ids = self.cpu_slots.take(cpus)
            try:
                return self._releasing(
                    self.forkserver.spawn(module, ["train"], cwd, env, ids), ids)
            except (OSError, RuntimeError) as err:
                self.cpu_slots.give_back(ids)
                log.warning("fork server unavailable (%s): starting jobs directly", err)
                self.forkserver = None
        return self._launch([sys.executable, "-m", module, "train"], cwd, env, cpus, isolate,
                            own=own)

    def _launch(self, command: list[str], cwd: str, env: dict[str, str], cpus: int,
                isolate: bool, private_ml: Path | None = None, own: Sequence[Path] = (),
                shared: Sequence[Path] = ()) -> JobProcess:
        """``command`` through the launcher: dies with the server, pinned to ``cpus`` CPUs,
        with ``private_ml`` as its ``/opt/ml`` when given; when ``isolate``, in a network
        namespace of its own, and seeing of the server's files (``self.hidden``) only its
        ``own`` directories and, read-only, the framework environments and ``shared``."""
        hide: list[str] = []
        if isolate:
            for path in own:  # given back only if there: a pip target made later could not be
                path.mkdir(parents=True, exist_ok=True)
            hide = isolation.hidden_paths(self.hidden, own, [*self.shared, *shared])
        ids = self.cpu_slots.take(cpus)
        launcher = [sys.executable, "-m", "opensage.runner.launch", str(cpus),
                    str(os.getpid()), "--cpu-ids", ",".join(map(str, ids)),
                    *(["--netns"] if isolate else []),
                    *(["--private-ml", str(private_ml)] if private_ml is not None else []),
                    *hide, "--"]
        try:
            return self._releasing(subprocess.Popen(
                [*launcher, *command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True), ids)
        except BaseException:
            self.cpu_slots.give_back(ids)
            raise

    def _releasing(self, proc: JobProcess, cpus: list[int]) -> JobProcess:
        """``proc``, whose ``cpus`` (taken from ``cpu_slots``) are given back once it ended."""
        def wait() -> None:
            try:
                proc.wait()
            finally:
                self.cpu_slots.give_back(cpus)

        threading.Thread(target=wait, daemon=True, name="opensage-cpu-release").start()
        return proc

    def _supervise(self, run: _Run, hosts: list[_Host], streams: list[str],
                   syncs: Sequence[CheckpointSync], deadline: float) -> Outcome:
        """Stream every host's output to its log stream (and metrics), enforce stop,
        MaxRuntime and spot interruptions, until every host has ended. The first host that
        fails fails the job, and the others are stopped."""
        spec = run.spec
        lines: queue.Queue[tuple[int, bytes | None]] = queue.Queue()
        for index, host in enumerate(hosts):
            threading.Thread(target=_pump, args=(host.proc, index, lines), daemon=True).start()
        patterns = metric_parsing.compile_definitions(
            spec.metric_definitions if isinstance(spec, TrainingSpec) else [])
        prompt = isinstance(spec, TrainingSpec) and spec.prompt_metrics
        pending: list[list[tuple[int, str]]] = [[] for _ in hosts]
        found: list[tuple[str, float, float]] = []
        ending: str | None = None
        failed: tuple[_Host, int] | None = None
        last_flush = last_sync = last_stop_poll = time.monotonic()
        open_streams = len(hosts)
        while open_streams:
            try:
                item: tuple[int, bytes | None] | None = lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                item = None
            while item is not None:
                index, raw = item
                if raw is None:
                    hosts[index].eof = True
                    open_streams -= 1
                elif raw:
                    text = as_logged(raw)
                    now = time.time()
                    pending[index].append((int(now * 1000), text))
                    hosts[index].tail.append(text)
                    found += [(m, v, now) for m, v in metric_parsing.extract(patterns, text)]
                try:
                    item = lines.get_nowait()
                except queue.Empty:
                    break
            moment = time.monotonic()
            due = not open_streams or moment - last_flush >= LOG_FLUSH_SECONDS or (
                found and prompt and moment - last_flush >= PROMPT_FLUSH_SECONDS)
            if (found or any(pending)) and due:
                # one write per flush and stream, not per line: each is a transaction
                for index, events in enumerate(pending):
                    if events:
                        self.events.logs(spec.name, streams[index], events)
                if found:
                    self.events.metrics(spec.name, found)
                pending, found = [[] for _ in hosts], []
                last_flush = moment
            if syncs and moment - last_sync >= 2:
                upload_all(list(syncs))  # a round the role may not write in whole: none of it
                last_sync = moment
            last_stop_poll = self._poll_stop(run, last_stop_poll)
            if failed is None and ending is None and len(hosts) > 1:
                failed = _first_failure(hosts)
                if failed is not None:  # one host failed: the others are stopped
                    for host in hosts:
                        if host.proc is not None and host.proc.poll() is None:
                            self._terminate(host.proc)
            if ending is None and failed is None:
                if run.stop_requested:
                    ending = "Stopped"
                elif moment > deadline:
                    ending = "MaxRuntimeExceeded"
                elif self._interrupted(run, POLL_SECONDS):
                    ending = "Interrupted"
                if ending is not None:
                    for host in hosts:
                        assert host.proc is not None
                        self._terminate(host.proc)
        codes = [host.proc.wait() for host in hosts if host.proc is not None]
        if self._closing:
            raise ExecutorClosing(spec.name)
        if ending is not None:
            return Outcome(ending)
        if failed is None:
            failed = _first_failure(hosts)
        if failed is None and all(code == 0 for code in codes):
            return Outcome("Completed")
        host, code = _cause(hosts, failed or (hosts[0], codes[0]))
        return Outcome("Failed", _failure_reason(host, code)[:1024])

    def _terminate(self, proc: JobProcess) -> None:
        """SIGTERM, then SIGKILL after the grace period, off the supervising thread."""
        _signal_group(proc, signal.SIGTERM)

        def kill_later() -> None:
            try:
                proc.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)

        threading.Thread(target=kill_later, daemon=True).start()


_CONTROL = {c: f"#{c:03o}" for c in range(32)}


def as_logged(raw: bytes) -> str:
    """A stdout line as SageMaker's log agent stores it: control characters as ``#ooo``
    octal (a tab becomes ``#011``), which is what the metric regexes are written against."""
    return raw.decode("utf-8", "replace").rstrip("\r\n").translate(_CONTROL)


def _pump(proc: JobProcess, index: int, lines: queue.Queue[tuple[int, bytes | None]]) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        lines.put((index, raw))
    lines.put((index, None))


def _cause(hosts: list[_Host], failed: tuple[_Host, int]) -> tuple[_Host, int]:
    """The failure to report: ``failed``, unless its host only failed because another broke
    the hosts' collective (``PeerFailure``) and a host wrote a reason of its own."""
    if not is_peer_failure(failed[0].ws.read_failure()):
        return failed
    for host in hosts:
        reason = host.ws.read_failure()
        if reason and not is_peer_failure(reason) and host.proc is not None:
            return host, host.proc.poll() or 1
    return failed


def _first_failure(hosts: list[_Host]) -> tuple[_Host, int] | None:
    """A host whose process has ended badly and whose output has been read to its end."""
    for host in hosts:
        if host.eof and host.proc is not None:
            code = host.proc.poll()
            if code not in (None, 0):
                return host, code
    return None


def _unrunnable(spec: ProcessingSpec) -> str | None:
    """Why a framework image's processing job cannot run on this machine, or None."""
    if spec.framework is None:
        return spec.unsupported_reason or "The image is not runnable here"
    if (why := isolation.private_ml_unavailable()) is not None:
        return why
    return isolation.unavailable() if spec.network_isolation else None


def _processing_timeout(spec: ProcessingSpec) -> Outcome:
    """How a processing job out of time ends: Failed, saying so."""
    return Outcome("Failed", "MaxRuntimeExceeded: the job ran longer than its "
                   f"MaxRuntimeInSeconds ({spec.max_runtime} s) and was stopped")


def _processing_ended(ended: JobEnded, ws: Workspace, spec: ProcessingSpec,
                      started: float | None) -> Outcome:
    """A processing job stopped, or out of time, before its code ran to an end."""
    ws.remove()
    if ended.status == "MaxRuntimeExceeded":
        timeout = _processing_timeout(spec)
        return Outcome(timeout.status, timeout.failure_reason, False, started)
    return Outcome(ended.status, None, False, started)


def _failure_reason(host: _Host, code: int) -> str:
    """``output/failure`` when the job wrote it; else the toolkit's ExecuteUserScriptError
    for a script, or the output's last lines for a built-in."""
    reason = host.ws.read_failure()
    if reason is not None:
        return reason
    if host.command is not None:
        return script.failure_reason(code, host.command, host.tail)
    last = " | ".join(list(host.tail)[-8:]) or "no output"
    how = f"signal {-code}" if code < 0 else f"exit code: {code}"
    return f"AlgorithmError: {last[-900:]}, {how}"


def _script_env(env: dict[str, str], python: Path, code_dir: Path,
                user_env: dict[str, str]) -> None:
    """A script's interpreter and tools come first on PATH (``python``, ``pip`` and
    ``torchrun`` in a ``.sh`` entry point are the framework's); its code directory is its
    PYTHONPATH (before the job's own, never the server's)."""
    env.pop("PYTHONHOME", None)
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", os.defpath)])
    env["PYTHONPATH"] = os.pathsep.join(
        [str(code_dir), *([user_env["PYTHONPATH"]] if user_env.get("PYTHONPATH") else [])])


def _free_port() -> int:
    """A port for torchrun's rendezvous on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(proc: JobProcess, sig: int) -> None:
    if not isinstance(proc, (subprocess.Popen, ForkedProcess)):  # a container, a remote host
        proc.send_signal(sig)
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _failed(ws: Workspace, reason: str, started: float | None) -> Outcome:
    ws.remove()
    return Outcome("Failed", reason[:1024], False, started)


def _input_data_config(spec: TrainingSpec) -> dict[str, Any]:
    config = {}
    for channel in spec.channels:
        source = channel["DataSource"].get("S3DataSource", {})
        entry = {"TrainingInputMode": channel.get("InputMode") or spec.input_mode,
                 "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                 "RecordWrapperType": channel.get("RecordWrapperType", "None")}
        for key in ("ContentType", "CompressionType", "ShuffleConfig"):
            if channel.get(key) is not None:
                entry[key] = channel[key]
        config[channel["ChannelName"]] = entry
    return config
