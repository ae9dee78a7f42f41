"""The object store's Python API: atomic writes, listing semantics, multipart, blobs."""

from __future__ import annotations

import base64
import importlib.util
import os
import random
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import sqlalchemy as sa

from opensage.errors import (
    BadDigest,
    InvalidBucketName,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
)
from opensage.store.blobs import LocalBlobs, RemoteBlobs
from opensage.store.db import Database
from opensage.store.objects import MIN_PART_SIZE, CompletedPart, ObjectStore

PG_URL = os.environ.get("OPENSAGE_TEST_DB_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        if not PG_URL:
            pytest.skip("OPENSAGE_TEST_DB_URL not set")
        pytest.importorskip("psycopg")
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        url = PG_URL
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture(params=["local", "memory"])
def objects_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both blob storages: a local directory, and a remote fsspec filesystem (memory)."""
    if request.param == "local":
        yield str(tmp_path / "objects")
        return
    url = f"memory://opensage-{uuid.uuid4().hex}"
    yield url
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root):  # the memory filesystem is process-wide
        fs.rm(root, recursive=True)


@pytest.fixture
def store(db: Database, objects_url: str) -> ObjectStore:
    s = ObjectStore(objects_url, db, "us-east-1")
    s.create_bucket("bkt")
    return s


def blob_files(store: ObjectStore) -> list[str]:
    """Every file the blob storage holds (temporary ones too)."""
    blobs = store.blobs
    if isinstance(blobs, LocalBlobs):
        root = Path(blobs.root)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert isinstance(blobs, RemoteBlobs)
    return sorted(blobs.fs.find(blobs.root))


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_put_streams_chunks_and_reads_ranges(store: ObjectStore, objects_url: str) -> None:
    chunks = [os.urandom(1000) for _ in range(50)]
    info = store.put_object("bkt", "../../escape", iter(chunks), meta={"ContentType": "x/y"},
                            checksum_algorithm="crc32")
    data = b"".join(chunks)
    assert info.size == len(data) and info.checksum == ("crc32", crc32(data))
    assert store.read_object("bkt", "../../escape") == data
    assert store.read_object("bkt", "../../escape", (10, 19)) == data[10:20]
    assert store.read_object("bkt", "../../escape", (49_990, 10**9)) == data[49_990:]
    path = store.local_path("bkt", "../../escape")
    if isinstance(store.blobs, RemoteBlobs):
        assert path is None
    else:
        assert path is not None and path.read_bytes() == data
        assert Path(objects_url) in path.parents and "escape" not in str(path)
    assert not any("escape" in name for name in blob_files(store))
    assert store.head_object("bkt", "../../escape").meta["ContentType"] == "x/y"


def test_a_failed_write_leaves_nothing_behind(store: ObjectStore) -> None:
    store.put_object("bkt", "k", b"version one")
    before = blob_files(store)

    def broken() -> Iterator[bytes]:
        yield b"partial data"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_object("bkt", "k", broken())
    with pytest.raises(BadDigest):
        store.put_object("bkt", "k", b"version two", checksum_algorithm="crc32",
                         checksum=crc32(b"something else"))
    with pytest.raises(NoSuchBucket):
        store.put_object("nobucket", "k", b"x")
    assert store.read_object("bkt", "k") == b"version one"
    assert blob_files(store) == before  # no temp or orphan blobs


def test_overwrite_and_delete_remove_old_blobs(store: ObjectStore) -> None:
    store.put_object("bkt", "k", b"1")
    store.put_object("bkt", "k", b"2")
    assert len(blob_files(store)) == 1
    assert store.delete_object("bkt", "k") is True
    assert store.delete_object("bkt", "k") is False
    assert blob_files(store) == []
    with pytest.raises(NoSuchKey):
        store.head_object("bkt", "k")


def test_concurrent_overwrites_keep_one_blob(store: ObjectStore) -> None:
    versions = {f"writer {i} round {j}".encode() for i in range(6) for j in range(8)}

    def write(i: int) -> None:
        for j in range(8):
            store.put_object("bkt", "hot", f"writer {i} round {j}".encode())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read_object("bkt", "hot") in versions
    assert len(blob_files(store)) == 1


def _reference(keys: list[str], prefix: str, delimiter: str) -> list[str]:
    """Every entry of a full listing, in order: keys, and common prefixes once each."""
    out: list[str] = []
    for key in sorted(keys):
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = key[:cut + len(delimiter)] if cut >= 0 else key
        if not out or out[-1] != entry:
            out.append(entry)
    return out


def test_listing_pages_match_a_reference(store: ObjectStore) -> None:
    rng = random.Random(7)
    parts = ["a", "b", "ab", "a-b", "é", "z", "A", "%", "_", "日本"]
    keys = sorted({"/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
                   for _ in range(120)} | {"a", "a/", "a//b", "ab_", "a%b"})
    for key in keys:
        store.put_object("bkt", key, b"")
    for prefix in ("", "a", "a/", "a_", "a%", "é/", "nope"):
        for delimiter in ("", "/", "b", "/a"):
            want = _reference(keys, prefix, delimiter)
            for max_keys in (1, 3, 1000):
                got: list[str] = []
                after = ""
                while True:
                    page = store.list_objects("bkt", prefix, delimiter, after, max_keys)
                    entries = [o.key for o in page.objects] + page.common_prefixes
                    assert len(entries) <= max_keys
                    got += sorted(entries)
                    if not page.is_truncated:
                        break
                    assert page.last is not None
                    after = page.last
                assert got == want, (prefix, delimiter, max_keys)


def test_multipart_full_object_and_composite(store: ObjectStore) -> None:
    one, two = os.urandom(MIN_PART_SIZE), os.urandom(100)
    for kind in ("FULL_OBJECT", "COMPOSITE"):
        up = store.create_multipart_upload("bkt", kind, {"ChecksumAlgorithm": "CRC32",
                                                         "ChecksumType": kind})
        p2 = store.upload_part("bkt", kind, up.upload_id, 2, two)
        p1 = store.upload_part("bkt", kind, up.upload_id, 1, iter([one]))
        info = store.complete_multipart_upload(
            "bkt", kind, up.upload_id,
            [CompletedPart(1, p1.etag, p1.checksum), CompletedPart(2, p2.etag)])
        assert store.read_object("bkt", kind) == one + two
        assert info.meta["PartsCount"] == 2 and info.etag.endswith('-2"')
        if kind == "FULL_OBJECT":
            assert info.checksum == ("crc32", crc32(one + two))
        else:
            assert info.meta["Checksum"].endswith("-2")
        with pytest.raises(NoSuchUpload):
            store.get_upload("bkt", kind, up.upload_id)


def test_copy_is_independent_and_a_hard_link_when_local(store: ObjectStore) -> None:
    store.put_object("bkt", "src", b"shared bytes", meta={"Metadata": {"a": "1"}})
    copy = store.copy_object("bkt", "src", "bkt", "dst")
    assert copy.meta == {"Metadata": {"a": "1"}}
    assert len(blob_files(store)) == 2
    path = store.local_path("bkt", "dst")
    if isinstance(store.blobs, LocalBlobs):
        assert path is not None and path.stat().st_nlink == 2
    else:
        assert path is None
    store.delete_object("bkt", "src")
    assert store.read_object("bkt", "dst") == b"shared bytes"
    assert len(blob_files(store)) == 1
    if path is not None:
        assert path.stat().st_nlink == 1


def test_wipe_and_reopen(store: ObjectStore, db: Database, objects_url: str) -> None:
    store.put_object("bkt", "k", b"kept")
    again = ObjectStore(objects_url, db, "us-east-1")
    assert again.read_object("bkt", "k") == b"kept"
    again.wipe()
    assert again.list_buckets() == []
    assert blob_files(again) == []


def test_bucket_rules(store: ObjectStore) -> None:
    for bad in ("ab", "UPPER", "a_b", "a..b", "10.0.0.1", "-a-", "xn--abc"):
        with pytest.raises(InvalidBucketName):
            store.create_bucket(bad)
    store.create_bucket("eu-1", "eu-west-1")
    assert store.head_bucket("eu-1").region == "eu-west-1"
    assert [b.name for b in store.list_buckets()] == ["bkt", "eu-1"]


def test_the_url_chooses_the_blob_storage_once(db: Database, tmp_path: Path) -> None:
    for url in (str(tmp_path / "a"), f"file://{tmp_path / 'b'}"):
        assert isinstance(ObjectStore(url, db, "us-east-1").blobs, LocalBlobs)
    remote = ObjectStore(f"memory://opensage-{uuid.uuid4().hex}", db, "us-east-1")
    assert isinstance(remote.blobs, RemoteBlobs)


def test_s3_url_without_s3fs_names_the_extra(db: Database,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "s3fs" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"opensage\[s3\]"):
        ObjectStore("s3://some-bucket/prefix", db, "us-east-1")
