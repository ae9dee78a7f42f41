"""Safe extraction of tar archives (plain, gzip, bzip2, xz): model.tar.gz, sourcedir.tar.gz.

Nothing here trusts the interpreter's own tar filter (Python before 3.11.13 resolves link
chains with ``os.path.realpath``, which gives up past PATH_MAX: CVE-2025-4517). Instead:

- names are checked as they arrive: no absolute names, no ``..``, nothing beneath a symbolic
  link of the archive (a tree packed by ``tar`` never has such members);
- symbolic links are resolved against the archive's own links, never the disk, and created
  only at the end, once every link is known, so no file is ever written through a link;
- hard links may only name a regular file extracted before them;
- devices, FIFOs and other special members are refused;
- the unpacked size, the compression ratio and the number of members are capped while
  streaming.

Any refusal raises ``ArchiveError`` naming the member and removes what was extracted.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS
RATIO_GRACE_BYTES = 1 << 20  # a small, very compressible archive (a config of zeros) passes
_CHUNK = 1 << 20

Parts = tuple[str, ...]


class ArchiveError(Exception):
    """The archive is unreadable, unsafe or too large; the message names the member."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what one archive may unpack to; the server's come from ``Settings``
    (``archive_max_unpacked_bytes``, ``archive_max_ratio``, ``archive_max_members``), where
    the defaults live.

    ``max_ratio`` is unpacked bytes over compressed bytes read so far, judged once
    ``RATIO_GRACE_BYTES`` have been unpacked. ``max_members`` counts every member (files,
    directories, links), refused as the one past the cap arrives.
    """

    max_unpacked_bytes: int
    max_ratio: float
    max_members: int = 100_000


class _CountingReader:
    """A read-only stream that counts the (compressed) bytes taken from ``raw``."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


