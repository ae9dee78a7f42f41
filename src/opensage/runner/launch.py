"""Starts a job process: ``python -m opensage.runner.launch <cpus> <server pid> [--netns]
[--private-ml DIR] -- argv...``.

Sets what ``preexec_fn`` would (unsafe in a threaded server), then execs the job:
the job dies with the server (a kill -9 of opensage leaves no orphan training), and it sees
only the CPUs its instance type has; with ``--netns`` (EnableNetworkIsolation) it runs in a
network namespace of its own with only loopback, and with ``--private-ml DIR`` (processing
jobs) ``DIR`` is its ``/opt/ml``, in a mount namespace of its own (see
``runner.toolkit.isolation``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    cpus, server_pid, *rest = argv
    netns, private_ml = False, None
    while rest[:1] in (["--netns"], ["--private-ml"]):
        if rest[0] == "--netns":
            netns, rest = True, rest[1:]
        else:
            private_ml, rest = rest[1], rest[2:]
    separator, *command = rest
    if separator != "--" or not command:
        raise SystemExit("usage: launch <cpus> <server pid> [--netns] [--private-ml DIR] -- "
                         "command...")
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(server_pid):
        raise SystemExit(1)  # the server died before the signal was armed
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[: max(1, int(cpus))])
    if private_ml is not None:  # first: as a user, it brings the user namespace netns needs
        from opensage.runner.toolkit.isolation import enter_private_ml

        try:
            enter_private_ml(private_ml)
        except OSError as err:
            raise SystemExit(f"Processing job's /opt/ml: {err}") from None
    if netns:
        from opensage.runner.toolkit.isolation import enter_namespace

        try:
            enter_namespace()
        except OSError as err:
            raise SystemExit(f"EnableNetworkIsolation: {err}") from None
    os.execvp(command[0], command)  # on the job's PATH: "python3" is its framework's


if __name__ == "__main__":
    main(sys.argv[1:])
