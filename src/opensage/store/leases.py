"""Database leases: work that must happen once, even with several servers on one database.

A lease is a row (key, owner, expiry). ``claim`` takes it when it is free, expired, or
already the caller's; every step is one statement whose WHERE clause is the compare-and-set
(the primary key settles two first claims), so exactly one of several racing claimants wins,
on SQLite (writes are serialised) and on PostgreSQL (an UPDATE re-checks its WHERE clause
after waiting for a concurrent one) alike. A holder keeps its leases with ``renew`` (or a
``LeaseKeeper``) and gives them back with ``release``; a holder that dies simply stops
renewing, and its leases can be claimed once they expire.

Fencing: a ``LeaseKeeper`` knows the keys it holds and, at each renewal, which of them the
database still gives its owner; a key lost meanwhile (the server was cut from the database,
or stalled, for longer than the time to live, and another server took the work over) is
reported once to the keeper's ``on_lost``, and the work stops here. The work's final write
checks ``LeaseKeeper.holds`` first (see docs/architecture.md for the window that remains).

Expiry is wall-clock time of the server that writes it: servers sharing a database are
expected to keep their clocks in sync (NTP) to well within a lease's time to live.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable
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

    def renew_held(self, owner: str, ttl: float, *, now: float | None = None) -> set[str]:
        """``renew_all`` that also says which keys ``owner`` holds: one UPDATE ... RETURNING
        (SQLite 3.35+, PostgreSQL)."""
        now = time.time() if now is None else now
        with self.db.transaction() as conn:
            return {str(key) for key in conn.execute(
                update(leases).where(leases.c.owner == owner).values(expires=now + ttl)
                .returning(leases.c.key)).scalars()}

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
    is still doing.

    Fencing: the keeper remembers the keys it claimed or took over (until released); each
    beat's renewal returns the keys the database still gives this owner, and every key
    remembered but missing there (another server took it over once it expired) is given to
    ``on_lost`` once, from the keeper's thread: the service stops that work here."""

    def __init__(self, leases: Leases, owner: str, ttl: float,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.leases = leases
        self.owner = owner
        self.ttl = ttl
        self.on_lost = on_lost
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._free_since: dict[str, float] = {}  # orphan candidates: first seen free when
        self._held: set[str] = set()  # the keys this keeper claimed or took over

    @property
    def held(self) -> frozenset[str]:
        """The keys this keeper believes it holds (claimed or taken over, not released,
        not found lost)."""
        with self._lock:
            return frozenset(self._held)

    def holds(self, key: str) -> bool:
        """The fencing check before a final write: does the database still give ``key`` to
        this owner (expired or not: an expired lease no one took over is still ours)?"""
        return self.leases.holder(key) == self.owner

    def may_record_end(self, key: str, what: str, status: str) -> bool:
        """``holds(key)``; when not, the key is forgotten and the log says that ``what``'s
        end (``status``) reached here is not recorded: another server took it over."""
        if self.holds(key):
            return True
        self.forget(key)
        log.warning("%s ended here (%s) but its run lease is not this server's (another took "
                    "the job over, or the store was reset): not recorded", what, status)
        return False

    def claim(self, key: str) -> bool:
        won = self.leases.claim(key, self.owner, self.ttl)
        if won:
            self._hold(key)
        return won

    def _hold(self, key: str) -> None:
        with self._lock:
            self._held.add(key)
        self._keep_renewing()

    def take_over(self, key: str, *, orphans: bool = False) -> bool:
        """``Leases.take_over``: the key of a dead server, kept renewed from now on.
        ``orphans``: also a key no one holds that this keeper has seen free for a whole time
        to live (look again at least that often): its server died between writing the work
        and claiming it. A key seen free only briefly may be work being created."""
        won = self.leases.take_over(key, self.owner, self.ttl)
        if not won and orphans:
            won = self._orphan(key)
        if won:
            self._hold(key)
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
        with self._lock:  # forgotten first: a beat between the two must not call it lost
            self._held.discard(key)
        self.leases.release(key, self.owner)

    def forget(self, key: str) -> None:
        """Stop counting ``key`` as held without touching the database (it was found to be
        another owner's: nothing of ours to give back)."""
        with self._lock:
            self._held.discard(key)

    def forget_all(self) -> None:
        """A reset is about to wipe every lease: none is to be reported lost."""
        with self._lock:
            self._held.clear()

    def beat(self, *, now: float | None = None) -> int:
        """One renewal: extend every lease of the owner (one statement), report the keys
        this keeper held but lost to ``on_lost``; how many leases the owner holds."""
        with self._lock:
            owned = self.leases.renew_held(self.owner, self.ttl, now=now)
            lost = self._held - owned
            self._held -= lost
        for key in sorted(lost):
            log.warning("the lease %s of %s was taken over by another server: its work "
                        "stops here", key, self.owner)
            if self.on_lost is not None:
                try:
                    self.on_lost(key)
                except Exception:
                    log.exception("stopping the work of lost lease %s failed", key)
        return len(owned)

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
                if not self.beat():
                    with self._lock:
                        if not self._held:
                            self._thread = None
                            return
            except Exception:  # a database hiccup: try again at the next beat; a server
                # kept from its database for a whole time to live loses its work to another
                log.exception("renewing the leases of %s failed", self.owner)
