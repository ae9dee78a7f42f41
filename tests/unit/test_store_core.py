"""The store's shared plumbing: pagination tokens, the row iterator, status transitions and
database leases (on SQLite here; tests/integration/test_store_backends.py runs the lease race
on PostgreSQL too when OPENSAGE_TEST_DB_URL is set)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from opensage.errors import ValidationException
from opensage.store import pagination
from opensage.store.db import Database
from opensage.store.leases import LeaseKeeper, Leases
from opensage.store.resources import ResourceStore, StatusConflict
from opensage.store.schema import leases, resources


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.prepare()
    return database


def seed(db: Database, kind: str, count: int, status: str = "InProgress",
         start: int = 0) -> None:
    with db.transaction() as conn:
        conn.execute(insert(resources), [
            {"kind": kind, "name": f"r-{i:05d}", "arn": f"arn:{kind}/r-{i:05d}",
             "status": status, "creation_time": float(i), "last_modified_time": float(i),
             "body": {"Name": f"r-{i:05d}"}} for i in range(start, start + count)])


# -- pagination ------------------------------------------------------------------------------
def test_in_memory_pages_cover_every_item_once_and_tokens_are_bound_to_their_query():
    items = sorted(((i % 7, i) for i in range(53)), reverse=True)
    seen, token = [], None
    while True:
        page, token = pagination.page(items, lambda k: k, query=("q", 1), token=token,
                                      limit=10, descending=True)
        seen += page
        if token is None:
            break
        with pytest.raises(ValidationException, match="different list request"):
            pagination.page(items, lambda k: k, query=("q", 2), token=token, limit=10)
    assert seen == items


def test_a_garbled_or_forged_token_is_a_client_error():
    with pytest.raises(ValidationException):
        pagination.decode("not-a-token!", ("q",))
    forged = pagination.encode(("q",), ("text", None))
    with pytest.raises(ValidationException):
        pagination.page([(1, 2)], lambda k: k, query=("q",), token=forged, limit=5)


def test_store_list_pages_with_the_shared_tokens(db: Database):
    from opensage.store.resources import ListQuery
    store = ResourceStore(db)
    seed(db, "thing", 25)
    names, token = [], None
    while True:
        rows, token = store.list("thing", ListQuery(max_results=7, next_token=token))
        names += [r.name for r in rows]
        if token is None:
            break
    assert names == [f"r-{i:05d}" for i in reversed(range(25))]
    _, token = store.list("thing", ListQuery(max_results=7))
    with pytest.raises(ValidationException, match="different list request"):
        store.list("thing", ListQuery(max_results=7, next_token=token, status="Completed"))


# -- the row iterator ------------------------------------------------------------------------
def test_scan_reads_every_matching_row_in_batches(db: Database):
    store = ResourceStore(db, scan_batch=4)
    seed(db, "thing", 10, "InProgress")
    seed(db, "thing", 5, "Completed", start=10)
    seed(db, "other", 3, "InProgress", start=20)
    assert [r.name for r in store.scan("thing")] == [f"r-{i:05d}" for i in range(15)]
    assert len(list(store.scan("thing", statuses=["InProgress"]))) == 10
    assert len(list(store.scan("thing", statuses=["Completed"], batch_size=1))) == 5
    assert list(store.scan("thing", statuses=[])) == []


def test_batched_reads_of_rows_and_tags(db: Database):
    store = ResourceStore(db, scan_batch=3)
    seed(db, "thing", 8)
    store.add_tags("arn:thing/r-00001", [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}])
    found = store.get_many("thing", ["r-00001", "r-00007", "missing", "r-00001"])
    assert sorted(found) == ["r-00001", "r-00007"]
    tags = store.tags_of(["arn:thing/r-00001", "arn:thing/r-00002"])
    assert tags == {"arn:thing/r-00001": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
                    "arn:thing/r-00002": []}


# -- transition ------------------------------------------------------------------------------
def test_transition_moves_status_and_body_together_and_records_the_move(db: Database):
    store = ResourceStore(db)
    seed(db, "job", 1)
    moved = store.transition("job", "r-00000", ["InProgress"], "Stopping",
                             lambda body: body.update(Status="Stopping"), now=50.0)
    assert (moved.status, moved.body["Status"], moved.last_modified_time) == (
        "Stopping", "Stopping", 50.0)
    row = store.get("job", "r-00000")
    assert row is not None and row.status == "Stopping" and row.body["Status"] == "Stopping"
    assert store.transitions("job", "r-00000") == [("InProgress", "Stopping", 50.0)]


def test_a_transition_from_the_wrong_status_is_refused_and_writes_nothing(db: Database):
    store = ResourceStore(db)
    seed(db, "job", 1, "Completed")
    with pytest.raises(StatusConflict, match="is in status Completed") as refused:
        store.transition("job", "r-00000", ["InProgress"], "Stopping",
                         lambda body: body.update(Touched=True), now=50.0)
    assert isinstance(refused.value, ValidationException) and refused.value.current == "Completed"
    with pytest.raises(StatusConflict, match="does not exist"):
        store.transition("job", "nope", ["InProgress"], "Stopping", now=50.0)
    row = store.get("job", "r-00000")
    assert row is not None and row.status == "Completed" and "Touched" not in row.body
    assert store.transitions("job", "r-00000") == []


def test_a_change_that_raises_aborts_the_transition(db: Database):
    store = ResourceStore(db)
    seed(db, "job", 1)

    def broken(body: dict) -> None:
        body["Half"] = True
        raise RuntimeError("illegal")

    with pytest.raises(RuntimeError):
        store.transition("job", "r-00000", ["InProgress"], "Failed", broken, now=5.0)
    row = store.get("job", "r-00000")
    assert row is not None and row.status == "InProgress" and "Half" not in row.body


def test_an_edit_keeps_the_status_records_no_move_and_loses_no_concurrent_edit(db: Database):
    store = ResourceStore(db)
    seed(db, "job", 1)
    barrier = threading.Barrier(8)

    def add(i: int) -> None:
        barrier.wait()
        store.edit("job", "r-00000", ["InProgress"],
                   lambda body: body.setdefault("Seen", []).append(i), now=float(i + 1),
                   change_internal=lambda internal: internal.update({f"k{i}": i}))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = store.get("job", "r-00000")
    assert row is not None and row.status == "InProgress"
    assert sorted(row.body["Seen"]) == list(range(8))  # a read-modify-write would lose some
    assert row.internal == {f"k{i}": i for i in range(8)}
    assert store.transitions("job", "r-00000") == []
    with pytest.raises(StatusConflict, match="is in status InProgress"):
        store.edit("job", "r-00000", ["Completed"], lambda body: body.update(X=1), now=9.0)


def test_racing_transitions_exactly_one_wins(db: Database):
    store = ResourceStore(db)
    seed(db, "job", 1)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def stop(i: int) -> None:
        barrier.wait()
        try:
            store.transition("job", "r-00000", ["InProgress"], f"Stopped-{i}", now=float(i))
            outcomes.append("won")
        except StatusConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=stop, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]
    assert len(store.transitions("job", "r-00000")) == 1


# -- leases ----------------------------------------------------------------------------------
def test_a_lease_is_held_until_released_or_expired(db: Database):
    leases = Leases(db)
    assert leases.claim("k", "a", 10, now=100)
    assert leases.claim("k", "a", 10, now=101)  # the holder's own claim renews it
    assert not leases.claim("k", "b", 10, now=105)
    assert not leases.renew("k", "b", 10, now=105)
    assert leases.renew("k", "a", 10, now=108)  # now until 118
    assert not leases.claim("k", "b", 10, now=117)
    assert leases.claim("k", "b", 10, now=118.5)  # expired: b takes it
    assert not leases.release("k", "a")
    assert leases.release("k", "b")
    assert leases.claim("k", "a", 10, now=119)


def test_take_over_takes_only_the_expired_lease_of_another_owner(db: Database):
    leases = Leases(db)
    assert not leases.take_over("k", "b", 10, now=100)  # free: maybe work being created
    assert leases.claim("k", "a", 10, now=100)
    assert not leases.take_over("k", "b", 10, now=105)  # a lives
    assert not leases.take_over("k", "a", 10, now=111)  # its own
    assert leases.take_over("k", "b", 10, now=111)  # a died: b takes it, once
    assert not leases.take_over("k", "c", 10, now=112)
    assert leases.holder("k") == "b"
    assert not leases.renew("k", "a", 10, now=112)  # a, back, finds it gone


def test_a_keeper_adopts_a_free_key_only_once_it_stayed_free_a_whole_ttl(db: Database):
    """Work written whose server died before claiming it (no lease at all) is adopted, but
    not work just being created: the keeper must see the key free for a time to live."""
    ttl = 0.5
    keeper, creator = LeaseKeeper(Leases(db), "b", ttl), LeaseKeeper(Leases(db), "a", ttl)
    try:
        assert not keeper.take_over("being-created", orphans=True)  # first seen free
        assert creator.claim("being-created")  # its creator claims it
        assert not keeper.take_over("orphan", orphans=True)
        assert not keeper.take_over("orphan")  # without orphans: never a free key
        first = time.monotonic()
        deadline = first + 30
        while not keeper.take_over("orphan", orphans=True):
            assert time.monotonic() < deadline
            time.sleep(ttl / 10)
        assert time.monotonic() - first >= ttl * 0.9  # not before it lay free that long
        assert Leases(db).holder("orphan") == "b"
        assert not keeper.take_over("being-created", orphans=True)  # a holds it, alive
        assert Leases(db).holder("being-created") == "a"
    finally:
        keeper.close()
        creator.close()


def test_a_keeper_keeps_renewing_after_a_failed_renewal(db: Database,
                                                         caplog: pytest.LogCaptureFixture):
    """A renewal that fails (here the table is gone for a while: a real database error) is
    tried again: the keeper must not give its work up to another server while it runs it."""
    ttl = 0.6
    keeper = LeaseKeeper(Leases(db), "a", ttl)
    try:
        assert keeper.claim("k")
        with db.transaction() as conn:
            conn.execute(text("ALTER TABLE leases RENAME TO leases_away"))
        deadline = time.monotonic() + 30
        while not any("renewing the leases of a failed" in r.getMessage()
                      for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with db.transaction() as conn:
            conn.execute(text("ALTER TABLE leases_away RENAME TO leases"))
        back = time.time()
        while (expiry := lease_expiry(db, "k")) is None or expiry < back + ttl * 0.9:
            assert time.monotonic() < deadline  # renewed again after the failure
            time.sleep(0.05)
        assert not Leases(db).claim("k", "b", ttl)
    finally:
        keeper.close()


def test_renew_held_renews_the_owners_leases_and_names_them(db: Database):
    leases = Leases(db)
    assert leases.claim("k1", "a", 10, now=100)
    assert leases.claim("k2", "a", 10, now=100)
    assert leases.claim("k3", "b", 10, now=100)
    assert leases.renew_held("a", 10, now=105) == {"k1", "k2"}
    assert lease_expiry(db, "k1") == lease_expiry(db, "k2") == 115
    assert lease_expiry(db, "k3") == 110  # b's untouched
    assert leases.renew_held("c", 10, now=105) == set()


def test_a_keeper_reports_each_key_it_lost_once_and_only_those(db: Database):
    """Fencing: the keeper held k1..k3; a stalled past its time to live (``now=``), b took k2
    over and k3 was released by someone else (another server took it and finished): the next
    beat reports k2 and k3 lost, once; k1, renewed, stays held; a key released through the
    keeper is not reported."""
    lost: list[str] = []
    keeper = LeaseKeeper(Leases(db), "a", 10, on_lost=lost.append)
    try:
        for key in ("k1", "k2", "k3", "k4"):
            assert keeper.claim(key)
        keeper.release("k4")
        assert keeper.held == {"k1", "k2", "k3"}
        later = time.time() + 60  # every lease of a has expired by then
        other = Leases(db)
        assert other.take_over("k2", "b", 10, now=later)
        assert other.take_over("k3", "b", 10, now=later)
        assert other.release("k3", "b")
        assert keeper.beat(now=later) == 1  # a holds k1 only
        assert sorted(lost) == ["k2", "k3"]
        assert keeper.held == {"k1"}
        assert keeper.beat(now=later) == 1
        assert sorted(lost) == ["k2", "k3"]  # reported once
        assert keeper.holds("k1") and not keeper.holds("k2") and not keeper.holds("k3")
        assert Leases(db).holder("k2") == "b"  # the beat never takes a lease back
    finally:
        keeper.close()


def test_a_key_another_owner_of_the_same_server_holds_is_not_lost(db: Database):
    """Keepers of one server share its owner id (one per service): a beat renews every
    lease of the owner and reports only the keys of its own keeper that the owner lost."""
    lost: list[str] = []
    training = LeaseKeeper(Leases(db), "a", 10, on_lost=lost.append)
    endpoints = LeaseKeeper(Leases(db), "a", 10, on_lost=lost.append)
    try:
        assert training.claim("job")
        assert endpoints.claim("endpoint")
        assert training.beat() == 2 and endpoints.beat() == 2
        endpoints.release("endpoint")
        assert training.beat() == 1
        assert lost == []
    finally:
        training.close()
        endpoints.close()


def test_the_keepers_thread_reports_a_lost_key(db: Database):
    """The background beat (every third of the time to live) finds the key taken over."""
    ttl = 0.6
    reported = threading.Event()
    lost: list[str] = []

    def on_lost(key: str) -> None:
        lost.append(key)
        reported.set()

    keeper = LeaseKeeper(Leases(db), "a", ttl, on_lost=on_lost)
    try:
        assert keeper.claim("k")
        with db.transaction() as conn:  # another server's takeover, as a row change
            conn.execute(leases.update().where(leases.c.key == "k").values(owner="b"))
        assert reported.wait(30)
        assert lost == ["k"] and keeper.held == frozenset()
    finally:
        keeper.close()


def lease_expiry(db: Database, key: str) -> float | None:
    with db.transaction() as conn:
        return conn.execute(select(leases.c.expires).where(leases.c.key == key)).scalar()


def test_racing_claims_exactly_one_wins(db: Database):
    claim_race(Leases(db))


def claim_race(leases: Leases, contenders: int = 8) -> None:
    """``contenders`` threads (each with its own pooled connection) claim one key at once;
    exactly one wins: on a free key, then on a lease of someone else that expired."""
    assert len(race_once(leases, "race-free", contenders)) == 1
    assert leases.claim("race-expired", "gone", 0.0, now=1.0)
    assert len(race_once(leases, "race-expired", contenders)) == 1


def race_once(leases: Leases, key: str, contenders: int) -> list[str]:
    wins: list[str] = []
    barrier = threading.Barrier(contenders)

    def contend(owner: str) -> None:
        barrier.wait()
        if leases.claim(key, owner, 30.0):
            wins.append(owner)

    threads = [threading.Thread(target=contend, args=(f"owner-{i}",)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wins
