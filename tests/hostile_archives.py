"""Archives for the extractor's tests: links, specials, and the CVE-2025-4517 link chain."""

from __future__ import annotations

import io
import os
import tarfile


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    """An archive of TarInfos (links, dirs, specials) and (name, data) regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def cve_2025_4517_chain(files: dict[str, bytes] | None = None) -> bytes:
    """The published proof of concept: 16 symlinks to 247-character directory names make the
    real path longer than PATH_MAX, so ``os.path.realpath`` (and the tar ``data`` filter of
    Python < 3.11.13) stops resolving; ``escape`` then points one level above the destination
    and ``escape/pwned`` is written there. ``files`` come first (a real model, say)."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    members: list[tarfile.TarInfo | tuple[str, bytes]] = list((files or {}).items())
    path = ""
    for step in steps:
        directory = tarfile.TarInfo(os.path.join(path, comp))
        directory.type = tarfile.DIRTYPE
        members += [directory, link(os.path.join(path, step), comp)]
        path = os.path.join(path, comp)
    chain = os.path.join(*steps, "l" * 254)
    members.append(link(chain, os.path.join(*[".."] * len(steps))))
    members.append(link("escape", chain + "/.."))
    members.append(("escape/pwned", b"written outside"))
    return tar_bytes(members, mode="w")
