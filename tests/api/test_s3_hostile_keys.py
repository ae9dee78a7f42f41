"""Generated hostile S3 keys (Hypothesis, derandomised), sent raw so that every byte of the key
reaches the server as chosen: ``..`` and ``.`` segments, ``./``, empty segments, NUL and
control characters, percent signs that look like escapes, NFC and NFD spellings of one
visible name, names of the blob store's own files, very long keys. PUT then GET returns the
bytes stored under exactly that key, NFC and NFD are two keys (as in S3: keys are byte
strings), keys over 1,024 bytes are KeyTooLongError, and no file appears outside the blob
layout (``objects/<bucket>/<2 hex>/<32 hex>``) or anywhere else under the data directory.
"""

from __future__ import annotations

import http.client
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote_plus, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opensage.server import RunningServer
from tests.hostile_requests import file_tree

BUCKET = "keys"
SETTINGS = settings(max_examples=120, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))
BLOB = re.compile(rf"^objects/{BUCKET}/[0-9a-f]{{2}}/[0-9a-f]{{32}}$")

SEGMENTS = st.sampled_from([
    "..", ".", "", "...", "a", "\u00e9", "e\u0301", "\x00", "\x01", "\x7f", "\t", "\r\n",
    "%2e%2e", "%2F", "%00", "%", "%%", "+", " ", "~", ".tmp", "objects", "opensage.db",
    "keys", "ab", "0" * 32, "\ufeff", "\u202e", "\U0001f600", "\\", "..\\..", "?", "#", ";",
])
KEY = st.lists(SEGMENTS | st.text(max_size=6), min_size=1, max_size=8).map("/".join).filter(
    lambda k: 0 < len(k.encode("utf-8", "surrogatepass")) <= 1024 and _encodable(k))


def _encodable(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Raw:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def __call__(self, method: str, key: str, body: bytes = b"") -> tuple[int, bytes]:
        path = f"/{BUCKET}/" + quote(key.encode("utf-8"), safe="")
        self.conn.request(method, path, body=body if method == "PUT" else None,
                          headers={"Content-Length": str(len(body))} if method == "PUT"
                          else {})
        response = self.conn.getresponse()
        return response.status, response.read()


@pytest.fixture
def raw(endpoint: str, client) -> Raw:  # type: ignore[no-untyped-def]
    client("s3").create_bucket(Bucket=BUCKET)
    return Raw(endpoint)


def outside_objects(data_dir: Path) -> dict[str, tuple[str, int, str]]:
    return {k: v for k, v in file_tree(data_dir, skip=("opensage.db",)).items()
            if not k.startswith("objects")}


@pytest.mark.timeout(600)
def test_generated_keys_round_trip_and_nothing_escapes_the_store(
        server: RunningServer, raw: Raw, client) -> None:  # type: ignore[no-untyped-def]
    data_dir = server.settings.data_dir
    outside = outside_objects(data_dir)
    stored: dict[str, bytes] = {}

    @SETTINGS
    @given(key=KEY, body=st.binary(max_size=32))
    def round_trip(key: str, body: bytes) -> None:
        status, answer = raw("PUT", key, body)
        assert status == 200, (key, answer[:300])
        stored[key] = body
        assert raw("GET", key) == (200, body)

    round_trip()
    # Every key still answers its own bytes (no two keys shared a blob or a path).
    for key, body in stored.items():
        assert raw("GET", key) == (200, body), key
    listed = set()
    for page in client("s3").get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, EncodingType="url"):
        listed |= {unquote_plus(o["Key"]) for o in page.get("Contents", [])}
    assert listed == set(stored)
    assert outside_objects(data_dir) == outside
    files = [k for k, v in file_tree(data_dir / "objects").items() if v[0] == "file"]
    assert all(BLOB.match("objects/" + f) for f in files), files[:5]
    assert len(files) == len(stored)


@pytest.mark.parametrize("name", ["caf\u00e9", "\u212b", "\uac00", "\u1e9b\u0323"])
def test_nfc_and_nfd_spellings_are_two_keys(raw: Raw, name: str) -> None:
    nfc, nfd = unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name)
    assert nfc != nfd
    assert raw("PUT", nfc, b"composed")[0] == 200
    assert raw("PUT", nfd, b"decomposed")[0] == 200
    assert raw("GET", nfc) == (200, b"composed")
    assert raw("GET", nfd) == (200, b"decomposed")


@pytest.mark.parametrize("key", ["k" * 1025, "\u00e9" * 513, "a/" + "\U0001f600" * 256])
def test_keys_over_1024_bytes_are_key_too_long(raw: Raw, client, key: str) -> None:  # type: ignore[no-untyped-def]
    assert len(key.encode()) > 1024
    status, answer = raw("PUT", key, b"x")
    assert status == 400 and b"<Code>KeyTooLongError</Code>" in answer
    assert client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    fits = key.encode()[:1024].decode("utf-8", "ignore")  # whole characters, <= 1,024 bytes
    assert raw("PUT", fits, b"x")[0] == 200
