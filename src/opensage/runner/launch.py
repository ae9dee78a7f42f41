"""Starts a job process: ``python -m opensage.runner.launch <cpus> <server pid> -- argv...``.

Sets what ``preexec_fn`` would (unsafe in a threaded server), then execs the job:
the job dies with the server (a kill -9 of opensage leaves no orphan training), and it sees
only the CPUs its instance type has.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    cpus, server_pid, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: launch <cpus> <server pid> -- command...")
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(server_pid):
        raise SystemExit(1)  # the server died before the signal was armed
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[: max(1, int(cpus))])
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
