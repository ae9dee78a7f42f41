"""Input channels: File/FastFile layout from a real object store, and Pipe-mode FIFOs."""

from __future__ import annotations

import gzip
import json
import os
import stat
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opensage.data.recordio import MAGIC as RECORDIO_MAGIC
from opensage.runner.channels import (
    ChannelError,
    materialize,
    relative_key,
    select_entries,
)
from opensage.runner.pipes import PipeFeeders
from opensage.store.db import Database
from opensage.store.objects import ObjectStore

BUCKET = "bkt"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObjectStore]:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    objects = ObjectStore(str(tmp_path / "objects"), db, "us-east-1", fsync=False)
    objects.create_bucket(BUCKET)
    yield objects
    db.dispose()


def channel(uri: str, **extra: Any) -> dict[str, Any]:
    source = {"S3DataType": extra.pop("S3DataType", "S3Prefix"), "S3Uri": uri,
              "S3DataDistributionType": extra.pop("Distribution", "FullyReplicated")}
    source.update(extra.pop("Source", {}))
    return {"ChannelName": extra.pop("ChannelName", "train"),
            "DataSource": {"S3DataSource": source}, **extra}


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_pipe(path: Path, timeout: float = 5) -> bytes:
    """Open a FIFO for reading (waiting for it to appear) and read it to the end."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    assert stat.S_ISFIFO(path.stat().st_mode)
    with open(path, "rb") as f:
        return f.read()


def in_thread(fn: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    thread.start()
    return thread, out


def frame(payload: bytes) -> bytes:
    return struct.pack("<II", RECORDIO_MAGIC, len(payload)) + payload + b"\0" * (
        -len(payload) % 4)


# -- File mode -------------------------------------------------------------------------------

def test_relative_key_rules() -> None:
    assert relative_key("data/train/a.csv", "data/train") == "a.csv"
    assert relative_key("data/train/a.csv", "data/train/") == "a.csv"
    assert relative_key("data/train/sub/b.csv", "data/train") == "sub/b.csv"
    assert relative_key("data/train.csv", "data/train.csv") == "train.csv"
    assert relative_key("data/train-2/c.csv", "data/train") == "train-2/c.csv"
    assert relative_key("x/y.csv", "") == "x/y.csv"


def test_file_mode_links_objects_with_their_relative_paths(store: ObjectStore,
                                                           tmp_path: Path) -> None:
    store.put_object(BUCKET, "data/train/a.csv", b"1,2\n")
    store.put_object(BUCKET, "data/train/sub/b.csv", b"3,4\n")
    store.put_object(BUCKET, "data/train/", b"")  # a folder marker is skipped
    store.put_object(BUCKET, "data/other/c.csv", b"no")
    target = tmp_path / "job" / "train"
    count = materialize(store, channel(f"s3://{BUCKET}/data/train"), target)
    assert count == 2
    assert files_under(target) == {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n"}
    blob = store.local_path(BUCKET, "data/train/a.csv")
    assert blob is not None and os.path.samefile(blob, target / "a.csv")  # a hard link


def test_fastfile_and_gzip_in_file_mode_place_files_as_stored(store: ObjectStore,
                                                              tmp_path: Path) -> None:
    packed = gzip.compress(b"1,2\n3,4\n")
    store.put_object(BUCKET, "gz/part.csv.gz", packed)
    target = tmp_path / "train"
    materialize(store, channel(f"s3://{BUCKET}/gz/", InputMode="FastFile",
                               CompressionType="Gzip", RecordWrapperType="RecordIO"), target)
    assert files_under(target) == {"part.csv.gz": packed}  # not decompressed, not wrapped


def test_manifest_file_places_listed_objects(store: ObjectStore, tmp_path: Path) -> None:
    store.put_object(BUCKET, "raw/x/1.csv", b"one")
    store.put_object(BUCKET, "raw/y/2.csv", b"two")
    store.put_object(BUCKET, "raw/z/3.csv", b"not listed")
    store.put_object(BUCKET, "manifests/train.json", json.dumps(
        [{"prefix": f"s3://{BUCKET}/raw/"}, "x/1.csv", "y/2.csv"]).encode())
    target = tmp_path / "train"
    materialize(store, channel(f"s3://{BUCKET}/manifests/train.json",
                               S3DataType="ManifestFile"), target)
    assert files_under(target) == {"x/1.csv": b"one", "y/2.csv": b"two"}


def test_manifest_naming_a_missing_object_is_refused(store: ObjectStore,
                                                     tmp_path: Path) -> None:
    store.put_object(BUCKET, "m.json", json.dumps(
        [{"prefix": f"s3://{BUCKET}/raw/"}, "missing.csv"]).encode())
    with pytest.raises(ChannelError, match="Could not read"):
        materialize(store, channel(f"s3://{BUCKET}/m.json", S3DataType="ManifestFile"),
                    tmp_path / "train")
    store.put_object(BUCKET, "bad.json", b'{"prefix": 1}')
    with pytest.raises(ChannelError, match="Invalid manifest file"):
        materialize(store, channel(f"s3://{BUCKET}/bad.json", S3DataType="ManifestFile"),
                    tmp_path / "train")


def test_sharded_by_s3_key_gives_each_host_every_nth_object(store: ObjectStore,
                                                            tmp_path: Path) -> None:
    for i in range(5):
        store.put_object(BUCKET, f"shards/part-{i}.csv", str(i).encode())
    sharded = channel(f"s3://{BUCKET}/shards/", Distribution="ShardedByS3Key")
    first = tmp_path / "h0"
    second = tmp_path / "h1"
    assert materialize(store, sharded, first, host_index=0, host_count=2) == 3
    assert materialize(store, sharded, second, host_index=1, host_count=2) == 2
    assert sorted(files_under(first)) == ["part-0.csv", "part-2.csv", "part-4.csv"]
    assert sorted(files_under(second)) == ["part-1.csv", "part-3.csv"]
    replicated = tmp_path / "all"
    assert materialize(store, channel(f"s3://{BUCKET}/shards/"), replicated,
                       host_index=1, host_count=2) == 5


def test_shuffle_is_seeded_per_epoch_and_sharding_splits_the_shuffled_list() -> None:
    items = list(range(20))
    source = {"S3DataDistributionType": "FullyReplicated"}
    epoch0 = select_entries(items, source, {"Seed": 7}, epoch=0)
    assert sorted(epoch0) == items and epoch0 != items
    assert select_entries(items, source, {"Seed": 7}, epoch=0) == epoch0  # reproducible
    assert select_entries(items, source, {"Seed": 7}, epoch=1) != epoch0
    assert select_entries(items, source, {"Seed": 8}, epoch=0) != epoch0
    sharded = {"S3DataDistributionType": "ShardedByS3Key"}
    halves = [select_entries(items, sharded, {"Seed": 7}, epoch=0, host_index=h, host_count=2)
              for h in (0, 1)]
    assert halves[0] == epoch0[0::2] and halves[1] == epoch0[1::2]
    with pytest.raises(ValueError):
        select_entries(items, sharded, host_index=2, host_count=2)


def test_missing_prefix_fails_with_sagemakers_message(store: ObjectStore,
                                                      tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match='No S3 objects found under S3 URL "s3://bkt/nope/"'):
        materialize(store, channel(f"s3://{BUCKET}/nope/"), tmp_path / "train")
    with pytest.raises(ChannelError, match="Could not read"):
        materialize(store, channel("s3://no-such-bucket/x/"), tmp_path / "train")


def test_paths_escaping_the_channel_are_refused(store: ObjectStore, tmp_path: Path) -> None:
    store.put_object(BUCKET, "data/../../evil.csv", b"x")
    target = tmp_path / "job" / "train"
    with pytest.raises(ChannelError, match="escapes the channel directory"):
        materialize(store, channel(f"s3://{BUCKET}/data/"), target)
    store.put_object(BUCKET, "m.json", json.dumps(
        [{"prefix": f"s3://{BUCKET}/data/"}, "../../evil.csv"]).encode())
    with pytest.raises(ChannelError, match="escapes the channel directory"):
        materialize(store, channel(f"s3://{BUCKET}/m.json", S3DataType="ManifestFile"),
                    target)
    assert not (tmp_path / "evil.csv").exists() and not (tmp_path / "job" / "evil.csv").exists()


def test_augmented_manifest_is_refused_in_file_mode(store: ObjectStore, tmp_path: Path) -> None:
    store.put_object(BUCKET, "aug.jsonl", b'{"source-ref": "s3://bkt/a", "label": 1}\n')
    with pytest.raises(ChannelError, match="only in Pipe input mode"):
        materialize(store, channel(f"s3://{BUCKET}/aug.jsonl",
                                   S3DataType="AugmentedManifestFile"), tmp_path / "train")


# -- Pipe mode -------------------------------------------------------------------------------

def test_pipe_mode_streams_every_epoch_in_key_order(store: ObjectStore, tmp_path: Path) -> None:
    store.put_object(BUCKET, "p/b.csv", b"second\n")
    store.put_object(BUCKET, "p/a.csv", b"first\n")
    store.put_object(BUCKET, "p/c.csv", os.urandom(300_000))  # more than one pipe buffer
    expected = b"first\nsecond\n" + store.read_object(BUCKET, "p/c.csv")
    data_dir = tmp_path / "data"
    with PipeFeeders(store) as pipes:
        first = pipes.add(channel(f"s3://{BUCKET}/p/", InputMode="Pipe"), data_dir)
        assert first == data_dir / "train_0" and stat.S_ISFIFO(first.stat().st_mode)
        assert not (data_dir / "train").exists()
        assert read_pipe(data_dir / "train_0") == expected
        assert read_pipe(data_dir / "train_1") == expected
        assert read_pipe(data_dir / "train_2") == expected
        assert pipes.epochs("train") == 3 and pipes.errors == []
        assert not (data_dir / "train_0").exists()  # a spent pipe is removed
    assert not (data_dir / "train_3").exists()  # close() removes the waiting pipe


def test_pipe_mode_decompresses_gzip_objects(store: ObjectStore, tmp_path: Path) -> None:
    store.put_object(BUCKET, "z/1.csv.gz", gzip.compress(b"a,b\n" * 1000))
    store.put_object(BUCKET, "z/2.csv.gz", gzip.compress(b"c,d\n"))
    with PipeFeeders(store) as pipes:
        pipes.add(channel(f"s3://{BUCKET}/z/", CompressionType="Gzip"), tmp_path)
        assert read_pipe(tmp_path / "train_0") == b"a,b\n" * 1000 + b"c,d\n"


def test_pipe_mode_recordio_framing_is_byte_exact(store: ObjectStore, tmp_path: Path) -> None:
    store.put_object(BUCKET, "r/1", b"abc")
    store.put_object(BUCKET, "r/2", b"12345678")
    store.put_object(BUCKET, "r/3", b"")
    hello = gzip.compress(b"hello", mtime=0)
    store.put_object(BUCKET, "r/4.gz", hello)
    with PipeFeeders(store) as pipes:
        pipes.add(channel(f"s3://{BUCKET}/r/", RecordWrapperType="RecordIO",
                          ChannelName="plain"), tmp_path)
        pipes.add(channel(f"s3://{BUCKET}/r/4", RecordWrapperType="RecordIO",
                          CompressionType="Gzip", ChannelName="packed"), tmp_path)
        got = read_pipe(tmp_path / "plain_0")
        packed = read_pipe(tmp_path / "packed_0")
    assert got == (b"\x0a\x23\xd7\xce" + b"\x03\0\0\0" + b"abc\0"
                   + b"\x0a\x23\xd7\xce" + b"\x08\0\0\0" + b"12345678"
                   + b"\x0a\x23\xd7\xce" + b"\0\0\0\0"
                   + b"\x0a\x23\xd7\xce" + struct.pack("<I", len(hello))
                   + hello + b"\0" * (-len(hello) % 4))
    assert packed == frame(b"hello")  # the length is the decompressed one


def test_pipe_mode_shuffles_each_epoch_and_shards(store: ObjectStore, tmp_path: Path) -> None:
    for i in range(12):
        store.put_object(BUCKET, f"s/{i:02d}", bytes([65 + i]))
    everything = bytes(range(65, 77))
    shuffled = channel(f"s3://{BUCKET}/s/", ShuffleConfig={"Seed": 3})
    with PipeFeeders(store) as pipes:
        pipes.add(shuffled, tmp_path)
        epochs = [read_pipe(tmp_path / f"train_{e}") for e in range(2)]
    assert all(sorted(e) == sorted(everything) for e in epochs)
    assert epochs[0] != epochs[1] and everything not in epochs
    sharded = channel(f"s3://{BUCKET}/s/", Distribution="ShardedByS3Key", ChannelName="part")
    with PipeFeeders(store, host_index=1, host_count=3) as pipes:
        pipes.add(sharded, tmp_path)
        assert read_pipe(tmp_path / "part_0") == everything[1::3]


def test_augmented_manifest_streams_attributes_as_records(store: ObjectStore,
                                                          tmp_path: Path) -> None:
    store.put_object(BUCKET, "img/1.jpg", b"\xff\xd8one")
    store.put_object(BUCKET, "img/2.jpg", b"\xff\xd8two!")
    lines = [{"source-ref": f"s3://{BUCKET}/img/1.jpg", "class": "0", "extra": 5},
             {"source-ref": f"s3://{BUCKET}/img/2.jpg", "class": 1, "extra": 6}]
    store.put_object(BUCKET, "aug.jsonl", "\n".join(map(json.dumps, lines)).encode())
    aug = channel(f"s3://{BUCKET}/aug.jsonl", S3DataType="AugmentedManifestFile",
                  RecordWrapperType="RecordIO",
                  Source={"AttributeNames": ["source-ref", "class"]})
    with PipeFeeders(store) as pipes:
        pipes.add(aug, tmp_path)
        got = read_pipe(tmp_path / "train_0")
    assert got == frame(b"\xff\xd8one") + frame(b"0") + frame(b"\xff\xd8two!") + frame(b"1")
    store.put_object(BUCKET, "bad.jsonl", b'{"class": 1}\n')
    with PipeFeeders(store) as pipes, pytest.raises(ChannelError, match="source-ref"):
        pipes.add(channel(f"s3://{BUCKET}/bad.jsonl", S3DataType="AugmentedManifestFile",
                          Source={"AttributeNames": ["source-ref"]}), tmp_path)


def test_pipe_mode_refuses_bad_channels_before_the_job_starts(store: ObjectStore,
                                                              tmp_path: Path) -> None:
    with PipeFeeders(store) as pipes:
        with pytest.raises(ChannelError, match="No S3 objects found"):
            pipes.add(channel(f"s3://{BUCKET}/none/"), tmp_path)
        store.put_object(BUCKET, "ok/1", b"x")
        with pytest.raises(ChannelError, match="CompressionType"):
            pipes.add(channel(f"s3://{BUCKET}/ok/", CompressionType="Zip"), tmp_path)
        assert not (tmp_path / "train_0").exists()


def test_a_reader_that_stops_early_ends_the_epoch_quietly(store: ObjectStore,
                                                          tmp_path: Path) -> None:
    store.put_object(BUCKET, "big/x", os.urandom(3 << 20))
    with PipeFeeders(store) as pipes:
        pipes.add(channel(f"s3://{BUCKET}/big/"), tmp_path)
        with open(tmp_path / "train_0", "rb") as f:
            assert len(f.read(10)) == 10
        assert len(read_pipe(tmp_path / "train_1")) == 3 << 20  # the next epoch is whole
        assert pipes.errors == []


def test_close_unblocks_a_feeder_nobody_reads(store: ObjectStore, tmp_path: Path) -> None:
    store.put_object(BUCKET, "big/x", os.urandom(3 << 20))
    pipes = PipeFeeders(store)
    pipes.add(channel(f"s3://{BUCKET}/big/", ChannelName="idle"), tmp_path)
    pipes.add(channel(f"s3://{BUCKET}/big/", ChannelName="stuck"), tmp_path)
    with open(tmp_path / "stuck_0", "rb") as reader:  # read a little, then never again
        assert len(reader.read(4)) == 4
        time.sleep(0.1)
        started = time.monotonic()
        pipes.close()
        assert time.monotonic() - started < 1.0
        assert not any(t.is_alive() for t in threading.enumerate()
                       if t.name.startswith("opensage-pipe-"))
        assert not (tmp_path / "idle_0").exists() and not (tmp_path / "stuck_1").exists()


# -- through the local executor --------------------------------------------------------------

class _Events:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: Any = None
        self.lines: list[str] = []

    def advance(self, name: str, status: str, message: str | None = None) -> None:
        pass

    def metrics(self, name: str, values: list[tuple[str, float, float]]) -> None:
        pass

    def logs(self, name: str, stream: str, events: list[tuple[int, str]]) -> None:
        self.lines += [text for _, text in events]

    def finished(self, name: str, outcome: Any) -> None:
        self.outcome = outcome
        self.done.set()

    def stop_requested(self, name: str) -> bool:
        return False


READER = '''
import json, pathlib, sys
mode = json.loads(pathlib.Path("input/config/inputdataconfig.json").read_text())
epochs = [pathlib.Path(f"input/data/train_{e}").read_bytes() for e in range(2)]
pathlib.Path("model/seen.bin").write_bytes(b"|".join(epochs))
pathlib.Path("model/mode.txt").write_text(mode["train"]["TrainingInputMode"])
print("read", len(epochs[0]), "bytes twice; test files:",
      sorted(p.name for p in pathlib.Path("input/data/test").iterdir()))
'''


def test_local_executor_feeds_pipe_channels_and_stops_the_feeders(store: ObjectStore,
                                                                  tmp_path: Path) -> None:
    import io
    import tarfile

    from opensage.runner.local import LocalExecutor, TrainingSpec

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "pipe_reader_job.py").write_text(
        "import sys\nif sys.argv[1:] == ['train']:\n" + "".join(
            f"    {line}\n" for line in READER.strip().splitlines()))
    store.put_object(BUCKET, "in/train/a", b"alpha,")
    store.put_object(BUCKET, "in/train/b", b"beta")
    store.put_object(BUCKET, "in/test/t.csv", b"t")
    events = _Events()
    executor = LocalExecutor(tmp_path / "jobs", store, events, slots=1, stop_grace_seconds=1)
    executor.start()
    try:
        executor.submit(TrainingSpec(
            name="pipe-job", arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/p",
            module="pipe_reader_job", unsupported_reason=None, hyperparameters={},
            channels=[channel(f"s3://{BUCKET}/in/train/", InputMode="Pipe"),
                      channel(f"s3://{BUCKET}/in/test/", ChannelName="test")],
            input_mode="File", output_path=f"s3://{BUCKET}/out/", instance_type="ml.m5.large",
            instance_count=1, max_runtime=60, region="us-east-1",
            environment={"PYTHONPATH": str(tmp_path / "mods")}))
        assert events.done.wait(30), "the job never finished"
    finally:
        executor.shutdown()
    assert events.outcome.status == "Completed", (events.outcome, events.lines)
    body = store.read_object(BUCKET, "out/pipe-job/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        seen = tar.extractfile("seen.bin").read()  # type: ignore[union-attr]
        mode = tar.extractfile("mode.txt").read()  # type: ignore[union-attr]
    assert seen == b"alpha,beta|alpha,beta" and mode == b"Pipe"
    assert any("test files: ['t.csv']" in line for line in events.lines)
    deadline = time.monotonic() + 2
    while any(t.name.startswith("opensage-pipe-") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a pipe feeder outlived its job"
        time.sleep(0.02)
