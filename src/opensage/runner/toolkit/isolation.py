"""``EnableNetworkIsolation``: the job's processes in a network namespace of their own, where
only a loopback interface exists (nothing outside, the opensage server included, is
reachable). Done by the launcher (``runner.launch --netns``) with ``unshare(CLONE_NEWNET)``,
which needs root or CAP_SYS_ADMIN (or unprivileged user namespaces): :func:`unavailable`
says once per server why it cannot be done here, and such a job fails saying so. A model's
workers (endpoints, batch transform) are isolated the same way (``serving.process``), and such
an endpoint or transform job fails with the same reason.

Such a process also sees none of the server's files (:func:`enter_private_mounts`, entered by
``runner.launch --hide/--rw/--ro`` first): its data directory, database, key file and the
container engines' sockets are covered in a mount namespace of its own, but for the job's own
directory and, read-only, the framework environments. :func:`unavailable` tries that too."""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    """Why isolation cannot be had on this machine (None: it can): a network namespace and a
    mount namespace hiding a directory but for one of its subdirectories, tried once in a
    throw-away child process."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="opensage-isolation-probe-") as probe_dir:
        os.makedirs(os.path.join(probe_dir, "own"))
        open(os.path.join(probe_dir, "own", "probe"), "w").close()
        open(os.path.join(probe_dir, "secret"), "w").close()
        code = ("import os, sys; from opensage.runner.toolkit import isolation as i; d = "
                "sys.argv[1]; i.enter_private_mounts(hide=[d], rw=[os.path.join(d, 'own')]); "
                "i.enter_namespace(); sys.exit(3 if os.path.exists(os.path.join(d, 'secret')) "
                "or not os.path.exists(os.path.join(d, 'own', 'probe')) else 0)")
        probe = subprocess.run([sys.executable, "-c", code, probe_dir], check=False,
                               capture_output=True, text=True, timeout=60)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
    return (f"EnableNetworkIsolation needs a network namespace and a mount namespace of its "
            f"own for the job (or each model worker), which this machine refuses ({last}); "
            "run opensage as root or with CAP_SYS_ADMIN, or allow unprivileged user "
            "namespaces, or turn network isolation off.")


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
    enter_private_mounts(ml_root=root, ml_target=target)


# -- the server's files hidden (EnableNetworkIsolation) --------------------------------------
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME = 0x400, 0x800, 0x200000
# statvfs's flags -> mount(2)'s: a remount inside a user namespace must keep the locked ones
_KEPT_FLAGS = ((os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV),
               (os.ST_NOEXEC, _MS_NOEXEC), (os.ST_NOATIME, _MS_NOATIME),
               (os.ST_NODIRATIME, _MS_NODIRATIME), (os.ST_RELATIME, _MS_RELATIME))
_O_PATH = getattr(os, "O_PATH", 0o10000000)


def enter_private_mounts(*, hide: Sequence[str] = (), rw: Sequence[str] = (),
                         ro: Sequence[str] = (), ml_root: str | None = None,
                         ml_target: str = CONTAINER_ML) -> None:
    """Move this process into a mount namespace of its own (one unshare; as a user, inside a
    user namespace mapping the user to root) where:

    - ``ml_root``, when given, is bind-mounted on ``ml_target`` (a processing job's /opt/ml);
    - each directory of ``hide`` (the server's: its data directory, object store...) is
      covered by an empty, read-only tmpfs, and each file of ``hide`` (a database, a key
      file outside those) by ``/dev/null``;
    - then each path of ``rw`` (the job's own directory) is bound back where it was,
      writable, and each of ``ro`` (the framework environments) read-only, wherever it is.

    What the job sees of a hidden directory is only the paths leading to what it was given.
    Raises OSError saying why when the kernel refuses."""
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
    _mount(libc, None, "/", _MS_REC | _MS_PRIVATE, "making / private")
    if ml_root is not None:
        try:
            os.makedirs(ml_target, exist_ok=True)
        except OSError as err:
            raise OSError(err.errno, f"{ml_target} does not exist and cannot be created "
                          f"({err.strerror}): create it once (mkdir -p {ml_target})") from None
        _mount(libc, ml_root, ml_target, _MS_BIND | _MS_REC,
               f"bind-mounting the job directory on {ml_target}")
    if hide:
        _hide(libc, hide, rw, ro)


def _hide(libc: Any, hide: Sequence[str], rw: Sequence[str], ro: Sequence[str]) -> None:
    modes = ({os.path.realpath(p): False for p in rw if os.path.exists(p)}
             | {os.path.realpath(p): True for p in ro if os.path.exists(p)})  # read-only?
    # a path both hidden and given back is given back (a bind of it would bring its cover)
    hidden = [path for path in (os.path.realpath(p) for p in hide if os.path.exists(p))
              if path not in modes]
    dirs = _outermost([p for p in hidden if os.path.isdir(p)])
    files = [p for p in hidden if not os.path.isdir(p) and not _under(p, dirs)]
    # outer first: inner ones bind on them
    kept = sorted(modes.items(), key=lambda item: item[0].count("/"))
    # held open before they are covered: bound back from /proc/self/fd
    fds = {path: os.open(path, _O_PATH | os.O_CLOEXEC) for path, _ in kept}
    try:
        for path in dirs:
            _mount(libc, "opensage-hidden", path, _MS_NOSUID | _MS_NODEV,
                   f"hiding {path}", fstype="tmpfs", data="mode=755,size=64k")
        for path, _ in kept:  # the way to each through the tmpfs, while it is writable
            if _under(path, dirs) and not os.path.exists(path):
                if os.path.isdir(f"/proc/self/fd/{fds[path]}"):
                    os.makedirs(path, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    open(path, "a").close()
        for path in dirs:  # before anything is bound on them: the tmpfs itself
            _read_only(libc, path, 0)
        for path in files:
            _mount(libc, "/dev/null", path, _MS_BIND, f"hiding {path}")
            _read_only(libc, path, _MS_BIND)
        for path, read_only in kept:
            _mount(libc, f"/proc/self/fd/{fds[path]}", path, _MS_BIND | _MS_REC,
                   f"binding {path} back")
            if read_only:
                _read_only(libc, path, _MS_BIND)
    finally:
        for fd in fds.values():
            os.close(fd)


def _read_only(libc: Any, path: str, bind: int) -> None:
    """Remount ``path`` read-only, keeping the flags it has (locked ones in a user ns)."""
    have = os.statvfs(path).f_flag
    flags = _MS_REMOUNT | bind | _MS_RDONLY
    for st_flag, ms_flag in _KEPT_FLAGS:
        if have & st_flag:
            flags |= ms_flag
    _mount(libc, None, path, flags, f"making {path} read-only")


def _mount(libc: Any, source: str | None, target: str, flags: int, what: str, *,
           fstype: str | None = None, data: str | None = None) -> None:
    if libc.mount(None if source is None else os.fsencode(source), os.fsencode(target),
                  None if fstype is None else fstype.encode(), flags,
                  None if data is None else data.encode()) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what} failed: {os.strerror(errno)}")


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def inside(paths: Sequence[str], roots: Sequence[str]) -> list[str]:
    """Those of ``paths`` that lie in one of ``roots`` (both resolved)."""
    resolved = [os.path.realpath(root) for root in roots]
    return [path for path in paths if _under(os.path.realpath(path), resolved)]


def _outermost(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for path in sorted(set(paths), key=lambda p: p.count("/")):
        if not _under(path, out):
            out.append(path)
    return out


def hidden_paths(hide: Sequence[Path], rw: Sequence[Path] = (),
                 ro: Sequence[Path] = ()) -> list[str]:
    """The launcher's arguments hiding ``hide`` but for ``rw`` and ``ro`` (see
    :func:`enter_private_mounts`); none when nothing is hidden."""
    if not hide:
        return []
    return [*(a for p in hide for a in ("--hide", str(p))),
            *(a for p in rw for a in ("--rw", str(p))),
            *(a for p in ro for a in ("--ro", str(p)))]


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
