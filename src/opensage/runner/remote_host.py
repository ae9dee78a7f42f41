"""One training host (``algo-N``) run on another machine, such as a Ray node.

The Ray executor makes each host of a job an actor of this class (``runner/ray_executor.py``
wraps it; nothing here imports Ray). On its node the host lays out its own ``/opt/ml``
directory, stages its channels and checkpoints from the object store through S3
(``RemoteObjects``: the server's facade, never the server's disk), runs the same command the
local executor runs, hands its output lines to the server as they come (``read``), syncs
checkpoints while it runs, and packs and uploads ``model.tar.gz`` / ``output.tar.gz``
through S3 when it has ended (the facade publishes an object only once complete).

A script-mode host also unpacks the job's ``sourcedir.tar.gz`` (through S3 too) and gets the
framework's environment on its node (``Environments.python``: built there if missing, under
that machine's lock; the build's output is the first lines the host hands out), then runs the
toolkit's command line with the toolkit's environment, as the local executor does.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensage.data.archives import ArchiveLimits
from opensage.errors import AwsError
from opensage.runner import processing
from opensage.runner.artifacts import has_files, pack_and_upload
from opensage.runner.channels import input_mode, materialize, split_s3_uri
from opensage.runner.checkpoints import CheckpointSync
from opensage.runner.environments import Environments
from opensage.runner.forkserver import ForkedProcess
from opensage.runner.job_role import FacadeDenials
from opensage.runner.local import _script_env
from opensage.runner.object_access import RemoteObjects, S3Endpoint
from opensage.runner.pipes import PipeFeeders
from opensage.runner.toolkit import isolation, script
from opensage.runner.toolkit.contract import (
    UserEntry,
    aws_environment,
    container_env,
    resource_config,
    to_cmd_args,
    user_hyperparameters,
    without_aws,
)
from opensage.runner.workspace import Workspace
from opensage.settings import NODE_HOSTS_DIR

if TYPE_CHECKING:
    from opensage.runner.node_agent import NodeAgent

log = logging.getLogger(__name__)
HOSTS_DIR = NODE_HOSTS_DIR  # each host's directory, under the node's temporary directory
READ_WAIT_SECONDS = 0.2  # how long ``read`` holds a call open waiting for a line
CHECKPOINT_SYNC_SECONDS = 2.0


class HostUnfit(Exception):
    """This node cannot run the host as the job asks; the text is the job's FailureReason."""


