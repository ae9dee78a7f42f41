"""Generated hostile archives (Hypothesis, derandomised): every one is refused with a reason
naming what is wrong, and nothing is written outside the destination (its parent directory,
with a sentinel file and a sibling directory, is unchanged; the destination is gone).

Each archive is safe members (files, directories, inner links) around one hostile element:
a name climbing out or absolute, a symbolic link out (absolute, too many ``..``, through
another link), a member beneath a link, a hard link out or to nothing extracted, a device
or FIFO, a gzip bomb (ratio cap), a tar bomb (size cap), too many members (member cap).
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opensage.data.archives import ArchiveError, ArchiveLimits, extract_tar
from tests.hostile_archives import link, special, tar_bytes
from tests.hostile_requests import file_tree

Member = tarfile.TarInfo | tuple[str, bytes]
LIMITS = ArchiveLimits(max_unpacked_bytes=10 * 1024**3, max_ratio=200.0, max_members=100_000)
SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))

SEGMENT = st.text("abcxyz_-.0123456789", min_size=1, max_size=8).filter(
    lambda s: s not in (".", ".."))
SAFE_NAME = st.lists(SEGMENT, min_size=1, max_size=3).map("/".join)


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


SAFE = st.lists(st.one_of(
    st.tuples(SAFE_NAME.map(lambda n: "safe/" + n), st.binary(max_size=64)),
    SAFE_NAME.map(lambda n: _directory("safedir/" + n))), max_size=5)


@st.composite
def hostile(draw: st.DrawFn) -> tuple[list[Member], str, ArchiveLimits]:
    """(members, what the refusal must say, limits) with exactly one hostile element."""
    name = draw(SAFE_NAME)
    kind = draw(st.sampled_from([
        "climb", "absolute", "link-absolute", "link-up", "link-chain", "beneath-link",
        "hard-out", "hard-missing", "special", "gzip-bomb", "tar-bomb", "members"]))
    if kind == "climb":
        prefix = draw(st.sampled_from(["../", "./../", "a/../../", "a/b/../../../", "x/../.."
                                       + "/"]))
        return [(prefix + name, b"x")], "climbs out with '..'", LIMITS
    if kind == "absolute":
        prefix = draw(st.sampled_from(["/", "//", "/tmp/", "/../"]))
        return [(prefix + name, b"x")], "absolute name", LIMITS
    if kind == "link-absolute":
        return ([link("l/" + name, draw(st.sampled_from(["/", "/etc/passwd", "/tmp"])))],
                "symbolic link to the absolute path", LIMITS)
    if kind == "link-up":
        depth = name.count("/") + 1  # l/<name>: the link's directory is depth levels down
        ups = draw(st.integers(depth + 1, depth + 4))
        return [link("l/" + name, "../" * ups + "x")], "resolves outside", LIMITS
    if kind == "link-chain":  # each link stays inside; followed together they leave
        return ([link("a", "."), link("b", "a/.."), link("c/" + name, "../b/x")],
                "resolves outside", LIMITS)
    if kind == "beneath-link":
        return ([link("d", "safe"), ("d/" + name, b"x")], "beneath the symbolic link",
                LIMITS)
    if kind == "hard-out":
        target = draw(st.sampled_from(["../x", "/etc/passwd", "a/../../x"]))
        return ([link("h/" + name, target, tarfile.LNKTYPE)], "climbs out|absolute name",
                LIMITS)
    if kind == "hard-missing":
        return ([link("h/" + name, "never/extracted", tarfile.LNKTYPE)],
                "is not a file extracted before it", LIMITS)
    if kind == "special":
        kind_byte = draw(st.sampled_from([tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE]))
        return [special("dev/" + name, kind_byte)], "device, FIFO", LIMITS
    if kind == "gzip-bomb":
        size = draw(st.integers(2, 6)) << 20
        return [("bomb/" + name, bytes(size))], "times its compressed size", LIMITS
    if kind == "tar-bomb":
        cap = draw(st.integers(1000, 50_000))
        limits = ArchiveLimits(max_unpacked_bytes=cap, max_ratio=1e9)
        return ([("big/" + name, bytes(cap + draw(st.integers(1, 5000))))],
                f"more than {cap} bytes", limits)
    cap = draw(st.integers(1, 40))
    many = [(f"many/{i}", b"") for i in range(cap + draw(st.integers(1, 40)))]
    return (many, f"more than {cap} members",
            ArchiveLimits(max_unpacked_bytes=1 << 30, max_ratio=1e9, max_members=cap))


@SETTINGS
@given(before=SAFE, case=hostile(), after=SAFE,
       mode=st.sampled_from(["w:gz", "w", "w:bz2", "w:xz"]))
def test_every_generated_hostile_archive_is_refused_and_nothing_escapes(
        before: list[Member], case: tuple[list[Member], str, ArchiveLimits],
        after: list[Member], mode: str) -> None:
    members, reason, limits = case
    if "compressed size" in reason:
        mode = "w:gz"  # the ratio cap is about compression
        before = []  # (so the ratio is judged on the bomb, not on incompressible noise)
    elif "members" in reason:
        before, after = [], []  # the count is exact
    archive = tar_bytes(before + members + after, mode=mode)
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "jobs"
        parent.mkdir()
        (parent / "sentinel").write_bytes(b"keep")
        (parent / "sibling").mkdir()
        tree = file_tree(Path(tmp))
        dest = parent / "model"
        with pytest.raises(ArchiveError, match=reason) as refused:
            extract_tar(io.BytesIO(archive), dest, limits)
        assert str(refused.value).startswith(("Archive member", "Not a readable"))
        assert not dest.exists()
        assert file_tree(Path(tmp)) == tree


def test_the_member_cap_counts_directories_and_links_and_comes_from_settings(
        tmp_path: Path) -> None:
    from opensage.serving.artifacts import archive_limits
    from opensage.settings import Settings

    settings = Settings.from_env({"OPENSAGE_ARCHIVE_MAX_MEMBERS": "3"})
    assert archive_limits(settings).max_members == 3
    fits = [_directory("d"), ("d/f", b"x"), link("l", "d/f")]
    extract_tar(io.BytesIO(tar_bytes(fits)), tmp_path / "ok", archive_limits(settings))
    assert (tmp_path / "ok" / "l").read_bytes() == b"x"
    with pytest.raises(ArchiveError, match=r"'g'.*more than 3 members \(archive_max_members\)"):
        extract_tar(io.BytesIO(tar_bytes([*fits, ("g", b"")])), tmp_path / "no",
                    archive_limits(settings))
    assert not (tmp_path / "no").exists()
