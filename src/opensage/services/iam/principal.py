"""Who signs a request: the principal behind an access key, and the key itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Principal:
    """As CloudTrail's ``userIdentity`` and STS ``GetCallerIdentity`` name it."""

    type: str  # Root | IAMUser | AssumedRole
    arn: str
    principal_id: str  # GetCallerIdentity's UserId: the account (root), AIDA..., AROA...:session
    account: str
    name: str  # the user name, the role session's "role/session", or "root"
    access_key_id: str = ""

    def document(self) -> dict[str, Any]:
        return {"type": self.type, "arn": self.arn, "principal_id": self.principal_id,
                "account": self.account, "name": self.name}

    @classmethod
    def from_document(cls, doc: dict[str, Any], access_key_id: str) -> Principal:
        return cls(type=doc["type"], arn=doc["arn"], principal_id=doc["principal_id"],
                   account=doc["account"], name=doc["name"], access_key_id=access_key_id)


@dataclass(frozen=True)
class Credential:
    """An access key as verification needs it (the secret in clear: keep it in memory only)."""

    access_key_id: str
    secret: str
    principal: Principal
    active: bool = True
    expiration: float | None = None  # session keys
    token_sha256: str | None = None  # session keys: SHA-256 of the session token

    def __repr__(self) -> str:  # never print the secret
        return f"Credential({self.access_key_id!r}, {self.principal.arn!r})"
