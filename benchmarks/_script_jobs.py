"""What the script-overhead benchmarks (script mode, processing) share: a server on the
machine's shared frameworks directory, and the run time a job's script printed in its log."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REGION = "us-east-1"


@contextmanager
def framework_server() -> Iterator[Callable[[str], Any]]:
    """An ``opensage server`` subprocess on a temporary data directory and the shared
    frameworks directory (``OPENSAGE_FRAMEWORKS_DIR``, default the tests' cache), so a
    framework environment is built at most once per machine; yields a boto3 client maker."""
    import boto3
    from botocore.config import Config

    from opensage.testing import opensage_server

    frameworks = os.environ.get("OPENSAGE_FRAMEWORKS_DIR") or os.environ.get(
        "OPENSAGE_TEST_FRAMEWORKS_DIR") or str(Path.home() / ".cache/opensage-test/frameworks")
    os.environ["OPENSAGE_FRAMEWORKS_DIR"] = os.environ["OPENSAGE_TEST_FRAMEWORKS_DIR"] = (
        frameworks)
    with tempfile.TemporaryDirectory() as data_dir, opensage_server(Path(data_dir)) as url:
        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=url, region_name=REGION,
                                aws_access_key_id="test", aws_secret_access_key="test",
                                config=Config(retries={"max_attempts": 1}))
        yield client


def overhead(logs: Any, group: str, name: str, wall: float) -> dict[str, float]:
    """The job's wall time split into its script's own run time (the ``script_seconds=`` line
    it logged) and the rest, opensage's overhead."""
    stream = logs.describe_log_streams(logGroupName=group,
                                       logStreamNamePrefix=name + "/")["logStreams"][0]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                 startFromHead=True)["events"]
    script = next(float(e["message"].split("=", 1)[1]) for e in events
                  if e["message"].startswith("script_seconds="))
    return {"wall_s": wall, "script_s": script, "overhead_s": wall - script}
