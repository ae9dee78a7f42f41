"""The objects a resource points to (model data, metrics reports): AWS refuses to create a
resource whose artifact it cannot read."""

from __future__ import annotations

from typing import Any

from opensage.errors import NoSuchBucket, NoSuchKey, ValidationException
from opensage.services.context import Context


def model_data_url(container: dict[str, Any]) -> str | None:
    """The ``model.tar.gz`` a container serves: its ``ModelDataUrl``, or a ``ModelDataSource``
    naming one compressed object (``S3Object``, ``Gzip``), which is the same thing. An
    uncompressed ``S3Prefix`` source is not fetched (None)."""
    if container.get("ModelDataUrl"):
        return str(container["ModelDataUrl"])
    source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
    if source.get("S3DataType") == "S3Object" and source.get("CompressionType") == "Gzip":
        return str(source["S3Uri"])
    return None


def check_s3_object(ctx: Context, url: str, *, what: str) -> None:
    """AWS refuses to create a model whose artifact it cannot read: so do we."""
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValidationException(f"Invalid {what} URL {url!r}: expected s3://bucket/key")
    bucket, key = url[5:].split("/", 1)
    try:
        ctx.objects.head_object(bucket, key)
    except (NoSuchBucket, NoSuchKey):
        raise ValidationException(
            f"Could not access {what} at {url}. Please ensure that the object exists and "
            "that the role has access to it.") from None
