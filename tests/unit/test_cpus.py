"""Each job process gets CPUs of its own (``runner.cpus``), not "the first N" of the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest

from opensage.runner.cpus import CpuSlots, parse_ids
from opensage.runner.local import LocalExecutor


def test_one_cpu_hosts_are_spread_over_the_cpus_and_given_back() -> None:
    slots = CpuSlots([0, 1, 2])
    assert [slots.take(1), slots.take(1), slots.take(1)] == [[0], [1], [2]]
    assert slots.take(1) == [0]  # every CPU runs one: the lowest again
    slots.give_back([1])
    assert slots.take(1) == [1]  # the one given back is the least used now


def test_a_host_wanting_more_cpus_than_there_are_gets_them_all() -> None:
    slots = CpuSlots([0, 1])
    assert slots.take(1) == [0]
    assert slots.take(4) == [0, 1]
    assert slots.take(1) == [1]  # CPU 0 runs two jobs, CPU 1 one


def test_cpu_ids_parse() -> None:
    assert parse_ids("0,3") == [0, 3]
    assert parse_ids("2") == [2]


def test_the_launcher_pins_the_job_to_the_cpus_it_was_given() -> None:
    last = max(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-m", "opensage.runner.launch", "1", str(os.getpid()),
         "--cpu-ids", str(last), "--", sys.executable, "-c",
         "import os; print(sorted(os.sched_getaffinity(0)))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == f"[{last}]"
    counted = subprocess.run(
        [sys.executable, "-m", "opensage.runner.launch", "1", str(os.getpid()), "--",
         sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert counted.stdout.strip() == f"[{min(os.sched_getaffinity(0))}]"  # a count


def test_two_one_cpu_jobs_of_the_local_executor_run_on_different_cpus(tmp_path: Path) -> None:
    """Two one-vCPU hosts on this machine: each on a CPU of its own (both on the first was
    the old behaviour), and the CPUs come back once they ended."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        pytest.skip("one CPU here: nothing to spread over")
    executor = LocalExecutor(tmp_path, cast(Any, None), cast(Any, None), slots=2,
                             stop_grace_seconds=1)
    program = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    procs = [executor._launch(program, str(tmp_path), dict(os.environ), 1, False)
             for _ in range(2)]
    seen = []
    for proc in procs:
        assert proc.stdout is not None
        seen.append(proc.stdout.read().decode().strip())
        assert proc.wait() == 0
    assert seen == [f"[{available[0]}]", f"[{available[1]}]"]
    for _ in range(100):  # the release thread runs once wait() returned
        if not executor.cpu_slots.busy():
            break
        time.sleep(0.05)
    assert not executor.cpu_slots.busy()  # every CPU given back
