"""The cost of a lease keeper's beat with fencing against without: N leases of one owner
(default 1,000) in a fresh SQLite database (or ``--db-url``); "before" is the former beat,
``Leases.renew_all`` (one UPDATE); "after" is ``LeaseKeeper.beat`` (one UPDATE ... RETURNING
the keys, and the set difference against the keys the keeper holds). Alternating rounds of
``--beats`` beats each; also the fence at a job's final write (``LeaseKeeper.holds``: one
SELECT by primary key).

    .venv/bin/python -m benchmarks.bench_leases [--leases 1000] [--rounds 5] [--beats 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert

from opensage.store.db import Database
from opensage.store.leases import LeaseKeeper, Leases
from opensage.store.schema import leases as leases_table

OWNER = "bench-host:0000000000000000"
TTL = 60.0


def per_call_ms(call: Callable[[], object], times: int) -> float:
    start = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - start) / times * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leases", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--beats", type=int, default=50)
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.db_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.prepare()
        keys = [f"training-job/job-{i:05d}/run" for i in range(args.leases)]
        now = time.time()
        with db.transaction() as conn:
            conn.execute(leases_table.delete())
            conn.execute(insert(leases_table), [
                {"key": key, "owner": OWNER, "expires": now + TTL} for key in keys])
        store = Leases(db)
        keeper = LeaseKeeper(store, OWNER, TTL, on_lost=lambda key: None)
        keeper._held.update(keys)  # as if claimed one by one (no renewing thread started)
        before: list[float] = []
        after: list[float] = []
        for _ in range(args.rounds):
            before.append(per_call_ms(lambda: store.renew_all(OWNER, TTL), args.beats))
            after.append(per_call_ms(keeper.beat, args.beats))
        assert keeper.held == set(keys)  # nothing reported lost
        holds = per_call_ms(lambda: keeper.holds(keys[len(keys) // 2]), args.beats * 10)
        print(json.dumps({
            "database": db.url.split(":", 1)[0],
            "leases": args.leases,
            "beat_before_ms": [round(v, 3) for v in before],
            "beat_after_ms": [round(v, 3) for v in after],
            "beat_before_median_ms": round(statistics.median(before), 3),
            "beat_after_median_ms": round(statistics.median(after), 3),
            "ratio": round(statistics.median(after) / statistics.median(before), 2),
            "holds_check_ms": round(holds, 3),
        }, indent=1))


if __name__ == "__main__":
    main()