class RemoteHost:
    """A host of one attempt of a training job, on the machine it was placed on."""

    def __init__(self, spec: Any, host_index: int, host_count: int, endpoint: S3Endpoint,
                 input_data_config: dict[str, Any], cpus: int,
                 scratch: str | None = None, frameworks_dir: str | None = None,
                 wheelhouse: list[str] | None = None,
                 archive_limits: ArchiveLimits | None = None,
                 code_credentials: dict[str, str] | None = None,
                 hidden: list[str] | None = None) -> None:
        """``frameworks_dir``, ``wheelhouse``, ``archive_limits``: a script-mode job's (where
        this node keeps framework environments, the wheels they may use, the caps on
        unpacking the code). ``code_credentials``: what the job's own code signs its calls
        with (its role's session; none: the keys an unauthenticated server takes, as
        locally), never the session ``endpoint`` carries, which may be the server's own.
        ``hidden``: the server's files, hidden from a job with EnableNetworkIsolation should
        this node be the server's machine (with the node's own, ``isolation_flags``)."""
        self.spec = spec  # a runner.local.TrainingSpec
        self.index, self.count, self.cpus = host_index, host_count, cpus
        self.name = f"algo-{host_index + 1}"
        # the endpoint signs with the job's session (its role's, or the server's own): the
        # facade checks each call, a denial fails the job as AsRole's does locally
        self.endpoint = endpoint
        self.objects = FacadeDenials(RemoteObjects(endpoint))
        self.code_credentials = dict(code_credentials or {})
        self.input_data_config = input_data_config
        base = Path(scratch or tempfile.gettempdir()) / HOSTS_DIR
        self.ws = Workspace(base / f"{spec.name}-{self.name}-{uuid.uuid4().hex[:8]}")
        self._lines: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._eof = False
        self._proc: subprocess.Popen[bytes] | ForkedProcess | None = None
        self._checkpoints: CheckpointSync | None = None
        self._pipes: PipeFeeders | None = None  # Pipe mode's channels, fed on this node
        self.frameworks = None if frameworks_dir is None else Environments(
            Path(frameworks_dir), wheelhouse=[Path(p) for p in wheelhouse or []])
        self.archive_limits = archive_limits
        self._python: Path | None = None  # script mode: the framework environment's
        self._cancel = threading.Event()  # ends an environment build (the job was stopped)
        self.node: NodeAgent | None = None  # the agent holding this host (set by it)
        self.hidden = list(hidden or [])
        self.shared = [p for p in (frameworks_dir, *(wheelhouse or [])) if p]
        self._cpu_ids: list[int] | None = None  # the node's CPUs given to this host

    def node_address(self) -> str:
        """This node's address as other hosts reach it (the one the S3 endpoint is reached
        from: the interface that routes there)."""
        return self.endpoint.reached_from()

    @staticmethod
    def free_port() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("", 0))
            return int(sock.getsockname()[1])

    def stage(self) -> None:
        """The host's ``/opt/ml``: channels (its shard of ShardedByS3Key ones), config files,
        checkpoints restored. A channel that cannot be provided raises ``ChannelError``."""
        spec = self.spec
        self._check_isolation()
        self.ws.create()
        for channel in spec.channels:
            if input_mode(channel, spec.input_mode) == "Pipe":  # fed from S3 while it runs
                if self._pipes is None:
                    self._pipes = PipeFeeders(self.objects, host_index=self.index,
                                              host_count=self.count)
                self._pipes.add(channel, self.ws.data_dir)
                continue
            materialize(self.objects, channel, self.ws.channel_dir(channel["ChannelName"]),
                        host_index=self.index, host_count=self.count)
        if spec.checkpoint:
            self.ws.default_checkpoint_dir.mkdir(exist_ok=True)
            self._checkpoints = CheckpointSync(self.objects, spec.checkpoint["S3Uri"],
                                               self.ws.default_checkpoint_dir)
            self._checkpoints.restore()
        if spec.script is not None:
            self._stage_script()
        self.ws.write_config(spec.hyperparameters, self.input_data_config,
                             resource_config(spec.instance_type, spec.instance_count,
                                             self.name), spec.checkpoint)

    def _check_isolation(self) -> None:
        """``HostUnfit`` when the job wants EnableNetworkIsolation and this node cannot
        give it (the kernel refuses the namespaces): it never runs unisolated."""
        if self.spec.network_isolation and (why := isolation.unavailable()) is not None:
            raise HostUnfit(why)

    def isolation_flags(self, own: list[Path], ro: Sequence[str] = ()) -> tuple[str, ...]:
        """The launcher's flags for a job with EnableNetworkIsolation (none without): a
        network namespace of its own, and of the files it would see on this node, only its
        ``own`` directories and, read-only, the framework environments and ``ro``. Hidden:
        the server's files (this may be its machine), every host's and model instance's
        directory on the node, and Ray's (its sockets would make the job a Ray client)."""
        if not self.spec.network_isolation:
            return ()
        hide = [*self.hidden, str(self.ws.root.parent),
                *(self.node.private if self.node is not None else [])]
        return ("--netns", *isolation.hidden_paths([Path(p) for p in hide], own,
                                                   [Path(p) for p in (*self.shared, *ro)]))

    def _stage_script(self) -> None:
        """The user's code in the host's code directory, and the framework's interpreter on
        this node (with an overlay for the code's ``requirements.txt``; the build's lines on
        the host's stream). Raises ``ScriptError`` / ``EnvironmentBuildError`` with the
        job's FailureReason."""
        mode = self.spec.script
        if self.frameworks is None or self.archive_limits is None:
            raise script.ScriptError("ClientError: this server gives its Ray hosts no "
                                     "framework environments, which script mode needs")
        script.unpack_code(self.objects, mode.request.submit_directory, self.ws.root,
                           self.ws.code_dir, self.archive_limits)
        requirements = self.ws.code_dir / "requirements.txt"
        self._python = self.frameworks.python(
            mode.framework, requirements if requirements.is_file() else None, self._say,
            self._cancel)

    def cancel(self) -> None:
        """Stop an environment build under way (the job was stopped meanwhile)."""
        self._cancel.set()

    def start(self, extra_env: dict[str, str]) -> list[str] | None:
        """Run the built-in's ``python -m <module> train`` in the host's directory, or a
        script's command line in its code directory, through the launcher (pinned to the
        host's CPUs, dying with this actor). A script's command line is returned (its
        FailureReason names it)."""
        if self.spec.script is not None:
            return self._start_script(extra_env)
        spec = self.spec
        env = {**os.environ, **container_env(
            self.ws, job_name=spec.name, job_arn=spec.arn, region=spec.region,
            hyperparameters=spec.hyperparameters, input_data_config=self.input_data_config,
            resource=resource_config(spec.instance_type, spec.instance_count, self.name),
            num_cpus=self.cpus, user_env=spec.environment), **extra_env}
        env["PYTHONUNBUFFERED"] = "1"
        forkserver = self.node.forkserver if self.node is not None else None
        if (forkserver is not None and spec.module in forkserver.modules
                and not spec.network_isolation):  # an isolated host is never forked
            try:  # forked from the node's warm fork server: no import time
                self._proc = forkserver.spawn(spec.module, ["train"], str(self.ws.root), env,
                                              self._take_cpus())
            except (OSError, RuntimeError) as err:
                log.warning("fork server unavailable (%s): starting a fresh interpreter", err)
                if self.node is not None:
                    self.node.forkserver = None
            else:
                self._watch()
                return None
        self._launch([sys.executable, "-m", spec.module, "train"], env,
                     self.isolation_flags([self.ws.root]))
        return None

    def _start_script(self, extra_env: dict[str, str]) -> list[str]:
        """The toolkit's environment (``SM_HOSTS``, ``SM_CURRENT_HOST``...; boto3 reaches
        the server's endpoint) and command line (torchrun meeting at ``MASTER_ADDR``)."""
        spec, mode = self.spec, self.spec.script
        assert self._python is not None, "stage() first"
        hyperparameters = mode.toolkit_hyperparameters(spec.hyperparameters, spec.name)
        aws = {**aws_environment(self.endpoint.url, self.endpoint.region),
               **self.code_credentials}
        env = {**without_aws(os.environ), **container_env(
            self.ws, job_name=spec.name, job_arn=spec.arn, region=spec.region,
            hyperparameters=hyperparameters, input_data_config=self.input_data_config,
            resource=resource_config(spec.instance_type, spec.instance_count, self.name),
            num_cpus=self.cpus, user_env=spec.environment,
            entry=UserEntry(mode.request.submit_directory, mode.request.program,
                            mode.framework_module), aws=aws), **extra_env}
        env["PYTHONUNBUFFERED"] = "1"
        _script_env(env, self._python, self.ws.code_dir, spec.environment)
        env.update(mode.toolkit_environment(spec.region))
        command = script.command(
            mode, self._python, self.ws.code_dir,
            to_cmd_args(user_hyperparameters(hyperparameters)), hosts=self.count,
            host_index=self.index, master_port=int(extra_env.get("MASTER_PORT", "0")),
            master_addr=extra_env.get("MASTER_ADDR", "127.0.0.1"))
        self._launch(command, env, self.isolation_flags([self.ws.root]), cwd=self.ws.code_dir)
        return command

    def _launch(self, command: list[str], env: dict[str, str],
                launcher_flags: tuple[str, ...] = (), cwd: Path | None = None) -> None:
        """``command`` in the host's directory (or ``cwd``) through the launcher (pinned to
        the host's CPUs, dying with this process); its output is handed out by ``read``."""
        cpus = self._take_cpus()
        flags = ("--cpu-ids", ",".join(map(str, cpus))) if isinstance(cpus, list) else ()
        argv = [sys.executable, "-m", "opensage.runner.launch", str(self.cpus),
                str(os.getpid()), *flags, *launcher_flags, "--", *command]

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(argv, cwd=str(cwd or self.ws.root), env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)

        # on an agent, from its long-lived thread (PDEATHSIG follows the thread that forked)
        self._proc = self.node.spawner.submit(popen).result() if self.node else popen()
        self._watch()

    def _take_cpus(self) -> list[int] | int:
        """The CPUs this host runs on: its own share of the node's (on an agent), else a
        count (the first ones)."""
        if self.node is None:
            return self.cpus
        if self._cpu_ids is None:
            self._cpu_ids = self.node.cpus.take(self.cpus)
        return self._cpu_ids

    def _watch(self) -> None:
        """Hand the started process's output out (``read``) and sync its checkpoints."""
        threading.Thread(target=self._pump, daemon=True).start()
        if self._checkpoints is not None:
            threading.Thread(target=self._sync_checkpoints, daemon=True).start()

    def _say(self, line: str) -> None:
        """A line of the host's own (an environment's build) on its log stream."""
        with self._cond:
            self._lines.append(line.rstrip("\n").encode() + b"\n")
            self._cond.notify_all()

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in iter(self._proc.stdout.readline, b""):
            with self._cond:
                self._lines.append(raw)
                self._cond.notify_all()
        self._proc.wait()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _sync_checkpoints(self) -> None:
        assert self._proc is not None and self._checkpoints is not None
        while self._proc.poll() is None:
            time.sleep(CHECKPOINT_SYNC_SECONDS)
            try:
                self._checkpoints.upload_changes()
            except (OSError, AwsError):  # the next round tries again; the final sync reports
                log.warning("syncing checkpoints failed", exc_info=True)

    def read(self, limit: int = 500) -> tuple[list[bytes], int | None]:
        """The output lines since the last call (waiting a moment for one), and the exit
        code once the process has ended and every line was handed out."""
        with self._cond:
            if not self._lines and not self._eof:
                self._cond.wait(READ_WAIT_SECONDS)
            lines = [self._lines.popleft() for _ in range(min(limit, len(self._lines)))]
            done = self._eof and not self._lines
        code = self._proc.returncode if done and self._proc is not None else None
        return lines, code

    def signal(self, sig: int) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def finish(self, upload: bool) -> dict[str, Any]:
        """After the process ended: the last checkpoints, the host's ``output/failure``, and
        (``upload``: algo-1) ``model.tar.gz`` and ``output.tar.gz`` under the job's output
        path when the model directory has files. The directory is removed."""
        try:
            pipe_error = None
            if self._pipes is not None:  # a channel cut short is the failure to report
                self._pipes.close()
                pipe_error = next(iter(self._pipes.errors), None)
            if self._checkpoints is not None:
                self._checkpoints.upload_changes()
            failure = self.ws.read_failure()
            uploaded = False
            if upload and has_files(self.ws.model_dir):
                bucket, prefix = split_s3_uri(self.spec.output_path.rstrip("/") + "/")
                base = f"{prefix}{self.spec.name}/output/"
                if has_files(self.ws.output_data_dir):
                    pack_and_upload(self.objects, self.ws.output_data_dir,
                                    self.ws.root / ".upload" / "output", bucket,
                                    base + "output.tar.gz")
                pack_and_upload(self.objects, self.ws.model_dir,
                                self.ws.root / ".upload" / "model", bucket,
                                base + "model.tar.gz")
                uploaded = True
            return {"failure": failure, "uploaded": uploaded, "pipe_error": pipe_error}
        finally:
            self.close()

    def close(self) -> None:
        self.signal(signal.SIGKILL)
        if self._pipes is not None:
            self._pipes.close()
        shutil.rmtree(self.ws.root, ignore_errors=True)
        if self.node is not None and self._cpu_ids is not None:
            self.node.cpus.give_back(self._cpu_ids)
            self._cpu_ids = None


