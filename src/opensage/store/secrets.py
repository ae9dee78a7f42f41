"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key file in the data directory.

SigV4 verification recomputes the signature from the secret access key, so secrets cannot be
stored hashed: they are encrypted, and the key that decrypts them lives in a file only the
server's user may read (0600). Servers that share one database must share the key file.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._key = _load_or_create(key_file)
        self._fernet = Fernet(self._key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (HMAC-SHA256 of the key file's key over ``purpose``): the
        same on every server sharing the key file, and telling nothing of the key."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise ValueError(f"a stored secret does not decrypt with {self.key_file}: the "
                             "key file was replaced or belongs to another server") from None


def write_private(path: Path, data: bytes) -> bool:
    """Create ``path`` readable by its owner only (0600, from the first byte on); False if
    it exists already (another server won the race, or an earlier start wrote it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return True


def _load_or_create(path: Path) -> bytes:
    if write_private(path, Fernet.generate_key()):
        return path.read_bytes().strip()
    for _ in range(100):  # another process may be writing it right now
        key = path.read_bytes().strip()
        if key:
            return key
        with contextlib.suppress(OSError):
            os.sched_yield()
    raise RuntimeError(f"{path} is empty: remove it to make a new key (stored secrets "
                       "will then be lost)")
