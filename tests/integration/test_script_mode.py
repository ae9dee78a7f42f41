"""Script mode with boto3: the user's own training script, run as the framework containers'
training toolkit runs it, against a real server and real subprocess jobs."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.hostile_archives import link, tar_bytes
from tests.integration.script_jobs import (
    FIRST_BUILD_TIMEOUT,
    MXNET_IMAGE,
    PYTORCH_IMAGE,
    artifact,
    log_lines,
    script_request,
    upload_code,
)
from tests.integration.test_training_jobs import BUCKET, regression_csv, wait_for

TRAIN = """
    import argparse, glob, json, os
    import joblib
    import numpy as np
    from sklearn.linear_model import Ridge

    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--fit-intercept", type=str)
    parser.add_argument("--layers", type=str)
    parser.add_argument("--name", type=str)
    parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
    args = parser.parse_args()

    data = np.vstack([np.loadtxt(f, delimiter=",") for f in glob.glob(args.train + "/*.csv")])
    model = Ridge(alpha=args.alpha).fit(data[:, 1:], data[:, 0])
    mse = float(np.mean((model.predict(data[:, 1:]) - data[:, 0]) ** 2))
    print(f"epoch=1 train_mse={mse * 2:.6f}")
    print(f"epoch=2 train_mse={mse:.6f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
    seen = {"args": vars(args), "cwd": os.getcwd(),
            "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "TRAINING_"))}}
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
"""


@pytest.fixture
def train_data(s3):
    body, _, _ = regression_csv(300, seed=1)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=body)
    return f"s3://{BUCKET}/data/train"


def test_sklearn_script_trains_sees_the_contract_and_uploads_its_model(
        sm, s3, client, train_data):
    code = upload_code(s3, "sk-1", {"train.py": TRAIN})
    sm.create_training_job(**script_request(
        "sk-1", code, channels={"train": train_data},
        hyperparameters={"alpha": 0.5, "fit-intercept": True, "layers": [64, 32],
                         "name": "ridge"},
        AlgorithmSpecification={
            "TrainingImage": script_request("x", code)["AlgorithmSpecification"][
                "TrainingImage"], "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train:mse", "Regex": r"train_mse=([0-9.]+)"}]}))
    job = wait_for(sm, "sk-1", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    import joblib
    model = joblib.load(io.BytesIO(artifact(s3, "sk-1")["model.joblib"]))
    assert model.alpha == 0.5 and model.coef_.shape == (4,)

    seen = json.loads(artifact(s3, "sk-1", "output")["seen.json"])
    assert seen["args"]["alpha"] == 0.5 and seen["args"]["name"] == "ridge"
    assert seen["args"]["fit_intercept"] == "True"  # the toolkit's str(True)
    assert seen["args"]["layers"] == "[64, 32]"
    env = seen["env"]
    assert env["SM_HP_ALPHA"] == "0.5" and env["SM_HP_FIT-INTERCEPT"] == "true"
    assert "SM_HP_SAGEMAKER_PROGRAM" not in env
    assert env["SM_USER_ENTRY_POINT"] == "train.py" and env["SM_MODULE_NAME"] == "train"
    assert env["SM_MODULE_DIR"] == code
    assert env["SM_FRAMEWORK_MODULE"] == "sagemaker_sklearn_container.training:main"
    assert env["SM_HOSTS"] == '["algo-1"]' and env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_CHANNELS"] == '["train"]' and env["SM_NUM_GPUS"] == "0"
    assert env["TRAINING_JOB_NAME"] == "sk-1"
    assert json.loads(env["SM_USER_ARGS"]) == [
        "--alpha", "0.5", "--fit-intercept", "True", "--layers", "[64, 32]", "--name", "ridge"]
    assert json.loads(env["SM_TRAINING_ENV"])["hyperparameters"]["layers"] == [64, 32]
    assert seen["cwd"] == env["SM_MODULE_DIR"] or seen["cwd"].endswith("/code")

    assert [m["MetricName"] for m in job["FinalMetricDataList"]] == ["train:mse"]
    streams = log_lines(client, "sk-1")
    assert len(streams) == 1 and next(iter(streams)).startswith("sk-1/algo-1-")
    assert any("train_mse=" in line for line in next(iter(streams.values())))


def test_failing_script_reports_its_traceback_last_line(sm, s3):
    code = upload_code(s3, "sk-fail", {"train.py": """
        import sys
        print("starting")
        def load():
            raise ValueError("the label column holds text: 'abc'")
        load()
    """})
    sm.create_training_job(**script_request("sk-fail", code))
    job = wait_for(sm, "sk-fail", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith(
        "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "
        "\"ValueError: the label column holds text: 'abc'\"\nCommand \"")
    assert reason.endswith(' train.py"')


def test_failure_file_written_by_the_script_is_the_reason(sm, s3):
    code = upload_code(s3, "sk-failfile", {"train.py": """
        import os, sys
        with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
            f.write("ClientError: the train channel is empty")
        sys.exit(2)
    """})
    sm.create_training_job(**script_request("sk-failfile", code))
    job = wait_for(sm, "sk-failfile", FIRST_BUILD_TIMEOUT)
    assert job["FailureReason"] == "ClientError: the train channel is empty"


@pytest.mark.parametrize(("member", "named"), [
    (("../evil-{tag}.py", b"x"), "climbs out with '..'"),
    (("/tmp/opensage-evil-{tag}.py", b"x"), "has an absolute name"),
    ("symlink", "resolves outside the destination"),
])
def test_malicious_sourcedir_fails_the_job_naming_the_member(sm, s3, member, named):
    tag = uuid.uuid4().hex[:8]
    members = [("train.py", b"print('hi')\n")]
    if member == "symlink":
        members += [link("data", "../../../../../../tmp"),
                    (f"data/opensage-evil-{tag}.py", b"x")]
    else:
        members.append((member[0].format(tag=tag), member[1]))
    code = upload_code(s3, f"evil-{tag}", tar_bytes(members))
    sm.create_training_job(**script_request(f"evil-{tag}", code))
    job = wait_for(sm, f"evil-{tag}", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: Could not unpack the source directory")
    assert named in job["FailureReason"]
    assert not Path(f"/tmp/opensage-evil-{tag}.py").exists()


def test_unsupported_framework_and_missing_program_are_refused_at_create(sm, s3):
    code = upload_code(s3, "refused", {"train.py": "print(1)\n"})
    with pytest.raises(ClientError) as mxnet:
        sm.create_training_job(**script_request("mx-1", code, image=MXNET_IMAGE))
    assert mxnet.value.response["Error"]["Code"] == "ValidationException"
    assert "MXNet" in mxnet.value.response["Error"]["Message"] or "mxnet" in \
        mxnet.value.response["Error"]["Message"]
    request = script_request("noprog-1", code)
    del request["HyperParameters"]["sagemaker_program"]
    with pytest.raises(ClientError) as missing:
        sm.create_training_job(**request)
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert "missing: sagemaker_program" in missing.value.response["Error"]["Message"]
    for name in ("mx-1", "noprog-1"):
        with pytest.raises(ClientError):
            sm.describe_training_job(TrainingJobName=name)


def test_requirements_txt_adds_an_overlay_environment(sm, s3):
    code = upload_code(s3, "sk-req", {
        "requirements.txt": "tomli-w==1.0.0\n",
        "train.py": """
            import os, sys, tomli_w
            with open(os.path.join(os.environ["SM_MODEL_DIR"], "conf.toml"), "w") as f:
                f.write(tomli_w.dumps({"python": sys.prefix}))
        """})
    sm.create_training_job(**script_request("sk-req", code))
    job = wait_for(sm, "sk-req", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert artifact(s3, "sk-req")["conf.toml"].startswith(b'python = "')


def test_shell_entry_point_runs_with_the_environment_python_on_path(sm, s3):
    code = upload_code(s3, "sk-sh", {"run.sh": """
        set -e
        python -c "import sklearn, sys; print(sys.argv[1:])" "$@" > "$SM_MODEL_DIR/args.txt"
    """})
    sm.create_training_job(**script_request("sk-sh", code, program="run.sh",
                                            hyperparameters={"epochs": 3}))
    job = wait_for(sm, "sk-sh", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert artifact(s3, "sk-sh")["args.txt"] == b"['--epochs', '3']\n"


MULTI_HOST = """
    import json, os, sys, time
    host = os.environ["SM_CURRENT_HOST"]
    files = sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))
    every = sorted(os.listdir(os.environ["SM_CHANNEL_ALL"]))
    print(f"{host} has {files}")
    with open(os.path.join(os.environ["SM_MODEL_DIR"], f"{host}.json"), "w") as f:
        json.dump({"hosts": json.loads(os.environ["SM_HOSTS"]), "train": files,
                   "all": every}, f)
    if host == "algo-2" and os.environ.get("SM_HP_FAIL") == "true":
        sys.exit(3)
    if os.environ.get("SM_HP_FAIL") == "true":
        time.sleep(3600)  # stopped when algo-2 fails
