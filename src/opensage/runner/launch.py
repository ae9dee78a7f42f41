"""Starts a job process: ``python -m opensage.runner.launch <cpus> <server pid> [--netns] --
argv...``.

Sets what ``preexec_fn`` would (unsafe in a threaded server), then execs the job:
the job dies with the server (a kill -9 of opensage leaves no orphan training), and it sees
only the CPUs its instance type has; with ``--netns`` (EnableNetworkIsolation) it runs in a
network namespace of its own with only loopback (see ``runner.toolkit.isolation``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    cpus, server_pid, *rest = argv
    netns = rest[:1] == ["--netns"]
    separator, *command = rest[1:] if netns else rest
    if separator != "--" or not command:
        raise SystemExit("usage: launch <cpus> <server pid> [--netns] -- command...")
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(server_pid):
        raise SystemExit(1)  # the server died before the signal was armed
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[: max(1, int(cpus))])
    if netns:
        from opensage.runner.toolkit.isolation import enter_namespace

        try:
            enter_namespace()
        except OSError as err:
            raise SystemExit(f"EnableNetworkIsolation: {err}") from None
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
