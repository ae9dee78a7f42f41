"""The one safe tar extractor: traversal by names, links and link chains (CVE-2025-4517),
special members, and size/ratio caps enforced while streaming."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from opensage.data.archives import ArchiveError, ArchiveLimits, extract_tar
from opensage.serving.artifacts import archive_limits
from opensage.settings import Settings
from tests.hostile_archives import cve_2025_4517_chain, link, special, tar_bytes

LIMITS = archive_limits(Settings())


def extract(archive: bytes, dest: Path, limits: ArchiveLimits = LIMITS) -> None:
    extract_tar(io.BytesIO(archive), dest, limits)


def test_a_safe_archive_extracts_files_dirs_and_inner_links(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    directory = tarfile.TarInfo("./conf")
    directory.type = tarfile.DIRTYPE
    archive = tar_bytes([
        link("latest", "conf/v1.json"),  # a forward reference, as tar orders allow
        directory, ("conf/v1.json", b'{"a": 1}'), ("./xgboost-model", b"model"),
        link("copy", "xgboost-model", tarfile.LNKTYPE), link("conf/up", "../xgboost-model")])
    extract(archive, dest)
    assert (dest / "latest").read_bytes() == b'{"a": 1}'
    assert (dest / "copy").read_bytes() == b"model"
    assert (dest / "conf" / "up").read_bytes() == b"model"
    assert os.readlink(dest / "latest") == "conf/v1.json"


def test_the_cve_2025_4517_symlink_chain_is_refused_and_nothing_is_written(
        tmp_path: Path) -> None:
    dest = tmp_path / "model"
    with pytest.raises(ArchiveError, match="'a/.*' is beneath the symbolic link 'a'"):
        extract(cve_2025_4517_chain(), dest)
    assert not (tmp_path / "pwned").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the partial extraction is gone


@pytest.mark.parametrize("members, match", [
    ([("../evil", b"x")], "'../evil' climbs out"),
    ([("ok/../../evil", b"x")], "climbs out"),
    ([("/abs", b"x")], "'/abs' has an absolute name"),
    ([link("link", "/etc/passwd")], "'link' is a symbolic link to the absolute path"),
    ([link("up", "../../x")], "'up'.*resolves outside"),
    ([link("out", ".."), ("out/evil", b"x")], "'out'.*resolves outside"),
    # lexically inside ("s/.." is "."), but s is the destination itself, so s/.. is its parent
    ([link("s", "."), link("t", "s/..")], "'t'.*resolves outside"),
    # the same, with the link that makes it escape arriving after the one it redirects
    ([link("t", "a/.."), link("a", ".")], "'t'.*resolves outside"),
    ([link("a", "b"), link("b", "a")], "more than 40 links"),
    ([link("inner", "sub"), ("inner/evil", b"x")], "'inner/evil' is beneath the symbolic"),
    ([link("hard", "../outside", tarfile.LNKTYPE)], "climbs out"),
    ([link("hard", "/etc/passwd", tarfile.LNKTYPE)], "absolute name"),
    ([link("s", "."), link("hard", "s", tarfile.LNKTYPE)], "'hard' is a hard link to 's'"),
    ([("f", b"x"), link("f", ".")], "'f' is a symbolic link replacing"),
    ([special("dev", tarfile.CHRTYPE)], "'dev' is a device, FIFO"),
    ([special("blk", tarfile.BLKTYPE)], "'blk' is a device, FIFO"),
    ([special("fifo", tarfile.FIFOTYPE)], "'fifo' is a device, FIFO"),
])
def test_escaping_and_special_members_are_refused_naming_the_member(
        tmp_path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], match: str) -> None:
    dest = tmp_path / "deep" / "model"
    with pytest.raises(ArchiveError, match=match):
        extract(tar_bytes(members), dest)
    assert not dest.exists()
    assert [p.name for p in (tmp_path / "deep").iterdir()] == []


def test_a_gzip_bomb_stops_at_the_ratio_cap_while_streaming(tmp_path: Path) -> None:
    archive = tar_bytes([("small", b"config"), ("zeros", bytes(64 << 20))])
    assert len(archive) < 128 << 10  # 64 MiB of zeros in well under 1/500 of that
    dest = tmp_path / "model"
    with pytest.raises(ArchiveError, match="'zeros'.*200 times its compressed size"):
        extract(archive, dest)
    assert not dest.exists()


def test_the_size_cap_comes_from_settings_and_stops_the_extraction(
        tmp_path: Path) -> None:
    settings = Settings.from_env({"OPENSAGE_ARCHIVE_MAX_UNPACKED_BYTES": "100000",
                                  "OPENSAGE_ARCHIVE_MAX_RATIO": "1e9"})
    assert archive_limits(settings) == ArchiveLimits(max_unpacked_bytes=100_000,
                                                     max_ratio=1e9)
    dest = tmp_path / "model"
    dest.mkdir()  # an existing empty destination is emptied again, not removed
    with pytest.raises(ArchiveError, match="'b'.*more than 100000 bytes"):
        extract(tar_bytes([("a", bytes(60_000)), ("b", bytes(60_000))]), dest,
                archive_limits(settings))
    assert dest.is_dir() and list(dest.iterdir()) == []


def test_ratio_is_judged_on_the_compressed_bytes_read_so_far(tmp_path: Path) -> None:
    """An uncompressed tar has a ratio under 1; a small compressible archive passes."""
    extract(tar_bytes([("zeros", bytes(2 << 20))], mode="w"), tmp_path / "plain")
    assert (tmp_path / "plain" / "zeros").stat().st_size == 2 << 20
    extract(tar_bytes([("zeros", bytes(512 << 10))]), tmp_path / "small")
    assert (tmp_path / "small" / "zeros").stat().st_size == 512 << 10


def test_unreadable_archives_and_nonempty_destinations(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="Not a readable tar archive"):
        extract(b"not a tar at all" * 100, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_bytes(b"x")
    with pytest.raises(ArchiveError, match="not empty"):
        extract(tar_bytes([("f", b"x")]), full)
    assert (full / "keep").read_bytes() == b"x"


def test_modes_drop_setuid_and_group_write(tmp_path: Path) -> None:
    info = tarfile.TarInfo("run.sh")
    data = b"#!/bin/sh\n"
    info.size, info.mode = len(data), 0o6777
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    extract(buf.getvalue(), tmp_path / "src")
    assert (tmp_path / "src" / "run.sh").stat().st_mode & 0o7777 == 0o755