"""


@pytest.fixture
def sharded(s3):
    for i in range(4):
        s3.put_object(Bucket=BUCKET, Key=f"shards/part-{i}.csv", Body=b"1,2\n")
    channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/shards/",
        "S3DataDistributionType": "ShardedByS3Key"}}}
    replicated = {"ChannelName": "all", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/shards/",
        "S3DataDistributionType": "FullyReplicated"}}}
    return [channel, replicated]


def test_two_hosts_each_get_their_shard_and_stream(sm, s3, client, sharded):
    code = upload_code(s3, "multi-1", {"train.py": MULTI_HOST})
    sm.create_training_job(**script_request(
        "multi-1", code, InputDataConfig=sharded,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2,
                        "VolumeSizeInGB": 5}))
    job = wait_for(sm, "multi-1", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = artifact(s3, "multi-1")
    assert set(files) == {"algo-1.json"}  # algo-1's model directory is the job's model
    first = json.loads(files["algo-1.json"])
    assert first["hosts"] == ["algo-1", "algo-2"]
    assert first["train"] == ["part-0.csv", "part-2.csv"] and len(first["all"]) == 4
    streams = log_lines(client, "multi-1")
    by_host = {name.split("/")[1].rsplit("-", 1)[0]: lines for name, lines in streams.items()}
    assert sorted(by_host) == ["algo-1", "algo-2"]
    assert any("algo-2 has ['part-1.csv', 'part-3.csv']" in line for line in by_host["algo-2"])


def test_one_failing_host_fails_the_job_and_stops_the_others(sm, s3, sharded):
    code = upload_code(s3, "multi-fail", {"train.py": MULTI_HOST})
    sm.create_training_job(**script_request(
        "multi-fail", code, InputDataConfig=sharded, hyperparameters={"fail": True},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2,
                        "VolumeSizeInGB": 5}))
    job = wait_for(sm, "multi-fail", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Failed"
    assert "ExitCode 3" in job["FailureReason"]


def test_stop_a_running_script_job(sm, s3, client):
    code = upload_code(s3, "sk-stop", {"train.py": """
        import os, time
        print("ready", flush=True)
        open(os.path.join(os.environ["SM_MODEL_DIR"], "partial.txt"), "w").write("x")
        time.sleep(3600)
    """})
    sm.create_training_job(**script_request("sk-stop", code))
    deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
    while not any("ready" in line for lines in log_lines(client, "sk-stop").values()
                  for line in lines):
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.1)
    sm.stop_training_job(TrainingJobName="sk-stop")
    job = wait_for(sm, "sk-stop", 120)
    assert job["TrainingJobStatus"] == "Stopped"
    assert "partial.txt" in artifact(s3, "sk-stop")


CONNECT = """
    import os, socket
    port = int(os.environ["SM_HP_PORT"])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        result = "connected"
    except OSError as err:
        result = f"unreachable: {err}"
    print(result)
    open(os.path.join(os.environ["SM_MODEL_DIR"], "result.txt"), "w").write(result)
