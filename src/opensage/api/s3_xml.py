"""S3's REST-XML wire format: dates, XML documents in and out, keys as ``encoding-type=url``."""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from opensage.errors import AwsError, MalformedXML
from opensage.store.objects import Bucket, Listing, ObjectInfo, Part, Upload

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_MALFORMED = ("The XML you provided was not well-formed or did not validate against our "
              "published schema")


def iso(ts: float) -> str:
    """2009-10-12T17:50:30.000Z, as S3 writes times in XML."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def http_date(ts: float) -> str:
    """Wed, 12 Oct 2009 17:50:30 GMT, as S3 writes Last-Modified."""
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    try:
        return float(calendar.timegm(parsed[:9]) - (parsed[9] or 0))
    except (ValueError, OverflowError):  # a year past 9999: S3 ignores a date it cannot read
        return None


def canonical_id(account: str) -> str:
    """A stable 64-hex canonical user id for the account (S3's Owner/ID)."""
    return hashlib.sha256(f"opensage:{account}".encode()).hexdigest()


def el(name: str, value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def opt(name: str, value: Any) -> str:
    return el(name, value) if value not in (None, "") else ""


def document(root: str, body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{body}</{root}>'
            ).encode()


def parse(body: bytes) -> ET.Element:
    """The request document with namespaces stripped; MalformedXML when it is not XML."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedXML(_MALFORMED)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise MalformedXML(_MALFORMED) from None
    for node in root.iter():
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.split("}", 1)[1]
    return root


def text(node: ET.Element, name: str, default: str = "") -> str:
    child = node.find(name)
    return child.text or "" if child is not None else default


def owner(account: str) -> str:
    return f"<Owner>{el('ID', canonical_id(account))}{el('DisplayName', account)}</Owner>"


def _url(value: str, encode: bool) -> str:
    return quote(value, safe="/") if encode else value


def checksum_fields(meta: dict[str, Any]) -> str:
    alg = meta.get("ChecksumAlgorithm")
    if not alg or not meta.get("Checksum"):
        return ""
    return el(f"Checksum{alg}", meta["Checksum"]) + el("ChecksumType", meta["ChecksumType"])


def list_buckets(buckets: Iterable[Bucket], account: str, prefix: str) -> bytes:
    items = "".join(f"<Bucket>{el('Name', b.name)}{el('CreationDate', iso(b.creation_time))}"
                    f"{el('BucketRegion', b.region)}</Bucket>" for b in buckets)
    return document("ListAllMyBucketsResult",
                    f"{owner(account)}<Buckets>{items}</Buckets>{opt('Prefix', prefix)}")


def _contents(o: ObjectInfo, encode: bool, account: str | None) -> str:
    alg = o.meta.get("ChecksumAlgorithm")
    sums = el("ChecksumAlgorithm", alg) + el("ChecksumType", o.meta.get("ChecksumType",
                                                                        "FULL_OBJECT"))
    return (f"<Contents>{el('Key', _url(o.key, encode))}{el('LastModified', iso(o.last_modified))}"
            f"{el('ETag', o.etag)}{sums if alg else ''}"
            f"{el('Size', o.size)}{el('StorageClass', o.meta.get('StorageClass', 'STANDARD'))}"
            f"{owner(account) if account else ''}</Contents>")


def list_objects(bucket: str, listing: Listing, *, v2: bool, prefix: str, delimiter: str,
                 max_keys: int, encode: bool, account: str, fetch_owner: bool,
                 marker: str = "", start_after: str = "", token: str = "",
                 next_token: str = "") -> bytes:
    parts = [el("Name", bucket), el("Prefix", _url(prefix, encode))]
    if v2:
        parts += [el("KeyCount", len(listing.objects) + len(listing.common_prefixes)),
                  opt("ContinuationToken", token), opt("NextContinuationToken", next_token),
                  opt("StartAfter", _url(start_after, encode))]
    else:
        parts.append(el("Marker", _url(marker, encode)))
        if listing.is_truncated and delimiter and listing.last:
            parts.append(el("NextMarker", _url(listing.last, encode)))
    parts += [el("MaxKeys", max_keys), opt("Delimiter", _url(delimiter, encode)),
              opt("EncodingType", "url" if encode else ""), el("IsTruncated", listing.is_truncated)]
    who = account if (fetch_owner or not v2) else None
    parts += [_contents(o, encode, who) for o in listing.objects]
    parts += [f"<CommonPrefixes>{el('Prefix', _url(p, encode))}</CommonPrefixes>"
              for p in listing.common_prefixes]
    return document("ListBucketResult", "".join(parts))


def delete_result(deleted: Iterable[str], errors: Iterable[tuple[str, AwsError]],
                  quiet: bool) -> bytes:
    body = "" if quiet else "".join(f"<Deleted>{el('Key', k)}</Deleted>" for k in deleted)
    body += "".join(f"<Error>{el('Key', k)}{el('Code', e.code)}{el('Message', e.message)}</Error>"
                    for k, e in errors)
    return document("DeleteResult", body)


def copy_result(root: str, info: ObjectInfo | Part) -> bytes:
    when = info.last_modified
    sums = checksum_fields(info.meta) if isinstance(info, ObjectInfo) else ""
    return document(root, f"{el('LastModified', iso(when))}{el('ETag', info.etag)}{sums}")


def initiate_result(upload: Upload) -> bytes:
    return document("InitiateMultipartUploadResult",
                    el("Bucket", upload.bucket) + el("Key", upload.key)
                    + el("UploadId", upload.upload_id))


def complete_result(location: str, info: ObjectInfo) -> bytes:
    return document("CompleteMultipartUploadResult",
                    el("Location", location) + el("Bucket", info.bucket) + el("Key", info.key)
                    + el("ETag", info.etag) + checksum_fields(info.meta))


def list_parts(upload: Upload, parts: list[Part], truncated: bool, marker: int, max_parts: int,
               account: str) -> bytes:
    alg = upload.meta.get("ChecksumAlgorithm")
    items = "".join(
        f"<Part>{el('PartNumber', p.part_number)}{el('LastModified', iso(p.last_modified))}"
        f"{el('ETag', p.etag)}{el('Size', p.size)}"
        f"{el(f'Checksum{alg}', p.checksum) if alg and p.checksum else ''}</Part>"
        for p in parts)
    who = owner(account)
    return document("ListPartsResult", "".join([
        el("Bucket", upload.bucket), el("Key", upload.key), el("UploadId", upload.upload_id),
        el("PartNumberMarker", marker),
        el("NextPartNumberMarker", parts[-1].part_number if parts else marker),
        el("MaxParts", max_parts), el("IsTruncated", truncated),
        who.replace("Owner>", "Initiator>"), who,
        el("StorageClass", upload.meta.get("StorageClass", "STANDARD")),
        opt("ChecksumAlgorithm", alg), opt("ChecksumType", upload.meta.get("ChecksumType")),
        items]))


def list_uploads(bucket: str, uploads: list[Upload], truncated: bool, *, prefix: str,
                 key_marker: str, upload_id_marker: str, max_uploads: int, account: str,
                 encode: bool) -> bytes:
    who = owner(account)
    items = "".join(
        f"<Upload>{el('Key', _url(u.key, encode))}{el('UploadId', u.upload_id)}"
        f"{who.replace('Owner>', 'Initiator>')}{who}"
        f"{el('StorageClass', u.meta.get('StorageClass', 'STANDARD'))}"
        f"{el('Initiated', iso(u.initiated))}"
        f"{opt('ChecksumAlgorithm', u.meta.get('ChecksumAlgorithm'))}</Upload>"
        for u in uploads)
    last = uploads[-1] if uploads and truncated else None
    return document("ListMultipartUploadsResult", "".join([
        el("Bucket", bucket), el("KeyMarker", _url(key_marker, encode)),
        el("UploadIdMarker", upload_id_marker),
        opt("NextKeyMarker", _url(last.key, encode) if last else ""),
        opt("NextUploadIdMarker", last.upload_id if last else ""),
        el("Prefix", _url(prefix, encode)), el("MaxUploads", max_uploads),
        opt("EncodingType", "url" if encode else ""), el("IsTruncated", truncated), items]))
