"""100,000 hostile requests generated from botocore's shapes (``tests/hostile_requests.py``)
against a real server process: counts, 5xx, state changes, server RSS before and after, time.

    .venv/bin/python -m benchmarks.fuzz_api [--requests 100000] [--seed 20260101]

Prints one JSON document (the figures for benchmarks/RESULTS.md, "Hostile input") and exits
non-zero if any request was answered other than as an AWS 4xx error of its protocol (S3's 501
NotImplemented for what opensage does not serve aside), or if the store changed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this repository's tests package, not a site-packages one

from opensage.testing import server_process
from tests import hostile_requests as hostile
from tests.api.test_hostile_requests import Server, seed_state


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()
    cases = args.requests // (hostile.VARIANTS + 1)
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp)) as (url, proc):
        server = Server(url, proc.pid, Path(tmp))
        seed_state(server)
        before = hostile.state_snapshot(server.data_dir)
        rss = {"start_kib": hostile.rss_kib(proc.pid)}
        campaign = hostile.Campaign("127.0.0.1", server.port)
        marks: list[tuple[int, int]] = []

        def every(sent: int) -> None:
            if not marks or sent - marks[-1][0] >= 10_000:
                marks.append((sent, hostile.rss_kib(proc.pid)))
                print(f"{sent} sent, RSS {marks[-1][1] // 1024} MiB, "
                      f"{len(campaign.findings)} findings", file=sys.stderr, flush=True)

        started = time.perf_counter()
        hostile.run(campaign, hostile.any_case(), cases, args.seed, every=every)
        elapsed = time.perf_counter() - started
        campaign.close()
        rss["end_kib"] = hostile.rss_kib(proc.pid)
        unchanged = hostile.state_unchanged(before, hostile.state_snapshot(server.data_dir))
        audited = hostile.audit_since(server.data_dir, before["tables"].get(
            "audit_events.seq", (0, ""))[0])
    result = {**campaign.summary(), "seed": args.seed, "cases_drawn": cases,
              "seconds": round(elapsed, 1),
              "requests_per_second": round(campaign.sent / elapsed, 1),
              "state_unchanged": unchanged, "audit_records": len(audited),
              "audit_records_without_error": sum(not r.get("errorCode") for r in audited),
              "rss": rss, "rss_every_10000": marks,
              "first_findings": [str(f) for f in campaign.findings[:10]]}
    print(json.dumps(result, indent=1))
    return 0 if unchanged and not campaign.findings else 1


if __name__ == "__main__":
    sys.exit(main())
