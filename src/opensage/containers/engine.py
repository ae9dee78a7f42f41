"""The user's own images, run through a container engine's HTTP API (Docker's ``dockerd``, or
Podman's Docker-compatible service), with the ``docker`` client library (the ``containers``
extra).

:func:`find_engine` looks for an engine once, at start-up: ``--container-engine`` /
``OPENSAGE_CONTAINER_ENGINE`` (a socket path or URL; ``none`` turns containers off), else
``DOCKER_HOST``, else Docker's and Podman's default sockets. Nothing else in opensage needs
one: built-in algorithms, framework images and script mode run without.

:meth:`ContainerEngine.run` starts a container and hands back a :class:`ContainerProcess`,
the part of ``subprocess.Popen`` the training executor and the model workers use: ``stdout``
(the container's output, stdout and stderr merged, a real pipe read line by line),
``poll``/``wait``/``returncode``, and ``send_signal``. The container is removed once it has
exited and its output has been read out of the engine, before ``returncode`` is set.
Images come from the engine's local store only: nothing is ever pulled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

# Default sockets, in the order they are tried: rootful Docker, rootful Podman, then the
# user's rootless Podman and Docker.
DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/podman/podman.sock")
LABEL = "opensage"  # every container opensage starts carries it (value: what it is for)
CONTAINER_PORT = 8080  # SageMaker's serving contract
NO_ENGINE_HELP = ("built-in algorithms, framework images (script mode) and their models need "
                  "none")


class ContainerError(Exception):
    """A container could not be created or started; the message is a FailureReason's tail."""


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """One container to run (``docker run`` without pulling)."""

    image: str
    command: Sequence[str] | None = None  # None: the image's CMD
    entrypoint: Sequence[str] | None = None  # None: the image's ENTRYPOINT
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[Mount] = ()
    # "none" (EnableNetworkIsolation), "host", or None: the engine's default bridge
    network_mode: str | None = None
    publish: int | None = None  # this container port published on 127.0.0.1, a free port
    cpus: float | None = None
    memory_bytes: int | None = None
    hostname: str | None = None
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    purpose: str = "job"  # the ``opensage`` label's value


