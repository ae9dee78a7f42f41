"""A training job with the user's own image: each host is a container of that image, run as
SageMaker runs it (``docker run <image> train``) with the host's directory as ``/opt/ml``.

The executor's host loop does the rest as for any job (log streams, metrics, stop, MaxRuntime,
the upload of ``model/``): a :class:`~opensage.containers.ContainerProcess` is the host's
process. Not isolated, the containers share this machine's network, as script mode's hosts
do: ``algo-N`` resolve to 127.0.0.1 and the server's endpoint is reachable; with
``EnableNetworkIsolation`` a container has no network at all (``NetworkMode: none``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opensage.containers import ContainerSpec, Mount
from opensage.runner.processing import ProcessingSpec
from opensage.runner.workspace import Workspace, memory_for

CONTAINER_ROOT = Workspace(Path("/opt/ml"))  # the layout as the container sees it (paths only)


@dataclass(frozen=True)
class OwnImage:
    """What CreateTrainingJob asked to run: the image, and its ``ContainerEntrypoint`` /
    ``ContainerArguments`` when given (else the image's ENTRYPOINT with ``train``)."""

    image: str
    entrypoint: tuple[str, ...] | None = None
    arguments: tuple[str, ...] | None = None

    def command(self) -> list[str]:
        if self.arguments is not None:
            return list(self.arguments)
        return [] if self.entrypoint is not None else ["train"]


def training_container(own: OwnImage, host_dir: Path, host: str, hosts: int,
                       env: dict[str, str], *, cpus: int, memory_bytes: int | None,
                       isolated: bool) -> ContainerSpec:
    """The container of one host: its directory mounted at ``/opt/ml``."""
    return ContainerSpec(
        image=own.image, command=own.command(), entrypoint=own.entrypoint,
        environment=env, mounts=[Mount(host_dir, str(CONTAINER_ROOT.root))],
        network_mode="none" if isolated else "host",
        hostname=host if isolated else None,
        extra_hosts={} if isolated else {f"algo-{i}": "127.0.0.1" for i in range(1, hosts + 1)},
        cpus=cpus, memory_bytes=memory_bytes, purpose="training")


def processing_container(spec: ProcessingSpec, host_dir: Path, host: str, *, cpus: int,
                         env: dict[str, str]) -> ContainerSpec:
    """A processing job's host: ``docker run --entrypoint [ContainerEntrypoint] image
    [ContainerArguments]`` (the image's own entry point without one), its directory at
    ``/opt/ml``."""
    assert spec.image is not None
    command = spec.arguments if spec.arguments or spec.entrypoint else None
    return ContainerSpec(
        image=spec.image, command=command, entrypoint=spec.entrypoint or None,
        environment=env, mounts=[Mount(host_dir, str(CONTAINER_ROOT.root))],
        network_mode="none" if spec.network_isolation else "host",
        hostname=host if spec.network_isolation else None,
        extra_hosts={} if spec.network_isolation else {
            f"algo-{i}": "127.0.0.1" for i in range(1, spec.instance_count + 1)},
        cpus=cpus, memory_bytes=memory_for(spec.instance_type, cpus), purpose="processing")