@dataclass
class _Extraction:
    dest: Path
    limits: ArchiveLimits
    source: _CountingReader
    unpacked: int = 0
    members: int = 0
    files: set[Parts] = field(default_factory=set)
    links: dict[Parts, str] = field(default_factory=dict)  # created last, when all are known

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(
                f"Archive member {member.name!r}: the archive holds more than "
                f"{self.limits.max_members} members (archive_max_members)")
        parts = _member_parts(member.name)
        if not parts:
            if member.isdir():
                return  # "./": the destination itself
            raise ArchiveError(f"Archive member {member.name!r} has an empty name")
        if parts in self.links:
            raise ArchiveError(f"Archive member {member.name!r} replaces a symbolic link")
        self._refuse_beneath_link(member.name, parts)
        if member.isdir():
            self._path(parts).mkdir(parents=True, exist_ok=True)
        elif member.isreg():
            self._write_file(member, parts, tar)
        elif member.islnk():
            self._hard_link(member, parts)
        elif member.issym():
            self._symlink(member, parts)
        else:
            raise ArchiveError(f"Archive member {member.name!r} is a device, FIFO or other "
                               "special file; only files, directories and links are allowed")

    def finish(self) -> None:
        for parts, target in self.links.items():
            name = "/".join(parts)
            self._refuse_beneath_link(name, parts)
            self._check_link_target(name, parts, target)
        for parts, target in self.links.items():
            path = self._path(parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path)

    def _path(self, parts: Parts) -> Path:
        return self.dest.joinpath(*parts)

    def _refuse_beneath_link(self, name: str, parts: Parts) -> None:
        for end in range(1, len(parts)):
            if parts[:end] in self.links:
                raise ArchiveError(f"Archive member {name!r} is beneath the symbolic link "
                                   f"{'/'.join(parts[:end])!r}")

    def _clear(self, name: str, path: Path) -> None:
        """Make room for a file: an earlier file of the same name is replaced (tar's rule)."""
        if path.is_dir() and not path.is_symlink():
            raise ArchiveError(f"Archive member {name!r} replaces a directory")
        path.unlink(missing_ok=True)

    def _write_file(self, member: tarfile.TarInfo, parts: Parts, tar: tarfile.TarFile) -> None:
        if self.unpacked + member.size > self.limits.max_unpacked_bytes:
            self._too_large(member.name)
        path = self._path(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._clear(member.name, path)
        stream = tar.extractfile(member)
        assert stream is not None  # a regular file always has a stream
        mode = (member.mode & 0o755) | 0o600  # no setuid/setgid/sticky, no group/other write
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with stream, open(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
                self._count(member.name, len(chunk))
        self.files.add(parts)

    def _count(self, name: str, size: int) -> None:
        self.unpacked += size
        if self.unpacked > self.limits.max_unpacked_bytes:
            self._too_large(name)
        if (self.unpacked > RATIO_GRACE_BYTES
                and self.unpacked > self.limits.max_ratio * max(self.source.count, 1)):
            raise ArchiveError(
                f"Archive member {name!r}: the archive unpacks to more than "
                f"{self.limits.max_ratio:g} times its compressed size (archive_max_ratio); "
                "refusing a likely decompression bomb")

    def _too_large(self, name: str) -> None:
        raise ArchiveError(
            f"Archive member {name!r}: the archive unpacks to more than "
            f"{self.limits.max_unpacked_bytes} bytes (archive_max_unpacked_bytes)")

    def _hard_link(self, member: tarfile.TarInfo, parts: Parts) -> None:
        target = _member_parts(member.linkname)
        if target not in self.files:
            raise ArchiveError(f"Archive member {member.name!r} is a hard link to "
                               f"{member.linkname!r}, which is not a file extracted before it")
        path = self._path(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._clear(member.name, path)
        os.link(self._path(target), path, follow_symlinks=False)
        self.files.add(parts)

    def _symlink(self, member: tarfile.TarInfo, parts: Parts) -> None:
        if os.path.lexists(self._path(parts)):
            raise ArchiveError(f"Archive member {member.name!r} is a symbolic link replacing "
                               "an earlier member")
        self.links[parts] = member.linkname
        # Checked now for an early, precise error, and again in finish() against every link.
        self._check_link_target(member.name, parts, member.linkname)

    def _check_link_target(self, name: str, parts: Parts, target: str) -> None:
        if target.startswith("/"):
            raise ArchiveError(f"Archive member {name!r} is a symbolic link to the absolute "
                               f"path {target!r}")
        outside = f"Archive member {name!r} is a symbolic link to {target!r}, which "
        try:
            _resolve(parts[:-1] + tuple(target.split("/")), self.links)
        except _Escapes:
            raise ArchiveError(outside + "resolves outside the destination") from None
        except _TooManyHops:
            raise ArchiveError(outside + f"takes more than {MAX_LINK_HOPS} links to "
                               "resolve") from None


class _Escapes(Exception):
    pass


class _TooManyHops(Exception):
    pass


def _resolve(parts: Parts, links: dict[Parts, str]) -> Parts:
    """``parts`` (relative to the destination) with the archive's links followed, as the
    kernel would once they exist; raises when it climbs out of the destination."""
    resolved: list[str] = []
    pending = list(reversed(parts))  # a stack: the next component on top
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise _Escapes
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get(tuple(resolved))
        if target is None:
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise _TooManyHops
        if target.startswith("/"):
            raise _Escapes
        resolved.pop()  # a relative target starts from the link's directory
        pending.extend(reversed(target.split("/")))
    return tuple(resolved)


def _member_parts(name: str) -> Parts:
    path = PurePosixPath(name)
    if path.is_absolute():
        raise ArchiveError(f"Archive member {name!r} has an absolute name")
    if ".." in path.parts:
        raise ArchiveError(f"Archive member {name!r} climbs out with '..'")
    return tuple(p for p in path.parts if p != ".")


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tar.next()) is not None:
        yield member


def extract_tar(source: Path | IO[bytes], dest: Path, limits: ArchiveLimits) -> None:
    """Extract a tar archive (compressed or not) from a path or a binary stream into ``dest``,
    which must not exist or be empty. Streams once; on any error ``dest`` is left as it was
    found (removed if created here, else emptied) and ``ArchiveError`` says why."""
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    if not created and any(dest.iterdir()):
        raise ArchiveError(f"Cannot extract into {dest}: it is not empty")
    try:
        with (open(source, "rb") if isinstance(source, Path) else nullcontext(source)) as raw:
            counting = _CountingReader(raw)
            extraction = _Extraction(dest.resolve(), limits, counting)
            with tarfile.open(fileobj=counting, mode="r|*") as tar:  # type: ignore[call-overload]
                for member in _members(tar):
                    try:
                        extraction.add(member, tar)
                    except (OSError, ValueError) as e:  # a name the filesystem refuses
                        raise ArchiveError(f"Archive member {member.name!r} cannot be "
                                           f"extracted: {e}") from None
            extraction.finish()
    except BaseException as e:
        _remove_extracted(dest, created)
        if isinstance(e, ArchiveError) or not isinstance(e, Exception):
            raise
        raise ArchiveError(f"Not a readable tar archive: {e}") from None


def _remove_extracted(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
