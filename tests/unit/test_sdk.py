"""opensage.sdk: the SDK config file, fast_polling and the ``opensage sdk-config`` command."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from opensage.cli.main import app
from opensage.sdk import fast_polling, sdk_config, write_sdk_config

ACCOUNT, REGION = "210987654321", "eu-west-1"


def test_config_document_matches_the_sdk_schema() -> None:
    from sagemaker.config import validate_sagemaker_config

    doc = sdk_config(ACCOUNT, REGION)
    validate_sagemaker_config(doc)  # raises on any key the SDK does not know
    modules = doc["SageMaker"]["PythonSDK"]["Modules"]
    assert modules["Session"]["DefaultS3Bucket"] == f"sagemaker-{REGION}-{ACCOUNT}"
    assert modules["TelemetryOptOut"] is True
    role = f"arn:aws:iam::{ACCOUNT}:role/opensage"
    assert doc["SageMaker"]["TrainingJob"]["RoleArn"] == role
    assert doc["SageMaker"]["Model"]["ExecutionRoleArn"] == role


def test_write_sdk_config_merges_and_is_what_the_sdk_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagemaker.config import load_sagemaker_config

    target = tmp_path / "cfg" / "config.yaml"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump({"SchemaVersion": "1.0", "SageMaker": {
        "PythonSDK": {"Modules": {"Session": {"DefaultS3ObjectKeyPrefix": "team-a"}}}}}))
    written = write_sdk_config("http://127.0.0.1:9999", ACCOUNT, REGION, path=target.parent)
    assert written == target
    assert "http://127.0.0.1:9999" in written.read_text()
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(written))
    loaded = load_sagemaker_config()
    session = loaded["SageMaker"]["PythonSDK"]["Modules"]["Session"]
    assert session == {"DefaultS3ObjectKeyPrefix": "team-a",  # the user's key survives
                       "DefaultS3Bucket": f"sagemaker-{REGION}-{ACCOUNT}"}


def test_default_path_follows_the_sdk_override(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(tmp_path / "mine.yaml"))
    assert write_sdk_config("http://x", ACCOUNT, REGION) == tmp_path / "mine.yaml"


def test_cli_writes_the_file_and_prints_exports(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGEMAKER_USER_CONFIG_OVERRIDE", raising=False)
    monkeypatch.setenv("OPENSAGE_ACCOUNT_ID", ACCOUNT)
    target = tmp_path / "config.yaml"
    result = CliRunner().invoke(app, ["sdk-config", "--path", str(target), "--region", REGION,
                                      "--endpoint-url", "http://127.0.0.1:8585"])
    assert result.exit_code == 0, result.output
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:8585" in result.stdout
    assert f"AWS_DEFAULT_REGION={REGION}" in result.stdout
    assert f"export SAGEMAKER_USER_CONFIG_OVERRIDE={target}" in result.stdout
    doc = yaml.safe_load(target.read_text())
    assert doc["SageMaker"]["PythonSDK"]["Modules"]["Session"]["DefaultS3Bucket"] == (
        f"sagemaker-{REGION}-{ACCOUNT}")


@pytest.fixture
def fake_sdk_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("fake_sdk_waiters")
    module.time = time  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_fast_polling_runs_virtual_time_faster_and_restores(
        fake_sdk_module: types.ModuleType) -> None:
    with fast_polling(factor=50, modules=[fake_sdk_module.__name__]) as fast:
        clock = fake_sdk_module.time
        assert clock is not time
        wall0, mono0, real0 = clock.time(), clock.monotonic(), time.monotonic()
        clock.sleep(2.0)  # 40 ms of real time
        real = time.monotonic() - real0
        assert real < 1.0
        assert clock.monotonic() - mono0 == pytest.approx(real * 50, rel=0.2)
        assert clock.time() - wall0 >= 2.0
        assert clock.strftime("%Y") == time.strftime("%Y")  # the rest stays real
        assert fast.factor == 50
    assert fake_sdk_module.time is time


def test_fast_polling_switch_nesting_and_errors(fake_sdk_module: types.ModuleType) -> None:
    name = fake_sdk_module.__name__
    outer = fast_polling(factor=10, modules=[name]).enable()
    with fast_polling(factor=100, modules=[name]):
        pass
    assert fake_sdk_module.time is not time  # the outer one is still on
    outer.disable()
    assert fake_sdk_module.time is time
    with pytest.raises(ValueError), fast_polling(factor=0):
        pass
    with pytest.raises(RuntimeError), fast_polling(modules=[name]):
        raise RuntimeError("restored even on errors")
    assert fake_sdk_module.time is time


def test_fast_polling_shortens_the_sdk_waiter() -> None:
    import sagemaker.session

    calls: list[float] = []

    def done_on_third_call() -> str | None:
        calls.append(time.monotonic())
        return "done" if len(calls) == 3 else None

    started = time.monotonic()
    with fast_polling(factor=100):
        assert sagemaker.session._wait_until(done_on_third_call, poll=5) == "done"
    assert time.monotonic() - started < 2.0  # 15 s of SDK polling
    assert sagemaker.session.time is time
