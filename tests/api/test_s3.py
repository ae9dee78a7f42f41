"""S3 through real boto3 / AWS CLI / raw HTTP against a real server."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from opensage.server import start_in_thread
from opensage.settings import Settings

ACCOUNT = "123456789012"


@pytest.fixture
def s3(client: Callable[..., Any]) -> Any:
    return client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="bkt")
    return "bkt"


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def status_of(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def raw_request(endpoint: str, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _client_for(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}))


# -- buckets -------------------------------------------------------------------------------


def test_bucket_lifecycle(s3: Any) -> None:
    s3.create_bucket(Bucket="alpha")
    s3.create_bucket(Bucket="beta",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["alpha", "beta"]
    assert s3.head_bucket(Bucket="beta")["BucketRegion"] == "eu-west-1"
    assert s3.get_bucket_location(Bucket="alpha")["LocationConstraint"] is None
    assert s3.get_bucket_location(Bucket="beta")["LocationConstraint"] == "eu-west-1"
    s3.delete_bucket(Bucket="alpha")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="alpha")
    assert (code_of(exc), exc.value.response["Error"]["Message"]) == ("404", "Not Found")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["beta"]


def test_bucket_errors(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="missing")
    assert code_of(exc) == "NoSuchBucket"
    assert exc.value.response["Error"]["BucketName"] == "missing"
    for size in (1, 3 * 1024 * 1024):  # a big body is refused before it is sent
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket="missing", Key="k", Body=b"x" * size)
        assert code_of(exc) == "NoSuchBucket"
        assert s3.list_buckets()["Buckets"] == []  # the connection is still usable
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="missing")
    assert code_of(exc) == "NoSuchBucket"

    s3.create_bucket(Bucket="eu-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="eu-bucket",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code_of(exc) == "BucketAlreadyOwnedByYou" and status_of(exc) == 409
    # us-east-1 keeps S3's legacy answer: re-creating a bucket you own succeeds.
    s3.create_bucket(Bucket="us-bucket")
    s3.create_bucket(Bucket="us-bucket")

    s3.put_object(Bucket="us-bucket", Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="us-bucket")
    assert code_of(exc) == "BucketNotEmpty"
    s3.delete_object(Bucket="us-bucket", Key="k")
    s3.delete_bucket(Bucket="us-bucket")

    for bad in ("ab", "Bad_Name", "under_score", "-leading", "a..b", "192.168.1.1", "x" * 64):
        with pytest.raises(ClientError) as exc:
            s3.create_bucket(Bucket=bad)
        assert code_of(exc) == "InvalidBucketName", bad
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["eu-bucket"]


def test_expected_bucket_owner(s3: Any, bucket: str) -> None:
    s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=ACCOUNT)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner="999999999999")
    assert status_of(exc) == 403 and code_of(exc) == "403"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner="999999999999")
    assert code_of(exc) == "AccessDenied" and status_of(exc) == 403
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")  # nothing was stored
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=ACCOUNT)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


# -- objects -------------------------------------------------------------------------------


def test_put_get_head_delete(s3: Any, bucket: str) -> None:
    body = b"hello, world\n" * 100
    put = s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=body, ContentType="text/plain",
                        ContentEncoding="identity", ContentDisposition="attachment",
                        CacheControl="no-cache", Metadata={"owner": "me", "Run-Id": "7"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "text/plain"
    assert got["ContentEncoding"] == "identity"
    assert got["ContentDisposition"] == "attachment"
    assert got["CacheControl"] == "no-cache"
    assert got["Metadata"] == {"owner": "me", "run-id": "7"}
    head = s3.head_object(Bucket=bucket, Key="dir/hello.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert head["ServerSideEncryption"] == "AES256"
    # a default content type, an empty object, an overwrite
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    empty = s3.get_object(Bucket=bucket, Key="empty")
    assert empty["Body"].read() == b"" and empty["ContentType"] == "binary/octet-stream"
    s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"v2")
    assert s3.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read() == b"v2"

    s3.delete_object(Bucket=bucket, Key="dir/hello.txt")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert code_of(exc) == "NoSuchKey" and exc.value.response["Error"]["Key"] == "dir/hello.txt"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="dir/hello.txt")
    assert status_of(exc) == 404
    s3.delete_object(Bucket=bucket, Key="never-existed")  # S3 answers 204 regardless


def test_range_and_conditions(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    cases = {"bytes=2-5": b"2345", "bytes=-3": b"789", "bytes=7-": b"789",
             "bytes=8-100": b"89", "bytes=0-0": b"0"}
    for spec, want in cases.items():
        got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
        assert got["Body"].read() == want, spec
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"].endswith("/10")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-12")
    assert code_of(exc) == "InvalidRange" and status_of(exc) == 416

    etag = s3.head_object(Bucket=bucket, Key="r")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert status_of(exc) == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfMatch='"0000"')
    assert code_of(exc) == "PreconditionFailed" and status_of(exc) == 412
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag)["Body"].read() == b"0123456789"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="r", Body=b"other", IfNoneMatch="*")
    assert code_of(exc) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="r")["Body"].read() == b"0123456789"


def test_key_and_prefix_coexist_and_traversal_is_harmless(s3: Any, bucket: str,
                                                          server: Any) -> None:
    keys = {"a": b"file a", "a/b": b"file a/b", "a/b/c": b"file a/b/c",
            "../escape": b"dotdot", "x/../../../../etc/evil": b"deep", "./dot": b"dot",
            "sp ace+plus%pct&amp?q#h": b"odd", "üñí/çødé": b"unicode", "/lead//double": b"sl"}
    for key, body in keys.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    for key, body in keys.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    data_dir = Path(server.settings.data_dir)
    assert not list(data_dir.parent.rglob("evil")) and not list(data_dir.parent.rglob("escape"))
    assert not (data_dir / "objects" / bucket / "a").exists()


def test_list_objects_v2_prefix_delimiter_pagination(s3: Any, bucket: str) -> None:
    keys = ["a.txt", "b/1", "b/2", "b/sub/3", "c/1", "d.txt", "e/1", "e/2", "f.txt"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "d.txt", "f.txt"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["b/", "c/", "e/"]
    assert top["KeyCount"] == 6 and top["IsTruncated"] is False
    inner = s3.list_objects_v2(Bucket=bucket, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in inner["Contents"]] == ["b/1", "b/2"]
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == ["b/sub/"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="zzz")["KeyCount"] == 0
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="d.txt")
    assert [o["Key"] for o in after["Contents"]] == ["e/1", "e/2", "f.txt"]

    # pages of 2 entries (keys and common prefixes count alike) add up to the whole listing
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Delimiter": "/", "MaxKeys": 2}
    pages = 0
    while True:
        page = s3.list_objects_v2(**kwargs)
        pages += 1
        entries = [o["Key"] for o in page.get("Contents", [])]
        entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert len(entries) == page["KeyCount"] <= 2
        seen += entries
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert pages == 3
    assert sorted(seen) == ["a.txt", "b/", "c/", "d.txt", "e/", "f.txt"]

    # keyset pagination: a key added behind the cursor is not seen, one ahead of it is
    page1 = s3.list_objects_v2(Bucket=bucket, MaxKeys=3)
    assert [o["Key"] for o in page1["Contents"]] == ["a.txt", "b/1", "b/2"]
    s3.put_object(Bucket=bucket, Key="b/0", Body=b"behind")
    s3.put_object(Bucket=bucket, Key="c/0", Body=b"ahead")
    rest = s3.list_objects_v2(Bucket=bucket, ContinuationToken=page1["NextContinuationToken"])
    assert [o["Key"] for o in rest["Contents"]] == ["b/sub/3", "c/0", "c/1", "d.txt", "e/1",
                                                     "e/2", "f.txt"]
    full = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 4}).build_full_result()
    assert len(full["Contents"]) == 11

    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="not-a-token")
    assert code_of(exc) == "InvalidArgument"


def test_list_objects_v1(s3: Any, bucket: str) -> None:
    for key in ["a/1", "a/2", "b", "c/1", "d"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    page = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert page["IsTruncated"] is True
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/"]
    assert [o["Key"] for o in page["Contents"]] == ["b"]
    assert page["NextMarker"] == "b"
    page2 = s3.list_objects(Bucket=bucket, Delimiter="/", Marker=page["NextMarker"])
    assert [p["Prefix"] for p in page2["CommonPrefixes"]] == ["c/"]
    assert [o["Key"] for o in page2["Contents"]] == ["d"]
    assert page2["IsTruncated"] is False
    flat = s3.list_objects(Bucket=bucket, Marker="a/1")
    assert [o["Key"] for o in flat["Contents"]] == ["a/2", "b", "c/1", "d"]
    assert flat["Contents"][0]["Owner"]["DisplayName"] == ACCOUNT
    assert flat["Contents"][0]["Size"] == 1 and flat["Contents"][0]["StorageClass"] == "STANDARD"


def test_delete_objects(s3: Any, bucket: str) -> None:
    for key in ["k1", "k2", "k3"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k1"}, {"Key": "k2"},
                                                               {"Key": "ghost"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["ghost", "k1", "k2"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k3"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_copy_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src key+1", Body=b"payload", ContentType="text/csv",
                  Metadata={"m": "1"})
    out = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket,
                                                                "Key": "src key+1"})
    assert out["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    copied = s3.get_object(Bucket=bucket, Key="copy")
    assert copied["Body"].read() == b"payload"
    assert (copied["ContentType"], copied["Metadata"]) == ("text/csv", {"m": "1"})

    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=f"{bucket}/src key+1",
                   MetadataDirective="REPLACE", ContentType="application/json",
                   Metadata={"n": "2"})
    replaced = s3.head_object(Bucket=bucket, Key="replaced")
    assert (replaced["ContentType"], replaced["Metadata"]) == ("application/json", {"n": "2"})

    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "copy"})
    assert code_of(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "nope"})
    assert code_of(exc) == "NoSuchKey"

    # the copy is independent of its source
    s3.put_object(Bucket=bucket, Key="src key+1", Body=b"changed")
    s3.delete_object(Bucket=bucket, Key="src key+1")
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"payload"


# -- multipart, checksums, encodings -------------------------------------------------------


def test_upload_and_download_file_multipart(s3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 12345)
    src, dst = tmp_path / "big.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "data/big.bin")
    head = s3.head_object(Bucket=bucket, Key="data/big.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    part_md5s = [hashlib.md5(data[:8 << 20]).digest(), hashlib.md5(data[8 << 20:]).digest()]
    assert head["ETag"] == f'"{hashlib.md5(b"".join(part_md5s)).hexdigest()}-2"'
    assert head["ChecksumCRC32"].endswith("-2")  # composite, as S3 answers it
    s3.download_file(bucket, "data/big.bin", str(dst))
    assert dst.read_bytes() == data
    # a managed copy of a big object goes through UploadPartCopy
    s3.copy({"Bucket": bucket, "Key": "data/big.bin"}, bucket, "data/copy.bin")
    assert s3.get_object(Bucket=bucket, Key="data/copy.bin")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_multipart_api_and_errors(s3: Any, bucket: str) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/plain",
                                    Metadata={"k": "v"})
    uid = up["UploadId"]
    big = b"a" * (5 * 1024 * 1024)
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=big)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=b"tail")["ETag"]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp", uid)]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, len(big), e1), (2, 4, e2)]

    def complete(part_list: list[dict[str, Any]]) -> Any:
        return s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                            MultipartUpload={"Parts": part_list})

    with pytest.raises(ClientError) as exc:
        complete([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}])
    assert code_of(exc) == "InvalidPartOrder"
    with pytest.raises(ClientError) as exc:
        complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}])
    assert code_of(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}])
    assert code_of(exc) == "InvalidPart"
    small = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1,
                           Body=b"tiny")["ETag"]  # re-uploading a part replaces it
    with pytest.raises(ClientError) as exc:
        complete([{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": e2}])
    assert code_of(exc) == "EntityTooSmall"
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=big)["ETag"]
    done = complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}])
    assert done["Key"] == "mp" and done["ETag"].endswith('-2"')
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == big + b"tail"
    assert (got["ContentType"], got["Metadata"]) == ("text/plain", {"k": "v"})
    with pytest.raises(ClientError) as exc:
        complete([{"PartNumber": 1, "ETag": e1}])
    assert code_of(exc) == "NoSuchUpload"

    uid2 = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=uid2, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=uid2)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=uid2)
    assert code_of(exc) == "NoSuchUpload"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="gone")


def test_checksums(endpoint: str, bucket: str) -> None:
    s3 = _client_for(endpoint)  # no retries: botocore retries BadDigest, as for real S3
    body = b"checksummed bytes"
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, ChecksumAlgorithm="CRC32")
    assert put["ChecksumCRC32"] == crc32_b64(body)
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32_b64(body) and got["Body"].read() == body
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key="s", Body=body, ChecksumSHA256=sha)
    assert s3.head_object(Bucket=bucket, Key="s", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha

    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=body, ChecksumCRC32=crc32_b64(b"other"))
    assert code_of(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=body,
                      ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode())
    assert code_of(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="bad")
    assert status_of(exc) == 404
    # a failed overwrite leaves the previous object intact
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="c", Body=b"new", ChecksumCRC32=crc32_b64(b"nope"))
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == body


def _aws_chunked(data: bytes, chunk: int, trailer: str | None, signed: bool) -> bytes:
    sig = ";chunk-signature=" + "0" * 64 if signed else ""
    out = b""
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out += f"{len(piece):x}{sig}\r\n".encode() + piece + b"\r\n"
    out += f"0{sig}\r\n".encode()
    if trailer is not None:
        out += f"x-amz-checksum-crc32:{trailer}\r\n".encode()
    return out + b"\r\n"


def test_multipart_full_object_checksum(endpoint: str, bucket: str) -> None:
    s3 = _client_for(endpoint)
    one, two = os.urandom(5 * 1024 * 1024), b"the end"
    whole = crc32_b64(one + two)

    def upload(full_checksum: str) -> Any:
        uid = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32",
                                         ChecksumType="FULL_OBJECT")["UploadId"]
        parts = [{"PartNumber": n, "ETag": s3.upload_part(
            Bucket=bucket, Key="full", UploadId=uid, PartNumber=n, Body=data,
            ChecksumAlgorithm="CRC32")["ETag"]} for n, data in ((1, one), (2, two))]
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="full", UploadId=uid, MultipartUpload={"Parts": parts},
            ChecksumCRC32=full_checksum, ChecksumType="FULL_OBJECT",
            MpuObjectSize=len(one) + len(two))

    with pytest.raises(ClientError) as exc:
        upload(crc32_b64(b"wrong"))
    assert code_of(exc) == "BadDigest"
    done = upload(whole)
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (whole, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (whole, "FULL_OBJECT")


def test_aws_chunked_bodies(endpoint: str, s3: Any, bucket: str) -> None:
    data = os.urandom(200_000)
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "x-amz-trailer": "x-amz-checksum-crc32",
               "x-amz-decoded-content-length": str(len(data)), "Content-Type": "text/plain"}
    status, resp_headers, _ = raw_request(endpoint, "PUT", f"/{bucket}/chunked",
                                          _aws_chunked(data, 65536, crc32_b64(data), False),
                                          headers)
    assert status == 200
    assert resp_headers["x-amz-checksum-crc32"] == crc32_b64(data)
    got = s3.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/plain" and "ContentEncoding" not in got

    status, _, body = raw_request(endpoint, "PUT", f"/{bucket}/bad-trailer",
                                  _aws_chunked(data, 65536, crc32_b64(b"x"), False), headers)
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    signed = {"Content-Encoding": "aws-chunked",
              "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
              "x-amz-decoded-content-length": str(len(data))}
    status, _, _ = raw_request(endpoint, "PUT", f"/{bucket}/signed",
                               _aws_chunked(data, 8192, None, True), signed)
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == data
    short = dict(signed, **{"x-amz-decoded-content-length": str(len(data) + 1)})
    status, _, body = raw_request(endpoint, "PUT", f"/{bucket}/short",
                                  _aws_chunked(data, 8192, None, True), short)
    assert status == 400 and b"IncompleteBody" in body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["chunked", "signed"]


def test_server_side_encryption_echo(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="kms", Body=b"x", ServerSideEncryption="aws:kms")
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"].startswith(f"arn:aws:kms:us-east-1:{ACCOUNT}:")
    key_arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    s3.put_object(Bucket=bucket, Key="kms2", Body=b"x", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=key_arn)
    head = s3.head_object(Bucket=bucket, Key="kms2")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
    got = s3.get_object(Bucket=bucket, Key="kms2")
    assert got["SSEKMSKeyId"] == key_arn
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="AES256")
    assert up["ServerSideEncryption"] == "AES256"


def test_unsupported_subresource_is_501(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code_of(exc) == "NotImplemented" and status_of(exc) == 501


def test_virtual_host_style(endpoint: str, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="v/h", Body=b"virtual")
    port = urlsplit(endpoint).port
    status, _, body = raw_request(endpoint, "GET", "/v/h",
                                  headers={"Host": f"{bucket}.localhost:{port}"})
    assert (status, body) == (200, b"virtual")
    status, _, body = raw_request(endpoint, "GET", "/?list-type=2",
                                  headers={"Host": f"{bucket}.localhost:{port}"})
    assert status == 200 and b"<Key>v/h</Key>" in body


# -- persistence and the AWS CLI -----------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[[], Any]]:
    running: list[Any] = []

    def start() -> Any:
        srv = start_in_thread(Settings(data_dir=tmp_path / "data", port=0, account_id=ACCOUNT))
        running.append(srv)
        return srv

    yield start
    for srv in running:
        srv.stop()


def test_objects_survive_restart(own_server: Callable[[], Any]) -> None:
    first = own_server()
    s3 = _client_for(first.url)
    s3.create_bucket(Bucket="keep")
    s3.put_object(Bucket="keep", Key="a/b", Body=b"persisted", Metadata={"k": "v"})
    up = s3.create_multipart_upload(Bucket="keep", Key="pending")["UploadId"]
    first.stop()
    second = own_server()
    s3 = _client_for(second.url)
    got = s3.get_object(Bucket="keep", Key="a/b")
    assert (got["Body"].read(), got["Metadata"]) == (b"persisted", {"k": "v"})
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="keep")["Uploads"]] == [up]


def test_aws_cli_cp_ls_sync(endpoint: str, s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_text("one")
    (src / "sub" / "two.csv").write_text("2,2\n")
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    aws = [str(Path(sys.executable).parent / "aws"), "s3"]

    def cli(*args: str) -> str:
        proc = subprocess.run(aws + list(args), check=False, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    cli("cp", str(src / "one.txt"), f"s3://{bucket}/single/one.txt")
    cli("sync", str(src), f"s3://{bucket}/synced")
    assert s3.get_object(Bucket=bucket, Key="synced/one.txt")["Body"].read() == b"one"
    listing = cli("ls", "--recursive", f"s3://{bucket}/")
    for key in ("single/one.txt", "synced/one.txt", "synced/sub/two.csv"):
        assert key in listing
    down = tmp_path / "down"
    cli("sync", f"s3://{bucket}/synced", str(down))
    assert (down / "sub" / "two.csv").read_text() == "2,2\n"
    assert (down / "one.txt").read_text() == "one"


def test_slow_operations_keep_the_connection_alive(s3: Any, bucket: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Past KEEPALIVE_AFTER, Complete/Copy answer 200 at once and embed result or error."""
    import opensage.api.s3 as s3_api

    monkeypatch.setattr(s3_api, "KEEPALIVE_AFTER", 0.0)
    s3.put_object(Bucket=bucket, Key="src", Body=b"slow copy")
    out = s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert out["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"slow copy").hexdigest()}"'
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1,
                          Body=b"only part")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"ffffffffffffffffffffffffffffffff"'}]})
    assert code_of(exc) == "InvalidPart"
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"only part"


