"""``EnableNetworkIsolation``: the job's processes in a network namespace of their own, where
only a loopback interface exists (nothing outside, the opensage server included, is
reachable). Done by the launcher (``runner.launch --netns``) with ``unshare(CLONE_NEWNET)``,
which needs root or CAP_SYS_ADMIN (or unprivileged user namespaces): :func:`unavailable`
says once per server why it cannot be done here, and such a job fails saying so."""

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
    return (f"EnableNetworkIsolation needs a network namespace of its own for the job, which "
            f"this machine refuses ({last}); run opensage as root or with CAP_SYS_ADMIN, or "
            "turn network isolation off.")