class ContainerProcess:
    """A started container, as the executor and the fleet see a process."""

    def __init__(self, engine: ContainerEngine, container_id: str) -> None:
        self.engine = engine
        self.id = container_id
        self.returncode: int | None = None
        self.host_port: int | None = None
        self._exited: Future[int] = Future()
        read_end, write_end = os.pipe()
        self.stdout: IO[bytes] = os.fdopen(read_end, "rb")
        self._sink = os.fdopen(write_end, "wb")
        threading.Thread(target=self._follow, daemon=True,
                         name=f"container-{container_id[:12]}").start()

    @property
    def pid(self) -> str:
        """What stands for a process id in messages (the short container id)."""
        return self.id[:12]

    def _follow(self) -> None:
        """Copy the output into the pipe until the container ends, then collect its exit
        code and remove it."""
        api = self.engine.api
        code = 255  # what the engine could not tell: a failure
        try:
            try:
                for chunk in api.logs(self.id, stream=True, follow=True, stdout=True,
                                      stderr=True):
                    try:
                        self._sink.write(chunk)
                        self._sink.flush()
                    except (BrokenPipeError, ValueError):
                        pass  # nobody reads any more: keep following to the end
            except Exception as e:  # noqa: BLE001 - the exit code still comes below
                log.warning("following the output of container %s failed: %s", self.pid, e)
            finally:
                with contextlib.suppress(OSError, ValueError):
                    self._sink.close()
            try:
                code = int(api.wait(self.id, timeout=None).get("StatusCode", 255))
            except Exception as e:  # noqa: BLE001 - the engine lost it
                log.warning("waiting for container %s failed: %s", self.pid, e)
            self.engine.remove(self.id)
        finally:
            self._exited.set_result(code)

    def poll(self) -> int | None:
        if self._exited.done():
            self.returncode = self._exited.result()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        try:
            self.returncode = self._exited.result(timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(self.pid, timeout or 0) from None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the container's main process (the engine's ``kill``); a container that has
        ended already is left alone."""
        if self._exited.done():
            return
        try:
            self.engine.api.kill(self.id, signal=signal.Signals(sig).name)
        except Exception as e:  # noqa: BLE001 - not running any more (409), or gone (404)
            log.debug("signalling container %s: %s", self.pid, e)


class ContainerEngine:
    """A reachable engine: ``url`` is its API address, ``name`` says what it is."""

    def __init__(self, client: Any, url: str, name: str) -> None:
        self.client = client  # docker.DockerClient
        self.api = client.api  # docker.APIClient
        self.url = url
        self.name = name

    def describe(self) -> str:
        return f"{self.name} at {self.url}"

    def resolve_image(self, image: str) -> str | None:
        """The local image ``image`` names: by its full name, else by its repository and tag
        without the registry (``<account>.dkr.ecr.<region>.amazonaws.com/algo:1`` is found as
        ``algo:1``, the name ``docker build -t`` gave it); None when the engine has neither."""
        import docker.errors

        for candidate in _candidates(image):
            try:
                self.api.inspect_image(candidate)
            except docker.errors.ImageNotFound:
                continue
            except docker.errors.APIError as e:
                if getattr(e, "status_code", None) in (400, 404):
                    continue  # an invalid reference for this engine
                raise ContainerError(f"The container engine failed to look up {image}: "
                                     f"{_explain(e)}") from None
            return candidate
        return None

    def run(self, spec: ContainerSpec) -> ContainerProcess:
        """Create and start ``spec``'s container. Raises :class:`ContainerError` when its
        image is not in the engine or the engine refuses."""
        import docker.errors

        image = self.resolve_image(spec.image)
        if image is None:
            raise ContainerError(missing_image(spec.image, self))
        binds = [f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts]
        host_config = self.api.create_host_config(
            binds=binds, network_mode=spec.network_mode,
            port_bindings={spec.publish: ("127.0.0.1", None)} if spec.publish else None,
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            mem_limit=spec.memory_bytes, extra_hosts=dict(spec.extra_hosts) or None,
            init=False)
        try:
            created = self.api.create_container(
                image, command=list(spec.command) if spec.command is not None else None,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                environment=dict(spec.environment), host_config=host_config,
                ports=[spec.publish] if spec.publish else None,
                hostname=spec.hostname, labels={LABEL: spec.purpose},
                detach=True, stdin_open=False, tty=False)
        except docker.errors.APIError as e:
            raise ContainerError(f"The container engine could not create a container of "
                                 f"{spec.image}: {_explain(e)}") from None
        container_id = str(created["Id"])
        try:
            self.api.start(container_id)
            port = None
            if spec.publish:
                ports = self.api.inspect_container(container_id)["NetworkSettings"]["Ports"]
                port = int(ports[f"{spec.publish}/tcp"][0]["HostPort"])
        except docker.errors.APIError as e:
            self.remove(container_id)
            raise ContainerError(f"The container engine could not start {spec.image}: "
                                 f"{_explain(e)}") from None
        except BaseException:
            self.remove(container_id)
            raise
        process = ContainerProcess(self, container_id)
        process.host_port = port
        return process

    def main_pid(self, container_id: str) -> int:
        """The process id of the container's main process, as the engine's machine numbers
        it (0 when it is not running). Raises :class:`ContainerError`."""
        import docker.errors

        try:
            state = self.api.inspect_container(container_id)["State"]
        except docker.errors.APIError as e:
            raise ContainerError(f"The container engine could not inspect container "
                                 f"{container_id[:12]}: {_explain(e)}") from None
        return int(state.get("Pid") or 0)

    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except Exception as e:  # noqa: BLE001 - gone already
            log.debug("removing container %s: %s", container_id[:12], e)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def missing_image(image: str, engine: ContainerEngine) -> str:
    names = " or ".join(dict.fromkeys(_candidates(image)))
    return (f"The image {image} is not in the local container engine ({engine.describe()}), "
            "and opensage never pulls images: build it there (docker build -t "
            f"{_candidates(image)[-1]} .) or load it (docker load -i image.tar); it is looked "
            f"up as {names}")


def no_engine_reason(image: str) -> str:
    return (f"The image {image} is neither an opensage built-in algorithm nor a framework "
            "image, so it runs in a container, and no container engine is reachable (start "
            "Docker or Podman, or point --container-engine / OPENSAGE_CONTAINER_ENGINE or "
            f"DOCKER_HOST at its socket); {NO_ENGINE_HELP}")


def _candidates(image: str) -> list[str]:
    """The full name, then ``repository[:tag]`` without the registry host."""
    names = [image]
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        names.append(rest)
    return names


def _explain(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error)


def engine_url(configured: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """Where to look for an engine: the setting, ``DOCKER_HOST``, or the first default socket
    that exists (Docker's, Podman's, then the user's rootless ones); None: nowhere."""
    environ = os.environ if environ is None else environ
    if configured:
        if configured.strip().lower() in ("none", "off", "false", "0"):
            return None
        return _as_url(configured.strip())
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"]
    runtime = environ.get("XDG_RUNTIME_DIR")
    sockets = [*DEFAULT_SOCKETS, *([f"{runtime}/podman/podman.sock", f"{runtime}/docker.sock"]
                                   if runtime else [])]
    for path in sockets:
        if Path(path).exists():
            return _as_url(path)
    return None


def engine_sockets(configured: str | None,
                   environ: Mapping[str, str] | None = None) -> list[Path]:
    """Every container engine socket an isolated job must not reach (whoever can talk to an
    engine is root on the machine): the one :func:`engine_url` names, if a unix socket, and
    the default ones (whether they exist now or not)."""
    environ = os.environ if environ is None else environ
    runtime = environ.get("XDG_RUNTIME_DIR")
    paths = [*DEFAULT_SOCKETS, *([f"{runtime}/podman/podman.sock", f"{runtime}/docker.sock"]
                                 if runtime else [])]
    url = engine_url(configured, environ)
    if url is not None and url.startswith("unix://"):
        paths.insert(0, url.removeprefix("unix://"))
    return [Path(p) for p in dict.fromkeys(paths)]


def _as_url(value: str) -> str:
    return f"unix://{value}" if value.startswith("/") else value


def find_engine(configured: str | None, *, timeout: float = 5.0) -> ContainerEngine | None:
    """The engine the setting (or the environment) names, if it answers; logs what it found."""
    url = engine_url(configured)
    if url is None:
        log.info("no container engine configured or found: own images are refused (%s)",
                 NO_ENGINE_HELP)
        return None
    try:
        import docker
    except ImportError:
        log.warning("a container engine may be at %s, but the docker client library is not "
                    "installed (pip install 'opensage[containers]'): own images are refused",
                    url)
        return None
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
        client.ping()
        version = client.version()
    except Exception as e:  # noqa: BLE001 - any failure: no engine
        log.warning("the container engine at %s does not answer (%s): own images are refused",
                    url, e)
        return None
    components = [c.get("Name", "") for c in version.get("Components") or []]
    kind = "Podman" if any("podman" in c.lower() for c in components) else "Docker"
    engine = ContainerEngine(client, url, f"{kind} {version.get('Version', '?')}")
    log.info("container engine: %s", engine.describe())
    return engine
