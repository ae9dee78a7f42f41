"""``framework_worker.py`` on its own: a real worker process in the sklearn environment,
started as the fleet starts it (``serving.process.Worker``), and the handler contract's
corners: ``transform_fn``, the optional ``context``, ``(body, content_type)`` answers,
keep-alive, a clash of ``transform_fn`` with ``input_fn``, SIGTERM."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opensage.serving.process import Worker, WorkerFailed, WorkerProgram
from tests.integration.frameworks import SKLEARN_IMAGE, env_python, train_sklearn


@pytest.fixture(scope="module")
def python() -> Path:
    return env_python(SKLEARN_IMAGE)


def start(python: Path, tmp_path: Path, code: str, model: bytes = b"") -> Worker:
    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text(code)
    if model:
        (model_dir / "model.joblib").write_bytes(model)
    worker = Worker(program=WorkerProgram.framework("sklearn", python, model_dir / "code"),
                    model_dir=model_dir, work_dir=tmp_path / "work", cpus=1,
                    env={"SAGEMAKER_PROGRAM": "inference.py"})
    worker.start()
    return worker


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


TRANSFORM = """
import json

def model_fn(model_dir, context):
    return {"dir": context.system_properties["model_dir"]}

def transform_fn(model, data, content_type, accept):
    return json.dumps({"got": data, "type": content_type, "accept": accept}), "application/x-t"

def execution_parameters_fn():
    return '{"MaxConcurrentTransforms": 4, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 2}'
"""


def test_transform_fn_context_keep_alive_and_execution_parameters(python, tmp_path, workers):
    worker = start(python, tmp_path, TRANSFORM)
    workers.append(worker)
    worker.wait_ready(60)
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
    for i in range(3):  # one connection, kept alive
        conn.request("POST", "/invocations", body=f"{i},2", headers={
            "Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": f"n={i}"})
        answer = conn.getresponse()
        assert answer.status == 200
        assert answer.getheader("Content-Type") == "application/x-t"
        assert answer.getheader("X-Amzn-SageMaker-Custom-Attributes") == f"n={i}"
        # CSV arrives decoded as text; a missing Accept is the default (application/json).
        assert json.loads(answer.read()) == {"got": f"{i},2", "type": "text/csv",
                                             "accept": "application/json"}
    conn.request("GET", "/execution-parameters")
    assert json.loads(conn.getresponse().read())["BatchStrategy"] == "SINGLE_RECORD"
    conn.request("GET", "/nope")
    assert conn.getresponse().status == 404
    conn.close()
    worker.stop(grace=10)  # SIGTERM: it exits cleanly
    assert worker.proc.returncode == 0


def test_transform_fn_with_input_fn_fails_to_load_with_the_reason(python, tmp_path, workers):
    worker = start(python, tmp_path, TRANSFORM + "\ndef input_fn(data, content_type):\n"
                                                 "    return data\n")
    workers.append(worker)
    with pytest.raises(WorkerFailed, match="transform_fn cannot be combined with input_fn"):
        worker.wait_ready(60)


def test_default_decoders_reject_an_unknown_content_type_with_415(python, tmp_path, workers):
    model, facts = train_sklearn(python, tmp_path / "train")
    worker = start(python, tmp_path, "import os, joblib\n\ndef model_fn(d):\n"
                   "    return joblib.load(os.path.join(d, 'model.joblib'))\n", model)
    workers.append(worker)
    worker.wait_ready(60)
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
    conn.request("POST", "/invocations", body=b"x", headers={"Content-Type": "image/png"})
    answer = conn.getresponse()
    assert answer.status == 415
    assert b"image/png" in answer.read()
    conn.request("POST", "/invocations", body=json.dumps(facts["rows"]),
                 headers={"Content-Type": "application/json", "Accept": "*/*"})
    answer = conn.getresponse()
    assert (answer.status, answer.getheader("Content-Type")) == (200, "application/json")
    assert json.loads(answer.read()) == facts["expected"]
    conn.close()
