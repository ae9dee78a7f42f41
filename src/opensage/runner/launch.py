"""Starts a job process: ``python -m opensage.runner.launch <cpus> <server pid> [--netns]
[--cpu-ids 0,1] [--private-ml DIR] [--hide PATH]... [--rw PATH]... [--ro PATH]... -- argv...``.

Sets what ``preexec_fn`` would (unsafe in a threaded server), then execs the job:
the job dies with the server (a kill -9 of opensage leaves no orphan training), and it sees
only the CPUs its instance type has (``--cpu-ids``: those CPUs, else the first ``cpus``); with ``--netns`` (EnableNetworkIsolation) it runs in a
network namespace of its own with only loopback (as root, without CAP_SYS_ADMIN and
CAP_NET_ADMIN, so that it cannot ``setns`` back into the server's), and with
``--private-ml DIR`` (processing jobs) ``DIR`` is its ``/opt/ml``, in a mount namespace of its
own (see ``runner.toolkit.isolation``). With ``--hide`` (EnableNetworkIsolation too) the
same mount namespace covers each PATH (the server's data directory, database, key file...)
with an empty read-only tmpfs (a file: ``/dev/null``), then binds back the ``--rw`` paths (the
job's own directory) and, read-only, the ``--ro`` ones (its framework environment): the job
sees neither the server's files nor other jobs' directories, and without CAP_SYS_ADMIN it
cannot unmount what covers them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from opensage.runner.cpus import parse_ids, pin

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
# Dropped from an isolated process's bounding set (so from what the program it execs may
# have): entering another network namespace (setns back into the server's) and moving
# interfaces between namespaces.
CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def main(argv: list[str]) -> None:
    cpus, server_pid, *rest = argv
    netns, private_ml, cpu_ids = False, None, None
    paths: dict[str, list[str]] = {"--hide": [], "--rw": [], "--ro": []}
    while rest[:1] and rest[0] != "--":
        if rest[0] == "--netns":
            netns, rest = True, rest[1:]
        elif rest[0] == "--cpu-ids" and len(rest) > 1:
            cpu_ids, rest = parse_ids(rest[1]), rest[2:]
        elif rest[0] == "--private-ml" and len(rest) > 1:
            private_ml, rest = rest[1], rest[2:]
        elif rest[0] in paths and len(rest) > 1:
            paths[rest[0]].append(rest[1])
            rest = rest[2:]
        else:
            break
    separator, *command = rest or [""]
    if separator != "--" or not command:
        raise SystemExit("usage: launch <cpus> <server pid> [--netns] [--cpu-ids IDS] "
                         "[--private-ml DIR] "
                         "[--hide PATH]... [--rw PATH]... [--ro PATH]... -- command...")
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(server_pid):
        raise SystemExit(1)  # the server died before the signal was armed
    pin(cpu_ids if cpu_ids else int(cpus))
    if private_ml is not None or paths["--hide"]:
        # first: as a user, it brings the user namespace netns needs
        from opensage.runner.toolkit.isolation import enter_private_mounts, inside

        # what the launched program may need of this server's own installation (its
        # interpreter, the opensage package), read-only, should a hidden path hold it
        server = [sys.prefix, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        try:
            enter_private_mounts(hide=paths["--hide"], rw=paths["--rw"],
                                 ro=[*paths["--ro"], *inside(server, paths["--hide"])],
                                 ml_root=private_ml)
        except OSError as err:
            what = ("EnableNetworkIsolation: hiding the server's files" if paths["--hide"]
                    else "Processing job's /opt/ml")
            raise SystemExit(f"{what}: {err}") from None
    if netns:
        from opensage.runner.toolkit.isolation import enter_namespace

        try:
            enter_namespace()
        except OSError as err:
            raise SystemExit(f"EnableNetworkIsolation: {err}") from None
    if netns or paths["--hide"]:
        # no way back: neither into the server's namespaces nor under what hides its files
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (CAP_SYS_ADMIN, CAP_NET_ADMIN):
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 and os.geteuid() == 0:
                errno = ctypes.get_errno()
                raise SystemExit(f"EnableNetworkIsolation: dropping capability {capability} "
                                 f"failed: {os.strerror(errno)}")
    os.execvp(command[0], command)  # on the job's PATH: "python3" is its framework's


if __name__ == "__main__":
    main(sys.argv[1:])
