"""S3's flexible checksums: which we can compute, and how S3 spells their values.

Values travel base64-encoded (``x-amz-checksum-crc32: AAAAAA==``). CRC32, SHA-1, SHA-256,
SHA-512 and MD5 come from the standard library; CRC32C and CRC64NVME need ``awscrt`` (or the
``crc32c`` / ``google-crc32c`` packages) and the XXHASH family needs ``xxhash``. When none is
installed the algorithm is still accepted: the client's value is stored and echoed unverified.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import zlib
from collections.abc import Callable
from typing import Any, Protocol

# Every algorithm botocore's S3 model knows, in its header spelling (lower case).
ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256", "sha512", "md5",
              "xxhash64", "xxhash3", "xxhash128")
# Those whose multipart uploads may be combined as one full-object checksum (we recompute it).
FULL_OBJECT_CAPABLE = ("crc32", "crc32c", "crc64nvme")


class Hasher(Protocol):
    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    def __init__(self, fn: Callable[[bytes, int], int], width: int) -> None:
        self._fn, self._width, self._value = fn, width, 0

    def update(self, data: bytes) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _crc32c_fn() -> Callable[[bytes, int], int] | None:
    crt = _optional("awscrt.checksums")
    if crt is not None:
        return lambda data, prev: int(crt.crc32c(data, prev))
    lib = _optional("crc32c")
    if lib is not None:
        return lambda data, prev: int(lib.crc32c(data, prev))
    google = _optional("google_crc32c")
    if google is not None:
        return lambda data, prev: int(google.extend(prev, data))
    return None


def _factories() -> dict[str, Callable[[], Hasher]]:
    out: dict[str, Callable[[], Hasher]] = {
        "crc32": lambda: _Crc(zlib.crc32, 4),
        "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512,
        "md5": hashlib.md5,
    }
    crc32c = _crc32c_fn()
    if crc32c is not None:
        out["crc32c"] = lambda: _Crc(crc32c, 4)
    crt = _optional("awscrt.checksums")
    if crt is not None and hasattr(crt, "crc64nvme"):
        out["crc64nvme"] = lambda: _Crc(lambda d, p: int(crt.crc64nvme(d, p)), 8)
    xx = _optional("xxhash")
    if xx is not None:
        out["xxhash64"] = xx.xxh64
        out["xxhash3"] = xx.xxh3_64
        out["xxhash128"] = xx.xxh3_128
    return out


_FACTORIES = _factories()


def normalize(algorithm: str | None) -> str | None:
    """``CRC32`` / ``crc32`` -> ``crc32``; None stays None; unknown names raise ValueError."""
    if not algorithm:
        return None
    name = algorithm.strip().lower()
    if name not in ALGORITHMS:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}")
    return name


def new_hasher(algorithm: str | None) -> Hasher | None:
    """A running hasher for ``algorithm``, or None where we cannot compute it."""
    if algorithm is None:
        return None
    factory = _FACTORIES.get(algorithm)
    return factory() if factory is not None else None


def can_compute(algorithm: str) -> bool:
    return algorithm in _FACTORIES


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def compute(algorithm: str, data: bytes) -> str | None:
    hasher = new_hasher(algorithm)
    if hasher is None:
        return None
    hasher.update(data)
    return b64(hasher.digest())


def composite(algorithm: str, part_values: list[str]) -> str | None:
    """S3's COMPOSITE multipart checksum: the checksum of the parts' raw checksums, ``-N``."""
    hasher = new_hasher(algorithm)
    if hasher is None:
        return None
    for value in part_values:
        hasher.update(base64.b64decode(value))
    return f"{b64(hasher.digest())}-{len(part_values)}"
