"""A container engine of the tests' own, and the images they run, built here.

``engine_url`` (session) starts ``dockerd`` on a private socket and data root, unless
``OPENSAGE_TEST_CONTAINER_ENGINE`` names an engine to use; it SKIPS, saying why, when
``dockerd`` is not installed or does not start (``.ci/run`` installs Debian's ``docker.io``
and ``busybox-static`` when it can). Nothing is pulled: the test image is ``FROM scratch``
with a static busybox, whose ``sh``, ``awk`` and ``nc`` are the algorithm and model server.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENGINE_ENV = "OPENSAGE_TEST_CONTAINER_ENGINE"
START_TIMEOUT = 60.0
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
LOCAL_TAG = "opensage-test-algo:1"  # what `docker build -t` named it
# What a user sends: an ECR-style URI, found locally by its repository and tag.
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/opensage-test-algo:1"

TRAIN = r"""#!/bin/sh
# SageMaker's training contract in busybox sh: hyperparameters and a channel in, model out.
hp() { sed -n "s/^ *\"$1\": *\"\(.*\)\",\{0,1\}$/\1/p" /opt/ml/input/config/hyperparameters.json; }
mode=$(hp mode)
echo "train: mode=${mode} job=${TRAINING_JOB_NAME} host=$(hostname) cmd=$(basename "$0") args=$*"
case "$mode" in
  fit)
    scale=$(hp scale)
    weight=$(find /opt/ml/input/data/train -type f | xargs cat | awk -F, -v k="${scale:-1}" '{s += $1} END {print s * k}')
    echo "$weight" > /opt/ml/model/weight.txt
    echo "$MY_SETTING" > /opt/ml/model/setting.txt
    echo "epoch 1 train_loss=0.5"
    echo "epoch 2 train_loss=0.125"
    ;;
  fail)
    echo "bad input: column 3 is not numeric" > /opt/ml/output/failure
    echo "about to fail" >&2
    exit 3
    ;;
  wait)
    trap 'echo "train: SIGTERM"; echo partial > /opt/ml/model/partial.txt; exit 0' TERM
    echo "train: waiting for a stop"
    while :; do sleep 1 & wait $!; done
    ;;
  net)
    answer=$(printf 'GET /_opensage/health HTTP/1.0\r\n\r\n' | nc -w 3 127.0.0.1 "$SERVER_PORT")
    if printf '%s' "$answer" | grep -q '^HTTP/1.[01] 200'; then
      echo reachable > /opt/ml/model/net.txt
    else
      echo unreachable > /opt/ml/model/net.txt
    fi
    ;;
esac
"""

# The model server: busybox nc answers each connection with `handle`.
SERVE = r"""#!/bin/sh
trap 'echo "serve: SIGTERM"; exit 0' TERM
echo "serve: weight $(cat /opt/ml/model/weight.txt) on port ${SAGEMAKER_BIND_TO_PORT}"
nc -ll -p "${SAGEMAKER_BIND_TO_PORT}" -e /bin/handle &
wait
"""

# One HTTP/1.1 request on stdin, its answer on stdout: /ping, and /invocations multiplying the
# first CSV column of every line by the trained weight.
HANDLE = r"""#!/bin/sh
read -r method path proto
length=0
while read -r line; do
  line=$(printf '%s' "$line" | tr -d '\r')
  [ -z "$line" ] && break
  case "$line" in [Cc]ontent-[Ll]ength:*) length=$(printf '%s' "${line#*:}" | tr -d ' ');; esac
done
body=$(head -c "$length")
status="200 OK"
case "$path" in
  /ping) out="";;
  /invocations)
    out=$(printf '%s\n' "$body" | awk -F, -v w="$(cat /opt/ml/model/weight.txt)" 'NF {print $1 * w}')
    out="$out
";;
  *) status="404 Not Found"; out="no route
";;
esac
printf 'HTTP/1.1 %s\r\nContent-Type: text/csv\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
  "$status" "${#out}" "$out"
"""

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY train serve handle /bin/
ENV PATH=/bin
"""


def _busybox() -> Path | None:
    for path in BUSYBOX_PATHS:
        if Path(path).is_file() and b"ld-linux" not in Path(path).read_bytes()[:4096]:
            return Path(path)
    return None


def _start_dockerd(root: Path) -> tuple[str, subprocess.Popen[bytes]]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.skip("own-image tests need a container engine: dockerd is not installed "
                    "(Debian: apt-get install docker.io)")
    if os.geteuid() != 0:
        pytest.skip(f"own-image tests start dockerd, which needs root (or set {ENGINE_ENV})")
    socket_path = root / "d.sock"
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [dockerd, "-H", f"unix://{socket_path}", "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    import docker

    url = f"unix://{socket_path}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            tail = (root / "dockerd.log").read_text(errors="replace")[-600:]
            pytest.skip(f"own-image tests: dockerd did not start: {tail}")
        try:
            docker.DockerClient(base_url=url, timeout=5).ping()
            return url, proc
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip(f"own-image tests: dockerd did not answer in {START_TIMEOUT:.0f} s")
            time.sleep(0.1)


def build_test_image(url: str) -> None:
    """``opensage-test-algo:1`` from a static busybox and the scripts above."""
    import docker

    busybox = _busybox()
    if busybox is None:
        pytest.skip("own-image tests build their image from a static busybox: none found "
                    "(Debian: apt-get install busybox-static)")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data, mode in [("Dockerfile", DOCKERFILE.encode(), 0o644),
                                 ("busybox", busybox.read_bytes(), 0o755),
                                 ("train", TRAIN.encode(), 0o755),
                                 ("serve", SERVE.encode(), 0o755),
                                 ("handle", HANDLE.encode(), 0o755)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client = docker.DockerClient(base_url=url, timeout=120)
    client.images.build(fileobj=context, custom_context=True, tag=LOCAL_TAG, rm=True)
    client.close()


@pytest.fixture(scope="session")
def engine_url() -> Iterator[str]:
    """A container engine's URL with the test image built in it."""
    pytest.importorskip("docker", reason="the docker client library (the containers extra)")
    configured = os.environ.get(ENGINE_ENV)
    if configured:
        build_test_image(configured)
        yield configured
        return
    # a short path: a unix socket's path has a length limit
    root = Path(tempfile.mkdtemp(prefix="osd-", dir="/tmp"))
    url, proc = _start_dockerd(root)
    try:
        build_test_image(url)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)


def _unmount_below(root: Path) -> None:
    """What dockerd left mounted under its exec root (the default network namespace)."""
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def containers(url: str, purpose: str) -> list[str]:
    """Ids of the containers opensage started for ``purpose`` that still exist: one list
    call (the SDK's ``containers.list`` inspects each listed container in turn, and one
    removed meanwhile made it raise NotFound)."""
    import docker

    client = docker.APIClient(base_url=url)
    try:
        return [c["Id"] for c in client.containers(
            all=True, filters={"label": f"opensage={purpose}"})]
    finally:
        client.close()