"""


def test_network_isolation_keeps_the_script_from_the_server(sm, s3, endpoint):
    port = int(endpoint.rsplit(":", 1)[1])
    code = upload_code(s3, "net", {"train.py": CONNECT})
    for name, isolated in (("net-open", False), ("net-isolated", True)):
        sm.create_training_job(**script_request(name, code, hyperparameters={"port": port},
                                                EnableNetworkIsolation=isolated))
    results = {}
    for name in ("net-open", "net-isolated"):
        job = wait_for(sm, name, FIRST_BUILD_TIMEOUT)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        results[name] = artifact(s3, name)["result.txt"].decode()
    assert results["net-open"] == "connected"
    assert results["net-isolated"].startswith("unreachable: ")


LOOK_AROUND = """
    import argparse, ctypes, glob, json, os, time

    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    parser.add_argument("--other")
    parser.add_argument("--wait-for", default="")
    args = parser.parse_args()

    def attempt(action):
        try:
            return ["ok", action()]
        except OSError as err:
            return ["refused", type(err).__name__]

    def read(path):
        with open(path, "rb") as f:
            return len(f.read())

    def look():
        return {
            "data_dir": attempt(lambda: sorted(os.listdir(args.data_dir))),
            "jobs": attempt(lambda: sorted(os.listdir(os.path.join(args.data_dir, "jobs",
                                                                   "training")))),
            "other": attempt(lambda: sorted(os.listdir(args.other))),
            "secret": attempt(lambda: read(os.path.join(args.data_dir, "secret.key"))),
            "database": attempt(lambda: read(os.path.join(args.data_dir, "opensage.db")))}

    print("ready", flush=True)
    if args.wait_for:  # the open job: alive until the isolated one has looked (or ended)
        deadline, appeared, seen = time.monotonic() + 600, False, None
        while time.monotonic() < deadline:
            if os.path.isdir(args.other) and seen is None:
                appeared, seen = True, look()
            if os.path.exists(args.wait_for) or (appeared and not os.path.isdir(args.other)):
                break
            time.sleep(0.05)
    else:  # the isolated job: and once more after trying to unmount what hides the rest
        unmounted = ctypes.CDLL(None).umount2(args.data_dir.encode(), 2) == 0  # MNT_DETACH
        seen = {**look(), "unmounted": unmounted, "secret_after": look()["secret"]}
    rows = [line for f in glob.glob(os.environ["SM_CHANNEL_TRAIN"] + "/*.csv")
            for line in open(f)]
    seen = {**(seen or {}), "input_rows": len(rows)}
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
"""


def test_isolated_script_sees_neither_the_server_files_nor_other_jobs(
        sm, s3, client, server, train_data):
    data_dir = server.settings.data_dir
    jobs = data_dir / "jobs" / "training"
    assert (data_dir / "secret.key").is_file() and (data_dir / "opensage.db").is_file()
    code = upload_code(s3, "fs", {"train.py": LOOK_AROUND})
    # the open job first: it looks while the isolated one runs, and lives until it has looked
    sm.create_training_job(**script_request(
        "fs-open", code, channels={"train": train_data}, hyperparameters={
            "data-dir": str(data_dir), "other": str(jobs / "fs-isolated"),
            "wait-for": str(jobs / "fs-isolated" / "model" / "seen.json")}))
    deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
    while not any("ready" in line for lines in log_lines(client, "fs-open").values()
                  for line in lines):
        assert time.monotonic() < deadline, "the open job never started"
        time.sleep(0.1)
    sm.create_training_job(**script_request(
        "fs-isolated", code, channels={"train": train_data},
        hyperparameters={"data-dir": str(data_dir), "other": str(jobs / "fs-open")},
        EnableNetworkIsolation=True))
    seen = {}
    for name in ("fs-isolated", "fs-open"):
        job = wait_for(sm, name, FIRST_BUILD_TIMEOUT)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        seen[name] = json.loads(artifact(s3, name)["seen.json"])
        assert json.loads(artifact(s3, name, "output")["seen.json"]) == seen[name]

    isolated, open_ = seen["fs-isolated"], seen["fs-open"]
    assert isolated["input_rows"] == open_["input_rows"] == 300  # its input, read
    # of the data directory, only the way to its own directory
    assert isolated["data_dir"] == ["ok", ["jobs"]]
    assert isolated["jobs"] == ["ok", ["fs-isolated"]]
    assert isolated["other"] == ["refused", "FileNotFoundError"]
    assert isolated["secret"] == ["refused", "FileNotFoundError"]
    assert isolated["database"] == ["refused", "FileNotFoundError"]
    assert isolated["unmounted"] is False  # no CAP_SYS_ADMIN left
    assert isolated["secret_after"] == ["refused", "FileNotFoundError"]
    # a job without isolation sees what it always saw
    assert {"jobs", "opensage.db", "secret.key"} <= set(open_["data_dir"][1])
    assert open_["jobs"] == ["ok", ["fs-isolated", "fs-open"]]
    assert open_["other"][0] == "ok" and "model" in open_["other"][1]
    assert open_["secret"] == ["ok", (data_dir / "secret.key").stat().st_size]
    assert open_["database"][0] == "ok" and open_["database"][1] > 0


DDP = """
    import json, os
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same initial weights on every rank
    model = DistributedDataParallel(torch.nn.Linear(1, 1, bias=False))
    start = model.module.weight.detach().clone()
    x = torch.full((4, 1), float(rank + 1))  # each rank its own data: different gradients
    loss = (model(x) ** 2).mean()
    loss.backward()  # DDP all-reduces (averages) the gradients across the ranks here
    local = (2 * start * (rank + 1) ** 2).item()  # d/dw mean((w x)^2) = 2 w x^2 on this rank
    gathered = [torch.zeros(1) for _ in range(world)]
    dist.all_gather(gathered, model.module.weight.grad.reshape(1))
    print(f"rank {rank} of {world} on {os.environ['SM_CURRENT_HOST']}: local gradient "
          f"{local:.6f}, synchronised {model.module.weight.grad.item():.6f}", flush=True)
    if rank == 0:
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "ddp.json"), "w") as f:
            json.dump({"world": world, "start": start.item(),
                       "grads": [g.item() for g in gathered]}, f)
    dist.barrier()  # neither rank tears its gloo pair down while the other still uses it
    dist.destroy_process_group()
