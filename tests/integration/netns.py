"""A private network namespace (loopback only) for the calling thread and what it starts.

Ray binds several ports on every interface even with ``--node-ip-address 127.0.0.1``: the
Ray tests run their cluster, the server under test and their own boto3 calls inside a
network namespace of their own, so nothing is exposed beyond this machine's test. Linux
namespaces belong to threads: the thread that enters one (pytest's main thread, which runs
the fixtures and the tests) and every process it starts afterwards live there; the thread
goes back to the original namespace at the end.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000


class NamespaceUnavailable(RuntimeError):
    """This machine refuses a private network namespace (the reason says why)."""


@contextmanager
def private_network() -> Iterator[None]:
    libc = ctypes.CDLL(None, use_errno=True)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NamespaceUnavailable(
                f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}. The Ray tests need a "
                "private network namespace (root, or CAP_SYS_ADMIN) so that Ray's ports are "
                "not exposed; they refuse to run without one")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True,
                           capture_output=True)
            yield
        finally:
            if libc.setns(original, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "could not leave the test's network "
                                                  "namespace")
    finally:
        os.close(original)