def test_object_store_on_s3fs(endpoint: str, s3: Any, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's remote (fsspec/s3fs) path, with this very server as the backing S3."""
    pytest.importorskip("s3fs")
    from opensage.store.blobs import RemoteBlobs
    from opensage.store.db import Database
    from opensage.store.objects import CompletedPart, ObjectStore

    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    s3.create_bucket(Bucket="backing")
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    store = ObjectStore("s3://backing/root", db, "us-east-1")
    assert isinstance(store.blobs, RemoteBlobs)
    store.create_bucket("inner")
    big = os.urandom(6 * 1024 * 1024)  # more than s3fs's block: its own multipart upload
    store.put_object("inner", "big", big, checksum_algorithm="crc32")
    store.copy_object("inner", "big", "inner", "copy")
    up = store.create_multipart_upload("inner", "mp")
    p1 = store.upload_part("inner", "mp", up.upload_id, 1, big)
    p2 = store.upload_part("inner", "mp", up.upload_id, 2, b"!")
    store.complete_multipart_upload("inner", "mp", up.upload_id,
                                    [CompletedPart(1, p1.etag), CompletedPart(2, p2.etag)])
    assert store.read_object("inner", "copy") == big
    assert store.read_object("inner", "mp", (len(big) - 1, len(big))) == big[-1:] + b"!"
    store.delete_object("inner", "big")
    blobs = [o["Key"] for o in s3.list_objects_v2(Bucket="backing")["Contents"]]
    assert len(blobs) == 2 and all(k.startswith("root/inner/") for k in blobs)  # parts gone
    store.wipe()
    assert s3.list_objects_v2(Bucket="backing")["KeyCount"] == 0
    db.dispose()