"""


def test_pytorch_ddp_on_two_hosts_exchanges_gradients(sm, s3, client):
    code = upload_code(s3, "ddp-1", {"train.py": DDP})
    sm.create_training_job(**script_request(
        "ddp-1", code, image=PYTORCH_IMAGE,
        hyperparameters={"sagemaker_torch_distributed_enabled": True,
                         "sagemaker_instance_type": "ml.m5.large"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2,
                        "VolumeSizeInGB": 5}))
    job = wait_for(sm, "ddp-1", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    result = json.loads(artifact(s3, "ddp-1", "output")["ddp.json"])
    assert result["world"] == 2
    w = result["start"]
    averaged = (2 * w * 1 + 2 * w * 4) / 2  # the mean of both ranks' local gradients
    assert result["grads"] == pytest.approx([averaged, averaged], rel=1e-5)
    assert abs(2 * w) > 1e-3 and averaged != pytest.approx(2 * w)  # not rank 0's alone
    streams = log_lines(client, "ddp-1")
    assert len(streams) == 2
    assert any("rank 1 of 2 on algo-2" in line for lines in streams.values() for line in lines)


BOTO3_SCRIPT = """
    import argparse, os
    import boto3

    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket")
    args = parser.parse_args()
    s3 = boto3.client("s3")  # no endpoint, region or credentials given: the platform's
    text = s3.get_object(Bucket=args.bucket, Key="extra/in.txt")["Body"].read().decode()
    s3.put_object(Bucket=args.bucket, Key="extra/out.txt",
                  Body=f"{text.upper()} via {os.environ['AWS_ENDPOINT_URL']}".encode())
