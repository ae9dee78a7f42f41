"""A transform job whose worker is lost mid-job still completes: the lost worker's records
are re-sent to a replacement (``services.transform.job.Job._instead_of``), and the output
holds every record's prediction exactly once, in input order, as a job without the loss.

On the Ray executor a worker is lost with its node (``RayWorker.lost``). Here the job runs on
the local executor with real worker processes; the test's launcher makes workers that may be
lost the same way (``remote``, ``lost`` saying why), and the loss is caused at a fixed point,
not at a time: the first worker's process is killed (SIGKILL, and reaped) right after it
answered its first request, before that answer reaches the job. With
``MaxConcurrentTransforms: 1`` the requests go one at a time, alternating over the two
instances, so the next request for the killed worker is the one that finds it gone.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from opensage.serving.client import BlockingWorkerClient, Response, WorkerUnavailable
from opensage.serving.fleet import Launcher, ModelServer
from opensage.serving.process import LogSink, Worker
from tests.integration.test_endpoints import _services, csv_rows
from tests.integration.test_training_jobs import BUCKET
from tests.integration.test_transform import job, predict, read, rows, setup_model, wait_for

RECORDS = 30


class LosableWorker(Worker):
    """A local worker that can be lost as a Ray instance is with its node: ``lose`` kills
    its process (without stopping it: nothing on this server asked for that) and ``lost``
    then says why, as ``RayWorker.lost`` does."""

    remote = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lost_because: str | None = None

    @property
    def lost(self) -> str | None:
        return self.lost_because

    def lose(self, why: str) -> None:
        self.lost_because = why
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


class LosableLauncher(Launcher):
    """``Launcher`` whose workers are :class:`LosableWorker` (built as ``Launcher.launch``
    builds its own); ``launched`` lists them in launch order."""

    def __init__(self, forkserver: Any) -> None:
        super().__init__(forkserver, "transform-test")
        self.launched: list[LosableWorker] = []

    def launch(self, model: ModelServer, log_sink: Callable[[Worker], LogSink | None],
               on_exit: Callable[[Worker], None] | None = None) -> Worker:
        worker = LosableWorker(program=model.program, model_dir=model.model_dir,
                               work_dir=model.work_dir, cpus=model.cpus, env=model.env,
                               isolated=model.isolated, hidden=model.hidden,
                               shared=model.shared)
        worker.log_sink = log_sink(worker)
        worker.on_exit = on_exit
        worker.start(self._spawner, self.forkserver, self.containers)
        self.launched.append(worker)
        return worker


def test_a_lost_workers_records_are_re_sent_and_the_output_is_unchanged(server, sm, s3,
                                                                         client, monkeypatch):
    booster = setup_model(sm, s3)
    x = rows(RECORDS, 11)
    s3.put_object(Bucket=BUCKET, Key="in/part.csv", Body=csv_rows(x))
    request: dict[str, Any] = {
        "BatchStrategy": "SingleRecord", "MaxConcurrentTransforms": 1,
        "TransformResources": {"InstanceCount": 2, "InstanceType": "ml.m5.large"}}

    # the job without the loss
    sm.create_transform_job(**job("tx-whole", **request))
    described = wait_for(sm, "tx-whole")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    expected = read(s3, "out/tx-whole/part.csv.out")

    # the same job, its first worker lost once it answered its first request
    transform = _services(server).transform
    launcher = LosableLauncher(transform.forkserver)
    monkeypatch.setattr(transform, "launcher", launcher)
    answered: dict[str, int] = {}  # instance id -> records it answered
    refused: list[str] = []  # instance ids of the workers a request found gone
    lock = threading.Lock()
    real_request = BlockingWorkerClient.request

    def request_then_lose(self: BlockingWorkerClient, port: int, method: str, path: str,
                          body: bytes, headers: Mapping[str, str], timeout: float = 60.0,
                          host: str | None = None) -> Response:
        # the worker listening there now (a replacement could reuse a lost one's port)
        worker = next(w for w in reversed(launcher.launched) if w.port == port)
        try:
            answer = real_request(self, port, method, path, body, headers, timeout, host)
        except WorkerUnavailable:
            with lock:
                refused.append(worker.instance_id)
            raise
        doomed = launcher.launched[0]
        with lock:
            answered[worker.instance_id] = answered.get(worker.instance_id, 0) + 1
            first = worker is doomed and answered[worker.instance_id] == 1
        if first:
            doomed.lose("killed by the test after its first answer")
        return answer

    monkeypatch.setattr(BlockingWorkerClient, "request", request_then_lose)
    try:
        sm.create_transform_job(**job("tx-lost", **request))
        described = wait_for(sm, "tx-lost")
    finally:
        launcher.close()
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")

    doomed, other, replacement = launcher.launched  # two instances, then one replacement
    assert doomed.lost is not None and doomed.proc.poll() is not None
    assert answered[doomed.instance_id] == 1  # it answered one record and then was gone...
    assert refused == [doomed.instance_id]  # ...so its next record found it gone, once
    # the other records were answered once each: the re-sent one and the rest of the
    # lost worker's share by its replacement
    assert answered[other.instance_id] == RECORDS // 2
    assert answered[replacement.instance_id] == RECORDS // 2 - 1
    logs = client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs",
                                        logStreamNamePrefix="tx-lost/")["logStreams"]
    messages = [e["message"] for s in streams for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamName=s["logStreamName"])["events"]]
    assert any(f"Instance {doomed.instance_id} was lost" in m and "re-sent" in m
               for m in messages), messages

    got = read(s3, "out/tx-lost/part.csv.out")
    assert got == expected  # byte for byte what the job without the loss wrote
    values = np.array([float(v) for v in got.splitlines()], dtype=np.float32)
    assert len(values) == RECORDS  # every record once, none twice
    np.testing.assert_array_equal(values, predict(booster, x))  # in input order

