"""``EnableNetworkIsolation``: the job's processes in a network namespace of their own, where
only a loopback interface exists (nothing outside, the opensage server included, is
reachable). Done by the launcher (``runner.launch --netns``) with ``unshare(CLONE_NEWNET)``,
which needs root or CAP_SYS_ADMIN (or unprivileged user namespaces): :func:`unavailable`
says once per server why it cannot be done here, and such a job fails saying so. A model's
workers (endpoints, batch transform) are isolated the same way (``serving.process``), and such
an endpoint or transform job fails with the same reason."""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import socket
import struct
import subprocess
import sys

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def enter_namespace() -> None:
    """Move this process into a new network namespace and bring its loopback up; raises
    OSError saying why when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


@functools.cache
def unavailable() -> str | None:
    """Why network isolation cannot be had on this machine (None: it can), tried once in a
    throw-away child process."""
    code = "from opensage.runner.toolkit.isolation import enter_namespace; enter_namespace()"
    probe = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                           text=True, timeout=60)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
    return (f"EnableNetworkIsolation needs a network namespace of its own for the job (or "
            f"each model worker), which this machine refuses ({last}); run opensage as root "
            "or with CAP_SYS_ADMIN, or turn network isolation off.")


# -- a private /opt/ml: processing jobs' absolute /opt/ml/processing/... paths -------------
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
CONTAINER_ML = "/opt/ml"


def enter_private_ml(root: str, target: str = CONTAINER_ML) -> None:
    """Move this process into a mount namespace of its own where ``root`` (the job host's
    directory) is bind-mounted on ``/opt/ml``: the job's absolute paths are its own, and
    concurrent jobs do not see each other's. As root, a plain mount namespace; otherwise one
    inside a user namespace that maps this user to root (files stay the user's). Raises
    OSError saying why when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS if uid == 0 else CLONE_NEWNS | CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNS) failed: {os.strerror(errno)}")
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                           ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as out:
                out.write(text)
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"making / private failed: {os.strerror(errno)}")
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as err:
        raise OSError(err.errno, f"{target} does not exist and cannot be created "
                      f"({err.strerror}): create it once (mkdir -p {target})") from None
    if libc.mount(os.fsencode(root), os.fsencode(target), None, _MS_BIND | _MS_REC,
                  None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"bind-mounting the job directory on {target} failed: "
                      f"{os.strerror(errno)}")


@functools.cache
def private_ml_unavailable() -> str | None:
    """Why a job cannot have its own ``/opt/ml`` on this machine (None: it can), tried once
    in a throw-away child process."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="opensage-mount-probe-") as probe_dir:
        code = ("import os, sys; from opensage.runner.toolkit.isolation import "
                "enter_private_ml; enter_private_ml(sys.argv[1]); "
                "sys.exit(0 if os.path.exists('/opt/ml/probe') else 3)")
        open(os.path.join(probe_dir, "probe"), "w").close()
        probe = subprocess.run([sys.executable, "-c", code, probe_dir], check=False,
                               capture_output=True, text=True, timeout=60)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
    return ("A processing job sees its files at /opt/ml/processing/..., which without Docker "
            "needs a private mount namespace per job (unshare), which this machine refuses "
            f"({last}); run opensage as root, or allow unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1).")