"""


def _pinned(*names: str) -> str:
    """``requirements.txt`` pinning ``names`` to this test environment's versions: uv's
    cache already holds them, so the overlay builds without downloading."""
    from importlib.metadata import version

    return "".join(f"{name}=={version(name)}\n" for name in names)


def test_a_script_calls_s3_with_boto3_and_reaches_this_server(sm, s3, endpoint):
    s3.put_object(Bucket=BUCKET, Key="extra/in.txt", Body=b"hello")
    code = upload_code(s3, "sk-boto3", {
        "requirements.txt": _pinned("boto3", "botocore", "s3transfer", "jmespath",
                                    "python-dateutil", "urllib3", "six"),
        "train.py": BOTO3_SCRIPT})
    sm.create_training_job(**script_request("sk-boto3", code,
                                            hyperparameters={"bucket": BUCKET}))
    job = wait_for(sm, "sk-boto3", FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    written = s3.get_object(Bucket=BUCKET, Key="extra/out.txt")["Body"].read().decode()
    assert written == f"HELLO via {endpoint}"


GATED_BACKEND = '''
    """A PEP 517 build backend whose wheel is built only once a gate file exists: an
    environment build that lasts exactly as long as the test wants."""
    import base64, hashlib, os, time, zipfile

    GATE = {gate!r}
    NAME, VERSION = "gatedpkg", "0.1"
    INFO = f"{{NAME}}-{{VERSION}}.dist-info"


    def get_requires_for_build_wheel(config_settings=None):
        return []


    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        give_up = time.monotonic() + 900  # a stray build never outlives the test run
        while not os.path.exists(GATE) and time.monotonic() < give_up:
            time.sleep(0.05)
        name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
        files = {{f"{{NAME}}.py": b"",
                  f"{{INFO}}/METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\n"
                                      f"Version: {{VERSION}}\\n".encode(),
                  f"{{INFO}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\n"
                                   b"Root-Is-Purelib: true\\nTag: py3-none-any\\n"}}
        record = []
        with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
            for path, data in files.items():
                whl.writestr(path, data)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
                record.append(f"{{path}},sha256={{digest.rstrip(b'=').decode()}},{{len(data)}}")
            whl.writestr(f"{{INFO}}/RECORD", "\\n".join([*record, f"{{INFO}}/RECORD,,"]) + "\\n")
        return name
'''
GATED_PYPROJECT = """
    [build-system]
    requires = []
    build-backend = "gated_backend"
    backend-path = ["."]

    [project]
    name = "gatedpkg"
    version = "0.1"
