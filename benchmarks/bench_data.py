"""Data ingestion of the built-ins on 1M x 50 float32 (issue 5's data-format targets):

* RecordIO-protobuf read (dense records with a label, as ``record_set()`` writes them):
  ``opensage.data.recordio.read_recordio_protobuf`` vs the SDK's own reader
  (``sagemaker.amazon.common.read_records``, then the values into one NumPy matrix, which is
  what an algorithm needs). Target: >= 10x.
* CSV ingestion (label first, no header): ``opensage.data.csv.read_csv`` in MB/s of file.
  Target: >= 300 MB/s.

Both sides read the same file in the same run. ``--rows`` shrinks the data for a quick look.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_recordio(directory: Path, x: np.ndarray, y: np.ndarray) -> None:
    from sagemaker.amazon.common import read_records

    from opensage.data.recordio import encode_dense, read_recordio_protobuf

    path = directory / "train.pbr"
    path.write_bytes(encode_dense(x, y))
    size = path.stat().st_size

    def ours():
        return read_recordio_protobuf(path)

    def sdk():
        with open(path, "rb") as f:
            records = read_records(io.BytesIO(f.read()))
        features = np.array([r.features["values"].float32_tensor.values for r in records],
                            dtype=np.float32)
        labels = np.array([r.label["values"].float32_tensor.values[0] for r in records],
                          dtype=np.float32)
        return features, labels

    t_ours, data = _timed(ours)
    t_sdk, (features, labels) = _timed(sdk, repeat=1)
    assert np.array_equal(data.features, features) and np.array_equal(data.labels, labels)
    print(f"RecordIO-protobuf read, {len(x):,} x {x.shape[1]} float32 ({size / 1e6:.0f} MB): "
          f"opensage {t_ours:.3f} s ({size / t_ours / 1e6:,.0f} MB/s), SDK reader "
          f"{t_sdk:.2f} s -> {t_sdk / t_ours:.1f}x faster (target >= 10x)")


def bench_csv(directory: Path, x: np.ndarray, y: np.ndarray) -> None:
    from opensage.data.csv import read_csv

    path = directory / "train.csv"
    with open(path, "w") as f:
        np.savetxt(f, np.column_stack([y, x]), delimiter=",", fmt="%.6g")
    size = path.stat().st_size
    import pyarrow.csv as pacsv

    t, data = _timed(lambda: read_csv(path))
    assert data.features.shape == x.shape
    raw, _ = _timed(lambda: pacsv.read_csv(path, read_options=pacsv.ReadOptions(
        autogenerate_column_names=True)))
    print(f"CSV ingestion, {len(x):,} x {x.shape[1]} ({size / 1e6:.0f} MB): {t:.3f} s -> "
          f"{size / t / 1e6:,.0f} MB/s (target >= 300 MB/s); pyarrow.csv.read_csv alone, "
          f"defaults, to an Arrow table: {size / raw / 1e6:,.0f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.rows, args.cols), dtype=np.float32)
    y = rng.integers(0, 2, args.rows).astype(np.float32)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        bench_recordio(Path(tmp), x, y)
        bench_csv(Path(tmp), x, y)


if __name__ == "__main__":
    main()