class RemoteProcessingHost(RemoteHost):
    """A host of a processing job on the machine it was placed on: the same ``/opt/ml`` the
    local executor lays out (``runner.processing.stage``, inputs through S3), the framework's
    environment built (or found) in this node's frameworks directory, the entry point run
    with that directory as its ``/opt/ml`` (a mount namespace of its own), outputs uploaded
    through S3 from here: Continuous ones while it runs, every one once it completed."""

    def __init__(self, spec: Any, host_index: int, host_count: int, endpoint: S3Endpoint,
                 cpus: int, frameworks_dir: str, wheelhouse: list[str],
                 code_credentials: dict[str, str], scratch: str | None = None,
                 hidden: list[str] | None = None) -> None:
        """``code_credentials``, ``hidden``: as ``RemoteHost``'s."""
        super().__init__(spec, host_index, host_count, endpoint, {}, cpus, scratch,
                         frameworks_dir, wheelhouse, code_credentials=code_credentials,
                         hidden=hidden)
        self._continuous: list[CheckpointSync] = []
        self._pip_target = self.ws.root.with_name(self.ws.root.name + ".pip")

    def stage(self) -> None:
        """The framework's environment (its build's lines on the host's stream), then the
        host's ``/opt/ml``. ``ChannelError``: an input cannot be provided;
        ``EnvironmentBuildError``: the environment could not be built."""
        spec = self.spec
        assert spec.framework is not None
        self._check_isolation()
        assert self.frameworks is not None
        self._python = self.frameworks.python(spec.framework, None, self._say, self._cancel)
        processing.stage(self.objects, spec, self.ws.root, host_index=self.index,
                         host_count=self.count)

    def start(self, extra_env: dict[str, str]) -> None:
        spec = self.spec
        assert self._python is not None
        scratch = self.ws.root.parent
        shim = processing.pip_shim(scratch / ".pip-shim")
        base = {**without_aws(os.environ),
                **aws_environment(self.endpoint.url, self.endpoint.region),
                **self.code_credentials}
        env = processing.environment(spec, self._python, base, shim=shim,
                                     pip_target=self._pip_target)
        env.update(extra_env)
        self._continuous = processing.output_syncs(self.objects, spec, self.ws.root,
                                                   continuous=True)
        self._pip_target.mkdir(parents=True, exist_ok=True)  # bound back when isolated
        self._launch(processing.command(spec), env, (
            "--private-ml", str(self.ws.root),
            *self.isolation_flags([self.ws.root, self._pip_target], [str(shim)])))
        if self._continuous:
            threading.Thread(target=self._sync_outputs, daemon=True).start()

    def _sync_outputs(self) -> None:
        assert self._proc is not None
        while self._proc.poll() is None:
            time.sleep(CHECKPOINT_SYNC_SECONDS)
            for sync in self._continuous:
                try:
                    sync.upload_changes()
                except (OSError, AwsError):  # the next round tries again
                    log.warning("uploading a Continuous output failed", exc_info=True)

    def finish(self, upload: bool) -> dict[str, Any]:
        """After the process ended: ``output/failure`` and ``output/message``, and
        (``upload``: the job completed) every output uploaded to its S3Uri. The directory is
        removed."""
        try:
            uploaded = False
            if upload:
                for sync in processing.output_syncs(self.objects, self.spec, self.ws.root,
                                                    continuous=False):
                    sync.upload_changes()
                uploaded = True
            return {"failure": self.ws.read_failure(),
                    "message": processing.exit_message(self.ws.root), "uploaded": uploaded}
        finally:
            self.close()

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._pip_target, ignore_errors=True)