"""


def _gated_code(s3, name: str, gate: Path) -> str:
    """Code whose ``requirements.txt`` (new each time: a fresh overlay) installs a local
    package that cannot finish building until ``gate`` exists."""
    return upload_code(s3, name, {
        "requirements.txt": f"# {uuid.uuid4()}\n./gatedpkg\n",
        "gatedpkg/pyproject.toml": GATED_PYPROJECT,
        "gatedpkg/gated_backend.py": GATED_BACKEND.format(gate=str(gate)),
        "train.py": "print('the script ran')\n"})


def test_stop_and_max_runtime_end_a_job_while_its_environment_builds(
        sm, s3, client, tmp_path: Path):
    gate = tmp_path / "gate"  # never created while the jobs run: their builds cannot end
    try:
        sm.create_training_job(**script_request("build-stop", _gated_code(s3, "build-stop",
                                                                          gate)))
        deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
        while not any("Building environment sklearn-1.2-1 + requirements.txt" in line
                      for lines in log_lines(client, "build-stop").values() for line in lines):
            assert time.monotonic() < deadline, "the overlay build never started"
            time.sleep(0.1)
        sm.stop_training_job(TrainingJobName="build-stop")
        stopped = wait_for(sm, "build-stop", 120)

        sm.create_training_job(**script_request(
            "build-late", _gated_code(s3, "build-late", gate),
            StoppingCondition={"MaxRuntimeInSeconds": 1}))
        late = wait_for(sm, "build-late", FIRST_BUILD_TIMEOUT)
        assert not gate.exists()  # both ended with their builds still blocked
    finally:
        gate.touch()  # let any build that is still alive finish
    assert stopped["TrainingJobStatus"] == "Stopped"
    assert late["TrainingJobStatus"] == "Stopped"
    assert late["SecondaryStatus"] == "MaxRuntimeExceeded"
    for job in (stopped, late):  # neither script ever started
        assert "Training" not in [t["Status"] for t in job["SecondaryStatusTransitions"]]
    lines = [line for lines in log_lines(client, "build-stop").values() for line in lines]
    assert "Stopped while the sklearn-1.2-1 environment was being built: the build was " \
           "cancelled" in lines
    assert not any("the script ran" in line for line in lines)
