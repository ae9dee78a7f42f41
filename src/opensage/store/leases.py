"""Database leases: work that must happen once, even with several servers on one database.

A lease is a row (key, owner, expiry). ``claim`` takes it when it is free, expired, or
already the caller's; every step is one statement whose WHERE clause is the compare-and-set
(the primary key settles two first claims), so exactly one of several racing claimants wins,
on SQLite (writes are serialised) and on PostgreSQL (an UPDATE re-checks its WHERE clause
after waiting for a concurrent one) alike. A holder keeps its leases with ``renew`` (or a
``LeaseKeeper``) and gives them back with ``release``; a holder that dies simply stops
renewing, and its leases can be claimed once they expire.

Expiry is wall-clock time of the server that writes it: servers sharing a database are
expected to keep their clocks in sync (NTP) to well within a lease's time to live.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from pathlib import Path

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from opensage.store.db import Database
from opensage.store.schema import leases

log = logging.getLogger(__name__)


def server_owner(data_dir: Path) -> str:
    """The owner id of the server on this host with this data directory: stable across a
    restart (a server killed mid-job takes its own leases back at once, without waiting
    for them to expire) and distinct between servers (one data directory per server)."""
    place = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"{socket.gethostname()[:96]}:{place}"


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, key: str, owner: str, ttl: float, *, now: float | None = None) -> bool:
        """Take ``key`` for ``ttl`` seconds: True when free, expired or already ``owner``'s."""
        now = time.time() if now is None else now
        with self.db.transaction() as conn:
            taken = conn.execute(update(leases).where(
                leases.c.key == key, or_(leases.c.owner == owner, leases.c.expires <= now),
            ).values(owner=owner, expires=now + ttl)).rowcount
        if taken == 1:
            return True
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(leases).values(key=key, owner=owner, expires=now + ttl))
        except IntegrityError:  # a live lease of another owner, or a claim that came first
            return False
        return True

    def take_over(self, key: str, owner: str, ttl: float, *, now: float | None = None) -> bool:
        """Take ``key`` only from another owner whose lease has expired (that server died):
        never a free key (its work may be being created) nor one ``owner`` holds already."""
        now = time.time() if now is None else now
        with self.db.transaction() as conn:
            return conn.execute(update(leases).where(
                leases.c.key == key, leases.c.owner != owner, leases.c.expires <= now,
            ).values(owner=owner, expires=now + ttl)).rowcount == 1

    def claim_free(self, key: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        """Take ``key`` only when no one holds it, expired or not."""
        now = time.time() if now is None else now
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(leases).values(key=key, owner=owner, expires=now + ttl))
        except IntegrityError:
            return False
        return True

    def holder(self, key: str) -> str | None:
        """Who holds ``key`` (its lease may have expired); None when it is free."""
        with self.db.transaction() as conn:
            found = conn.execute(select(leases.c.owner).where(leases.c.key == key)).first()
        return None if found is None else str(found.owner)

    def renew(self, key: str, owner: str, ttl: float, *, now: float | None = None) -> bool:
        """Extend ``owner``'s lease on ``key``; False when it is no longer theirs."""
        now = time.time() if now is None else now
        with self.db.transaction() as conn:
            return conn.execute(update(leases).where(
                leases.c.key == key, leases.c.owner == owner,
            ).values(expires=now + ttl)).rowcount == 1

    def renew_all(self, owner: str, ttl: float, *, now: float | None = None) -> int:
        """Extend every lease ``owner`` holds (one statement); how many it holds."""
        now = time.time() if now is None else now
        with self.db.transaction() as conn:
            return int(conn.execute(update(leases).where(leases.c.owner == owner)
                                    .values(expires=now + ttl)).rowcount)

    def release(self, key: str, owner: str) -> bool:
        """Give ``key`` back; False when ``owner`` did not hold it."""
        with self.db.transaction() as conn:
            return conn.execute(delete(leases).where(
                leases.c.key == key, leases.c.owner == owner)).rowcount == 1


class LeaseKeeper:
    """Claims leases for one owner and renews them all in the background (every third of
    their time to live) while it holds any; the thread ends when none is left, or at
    ``close``. A renewal that fails (the database briefly unreachable) is retried at the next
    beat rather than given up: giving up would let another server take over work this one
    is still doing."""

    def __init__(self, leases: Leases, owner: str, ttl: float) -> None:
        self.leases = leases
        self.owner = owner
        self.ttl = ttl
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._free_since: dict[str, float] = {}  # orphan candidates: first seen free when

    def claim(self, key: str) -> bool:
        won = self.leases.claim(key, self.owner, self.ttl)
        if won:
            self._keep_renewing()
        return won

    def take_over(self, key: str, *, orphans: bool = False) -> bool:
        """``Leases.take_over``: the key of a dead server, kept renewed from now on.
        ``orphans``: also a key no one holds that this keeper has seen free for a whole time
        to live (look again at least that often): its server died between writing the work
        and claiming it. A key seen free only briefly may be work being created."""
        won = self.leases.take_over(key, self.owner, self.ttl)
        if not won and orphans:
            won = self._orphan(key)
        if won:
            self._keep_renewing()
        return won

    def _orphan(self, key: str) -> bool:
        if self.leases.holder(key) is not None:
            self._free_since.pop(key, None)
            return False
        first = self._free_since.setdefault(key, time.monotonic())
        if time.monotonic() - first < self.ttl:
            return False
        self._free_since.pop(key, None)
        return self.leases.claim_free(key, self.owner, self.ttl)

    def release(self, key: str) -> None:
        self.leases.release(key, self.owner)

    def close(self) -> None:
        self._closing.set()

    def _keep_renewing(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                                name="lease-keeper")
                self._thread.start()

    def _renew_loop(self) -> None:
        while not self._closing.wait(self.ttl / 3):
            try:
                with self._lock:
                    held = self.leases.renew_all(self.owner, self.ttl)
                    if not held:
                        self._thread = None
                        return
            except Exception:  # a database hiccup: try again at the next beat; a server
                # kept from its database for a whole time to live loses its work to another
                log.exception("renewing the leases of %s failed", self.owner)
