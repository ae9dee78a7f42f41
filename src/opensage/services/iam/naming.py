"""IAM ids and paths, shared by users, roles, groups and policies."""

from __future__ import annotations

import base64
import secrets

from opensage.errors import ValidationException


def random_id(prefix: str, length: int = 16) -> str:
    return prefix + base64.b32encode(secrets.token_bytes(15)).decode()[:length]


def iam_path(raw: str | None) -> str:
    path = raw or "/"
    if not (path.startswith("/") and path.endswith("/")):
        raise ValidationException("The specified value for path is invalid. It must begin "
                                  "and end with / and contain only alphanumeric characters "
                                  "and/or / characters.")
    return path
