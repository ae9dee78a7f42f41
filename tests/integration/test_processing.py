"""Processing jobs through boto3 against a real server: scripts run in the scikit-learn
framework environment, each host with its own /opt/ml (a private mount namespace), inputs
staged from S3 at their LocalPath, outputs uploaded from theirs."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import REGION
from tests.integration.conftest import ROLE
from tests.integration.script_jobs import FIRST_BUILD_TIMEOUT, SKLEARN_IMAGE
from tests.integration.test_training_jobs import BUCKET

GROUP = "/aws/sagemaker/ProcessingJobs"
CODE = "/opt/ml/processing/input/code"

# Reads every CSV of its input, writes train/test splits, records what it saw.
SPLIT = """
    import argparse, glob, json, os
    import numpy as np
    parser = argparse.ArgumentParser()
    parser.add_argument("--test-ratio", type=float, default=0.25)
    args = parser.parse_args()
    rows = np.vstack([np.loadtxt(f, delimiter=",") for f in
                      sorted(glob.glob("/opt/ml/processing/input/data/*.csv"))])
    cut = int(len(rows) * (1 - args.test_ratio))
    for name, part in (("train", rows[:cut]), ("test", rows[cut:])):
        os.makedirs(f"/opt/ml/processing/{name}", exist_ok=True)
        np.savetxt(f"/opt/ml/processing/{name}/{name}.csv", part, delimiter=",", fmt="%g")
    with open("/opt/ml/config/processingjobconfig.json") as f:
        config = json.load(f)
    with open("/opt/ml/config/resourceconfig.json") as f:
        resource = json.load(f)
    seen = {"arn": config["ProcessingJobArn"], "resource": resource,
            "env": os.environ.get("MY_SETTING"), "rows": len(rows),
            "aws": {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
                                                   "AWS_ACCESS_KEY_ID", "AWS_REGION")}}
    with open("/opt/ml/processing/train/seen.json", "w") as f:
        json.dump(seen, f)
    with open("/opt/ml/output/message", "w") as f:
        f.write(f"split {len(rows)} rows")
    print(f"split {len(rows)} rows into {cut} and {len(rows) - cut}", flush=True)
"""


def put_code(s3: Any, name: str, text: str, file: str = "script.py") -> str:
    key = f"{name}/input/code/{file}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=textwrap.dedent(text).encode())
    return f"s3://{BUCKET}/{key}"


def request(name: str, code_uri: str, *, file: str = "script.py",
            inputs: list[dict[str, Any]] | None = None, outputs: list[str] | None = None,
            arguments: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """CreateProcessingJob as SKLearnProcessor.run sends it."""
    def s3_input(input_name: str, uri: str, local: str, **extra: Any) -> dict[str, Any]:
        return {"InputName": input_name, "AppManaged": False, "S3Input": {
            "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None",
            **extra}}

    body: dict[str, Any] = {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large",
                                                  "InstanceCount": 1, "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE,
                             "ContainerEntrypoint": ["python3", f"{CODE}/{file}"]},
        "RoleArn": ROLE,
        "ProcessingInputs": [*(inputs or []), s3_input("code", code_uri, CODE)],
    }
    if arguments:
        body["AppSpecification"]["ContainerArguments"] = arguments
    if outputs:
        body["ProcessingOutputConfig"] = {"Outputs": [
            {"OutputName": out, "AppManaged": False, "S3Output": {
                "S3Uri": f"s3://{BUCKET}/{name}/output/{out}",
                "LocalPath": f"/opt/ml/processing/{out}", "S3UploadMode": "EndOfJob"}}
            for out in outputs]}
    body.update(overrides)
    return body


def data_input(uri: str, local: str = "/opt/ml/processing/input/data",
               **extra: Any) -> dict[str, Any]:
    return {"InputName": "input-1", "AppManaged": False, "S3Input": {
        "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None", **extra}}


def wait_for(sm: Any, name: str, timeout: float = FIRST_BUILD_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_processing_job(ProcessingJobName=name)
        if job["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish: {job['ProcessingJobStatus']}")


def log_lines(client: Any, name: str) -> dict[str, list[str]]:
    logs = client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/",
                                            orderBy="LogStreamName")["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return {}
    return {s["logStreamName"]: [e["message"] for e in logs.get_log_events(
        logGroupName=GROUP, logStreamName=s["logStreamName"], startFromHead=True)["events"]]
        for s in streams}


def wait_for_line(client: Any, name: str, text: str, timeout: float = FIRST_BUILD_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for lines in log_lines(client, name).values() for line in lines):
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never logged {text!r}")


def read(s3: Any, key: str) -> str:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def put_rows(s3: Any, prefix: str, parts: int, rows: int = 10) -> None:
    for part in range(parts):
        body = "\n".join(f"{part * rows + i},{i * 0.5}" for i in range(rows)) + "\n"
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/part-{part}.csv", Body=body.encode())


def test_script_splits_its_csv_input_and_the_outputs_land_in_s3(sm, s3, client, endpoint):
    put_rows(s3, "raw", 2)
    code = put_code(s3, "split-1", SPLIT)
    arn = sm.create_processing_job(**request(
        "split-1", code, inputs=[data_input(f"s3://{BUCKET}/raw")],
        outputs=["train", "test"], arguments=["--test-ratio", "0.5"],
        Environment={"MY_SETTING": "on", "AWS_REGION": "eu-west-1"}, Tags=[{"Key": "team", "Value": "data"}]))[
        "ProcessingJobArn"]
    assert arn.endswith(":processing-job/split-1")
    job = wait_for(sm, "split-1")
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ExitMessage"] == "split 20 rows"
    assert job["ProcessingStartTime"] <= job["ProcessingEndTime"]
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert job["ProcessingInputs"][0]["S3Input"]["S3CompressionType"] == "None"
    assert job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3UploadMode"] == "EndOfJob"
    assert job["Environment"] == {"MY_SETTING": "on", "AWS_REGION": "eu-west-1"}
    assert "FailureReason" not in job

    train = read(s3, "split-1/output/train/train.csv").splitlines()
    test = read(s3, "split-1/output/test/test.csv").splitlines()
    assert len(train) == 10 and len(test) == 10
    assert [line.split(",")[0] for line in train + test] == [str(i) for i in range(20)]
    seen = json.loads(read(s3, "split-1/output/train/seen.json"))
    assert seen["arn"] == arn and seen["env"] == "on"
    # boto3 in the script reaches this server; the job's Environment wins
    assert seen["aws"] == {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION,
                           "AWS_ACCESS_KEY_ID": "opensage", "AWS_REGION": "eu-west-1"}
    assert seen["resource"]["current_host"] == "algo-1"
    assert seen["resource"]["hosts"] == ["algo-1"]

    streams = log_lines(client, "split-1")
    (stream, lines), = streams.items()
    assert stream.startswith("split-1/algo-1-")
    assert "split 20 rows into 10 and 10" in lines


def test_failing_script_fails_the_job_with_its_error(sm, s3):
    code = put_code(s3, "fail-1", """
        import sys
        print("reading")
        raise ValueError("column 'price' holds text")
    """)
    sm.create_processing_job(**request("fail-1", code))
    job = wait_for(sm, "fail-1")
    assert job["ProcessingJobStatus"] == "Failed"
    assert "ExitCode 1" in job["FailureReason"]
    assert "ValueError: column 'price' holds text" in job["FailureReason"]


def test_missing_input_fails_the_job_naming_it(sm, s3):
    code = put_code(s3, "noinput", "print('never')\n")
    sm.create_processing_job(**request("noinput", code,
                                       inputs=[data_input(f"s3://{BUCKET}/nothing-here")]))
    job = wait_for(sm, "noinput")
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: Input input-1: No S3 objects found")


def test_stop_ends_a_running_job_stopped(sm, s3, client):
    code = put_code(s3, "stop-1", """
        import time
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """)
    sm.create_processing_job(**request("stop-1", code))
    wait_for_line(client, "stop-1", "ready")
    sm.stop_processing_job(ProcessingJobName="stop-1")
    assert sm.describe_processing_job(ProcessingJobName="stop-1")[
        "ProcessingJobStatus"] in ("Stopping", "Stopped")
    job = wait_for(sm, "stop-1")
    assert job["ProcessingJobStatus"] == "Stopped" and "FailureReason" not in job
    with pytest.raises(ClientError) as err:
        sm.stop_processing_job(ProcessingJobName="stop-1")
    assert "Stopped" in err.value.response["Error"]["Message"]


def test_max_runtime_stops_and_fails_the_job(sm, s3):
    code = put_code(s3, "slow-1", """
        import time
        while True:
            time.sleep(1)
    """)
    sm.create_processing_job(**request("slow-1", code,
                                       StoppingCondition={"MaxRuntimeInSeconds": 1}))
    job = wait_for(sm, "slow-1")
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("MaxRuntimeExceeded")


def test_concurrent_jobs_with_the_same_local_path_do_not_collide(sm, s3, tmp_path: Path):
    """Both jobs run at once (each waits until the other has started) and write to the same
    /opt/ml/processing/out: each sees only its own file."""
    code = put_code(s3, "twin", """
        import os, pathlib, time
        rendezvous, me = pathlib.Path(os.environ["RENDEZVOUS"]), os.environ["ME"]
        (rendezvous / me).touch()
        deadline = time.monotonic() + 600
        while len(list(rendezvous.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        out = pathlib.Path("/opt/ml/processing/out")
        (out / f"{me}.txt").write_text(me)
        (out / "listing.txt").write_text(",".join(sorted(p.name for p in out.iterdir())))
    """)
    for name in ("twin-a", "twin-b"):
        sm.create_processing_job(**request(name, code, outputs=["out"], Environment={
            "RENDEZVOUS": str(tmp_path), "ME": name}))
    for name in ("twin-a", "twin-b"):
        job = wait_for(sm, name)
        assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
        assert read(s3, f"{name}/output/out/listing.txt") == f"{name}.txt"
        assert read(s3, f"{name}/output/out/{name}.txt") == name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twin-a", "twin-b"]


def test_two_hosts_share_a_sharded_input(sm, s3, client):
    put_rows(s3, "shards", 4, rows=1)
    code = put_code(s3, "multi", """
        import json, os
        host = json.load(open("/opt/ml/config/resourceconfig.json"))["current_host"]
        files = sorted(os.listdir("/opt/ml/processing/input/data"))
        with open(f"/opt/ml/processing/out/{host}.json", "w") as f:
            json.dump(files, f)
        print(host, files, flush=True)
    """)
    sm.create_processing_job(**request(
        "multi", code, outputs=["out"],
        inputs=[data_input(f"s3://{BUCKET}/shards/", S3DataDistributionType="ShardedByS3Key")],
        ProcessingResources={"ClusterConfig": {"InstanceType": "ml.m5.large",
                                               "InstanceCount": 2, "VolumeSizeInGB": 30}}))
    job = wait_for(sm, "multi")
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    first = json.loads(read(s3, "multi/output/out/algo-1.json"))
    second = json.loads(read(s3, "multi/output/out/algo-2.json"))
    assert first == ["part-0.csv", "part-2.csv"] and second == ["part-1.csv", "part-3.csv"]
    assert sorted(s.split("/")[1].rsplit("-", 1)[0] for s in log_lines(client, "multi")) == [
        "algo-1", "algo-2"]


def test_list_filters_sorts_pages_and_tags(sm, s3):
    code = put_code(s3, "listed", "print('hi')\n")
    for name in ("list-a", "list-b", "other-c"):
        sm.create_processing_job(**request(name, code, Tags=[{"Key": "k", "Value": name}]))
    for name in ("list-a", "list-b", "other-c"):
        assert wait_for(sm, name)["ProcessingJobStatus"] == "Completed"
    listed = sm.list_processing_jobs(NameContains="list", SortBy="Name", SortOrder="Ascending")
    assert [j["ProcessingJobName"] for j in listed["ProcessingJobSummaries"]] == [
        "list-a", "list-b"]
    first = sm.list_processing_jobs(MaxResults=2, SortBy="CreationTime", SortOrder="Ascending")
    second = sm.list_processing_jobs(MaxResults=2, SortBy="CreationTime",
                                     SortOrder="Ascending", NextToken=first["NextToken"])
    assert [j["ProcessingJobName"] for j in first["ProcessingJobSummaries"]
            + second["ProcessingJobSummaries"]] == ["list-a", "list-b", "other-c"]
    assert "NextToken" not in second
    assert sm.list_processing_jobs(StatusEquals="Failed")["ProcessingJobSummaries"] == []

    arn = sm.describe_processing_job(ProcessingJobName="list-a")["ProcessingJobArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "extra", "Value": "1"}])
    assert {t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]} == {"k", "extra"}
    sm.delete_tags(ResourceArn=arn, TagKeys=["extra"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "list-a"}]

    # AWS's Search has no ProcessingJob resource (not in the service model's enum): refused
    with pytest.raises(ClientError) as err:
        sm.search(Resource="ProcessingJob")
    assert "Member must satisfy enum value set" in err.value.response["Error"]["Message"]


@pytest.mark.parametrize("change, message", [
    (lambda r: r["AppSpecification"].update(
        ImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest"),
     "no container engine is reachable"),
    (lambda r: r["AppSpecification"].update(
        ImageUri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.1-cpu"),
     "sklearn"),
    (lambda r: r["AppSpecification"].update(  # what PySparkProcessor sends
        ImageUri="173754725891.dkr.ecr.us-east-1.amazonaws.com/"
                 "sagemaker-spark-processing:3.3-cpu-py39-v1.0"),
     "Spark (PySparkProcessor, SparkJarProcessor) is not supported"),
    (lambda r: r["ProcessingInputs"][0]["S3Input"].update(LocalPath="/tmp/code"),
     "must begin with /opt/ml/processing/"),
    (lambda r: r["ProcessingInputs"][0]["S3Input"].update(S3InputMode="FastFile"),
     "Member must satisfy enum value set"),
    (lambda r: r["ProcessingInputs"][0]["S3Input"].update(S3CompressionType="Gzip"),
     "Gzip can only be used when S3InputMode is Pipe"),
    (lambda r: r["ProcessingInputs"][0]["S3Input"].update(S3InputMode="Pipe"),
     "Pipe is not supported"),
    (lambda r: r["ProcessingInputs"].append(r["ProcessingInputs"][0]), "more than once"),
    (lambda r: r["AppSpecification"].pop("ContainerEntrypoint"), "ContainerEntrypoint"),
])
def test_invalid_requests_are_refused_and_store_nothing(sm, s3, change, message):
    body = request("bad-1", f"s3://{BUCKET}/x/script.py")
    change(body)
    with pytest.raises(ClientError) as err:
        sm.create_processing_job(**body)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        sm.describe_processing_job(ProcessingJobName="bad-1")
    assert "Could not find requested job with name bad-1" in missing.value.response["Error"][
        "Message"]
    assert sm.list_processing_jobs()["ProcessingJobSummaries"] == []


def test_duplicate_name_is_refused(sm, s3):
    code = put_code(s3, "dup", "print('hi')\n")
    sm.create_processing_job(**request("dup", code))
    with pytest.raises(ClientError) as err:
        sm.create_processing_job(**request("dup", code))
    assert "already existing processing job" in err.value.response["Error"]["Message"]
    assert wait_for(sm, "dup")["ProcessingJobStatus"] == "Completed"


def test_a_restarted_server_runs_its_jobs_left_in_progress_again(tmp_path: Path):
    """The first server dies mid-job (its rows stay InProgress, its job is killed); the next
    one on the same data directory runs the job again from the start, and ends the job that
    was Stopping as Stopped."""
    import io

    from opensage.services.wiring import build_services
    from opensage.settings import Settings
    from opensage.testing import frameworks_dir_for_tests, wheelhouse_for_tests

    marker = tmp_path / "first-run"
    settings = Settings(data_dir=tmp_path / "data", port=0,
                        frameworks_dir=frameworks_dir_for_tests(),
                        wheelhouse=wheelhouse_for_tests())
    code = textwrap.dedent(f"""
        import pathlib, time
        marker = pathlib.Path({str(marker)!r})
        if not marker.exists():
            marker.touch()
            while True:  # the first run never ends: the server dies under it
                time.sleep(1)
        open("/opt/ml/processing/out/second.txt", "w").write("ran again")
    """)
    first = build_services(settings)
    first.start()
    try:
        first.context.objects.create_bucket(BUCKET)
        first.context.objects.put_object(BUCKET, "again/input/code/script.py",
                                         io.BytesIO(code.encode()))
        first.processing.create(request("again", f"s3://{BUCKET}/again/input/code/script.py",
                                        outputs=["out"]))
        first.context.objects.put_object(BUCKET, "halted/input/code/script.py", io.BytesIO(
            b"import time\nwhile True:\n    time.sleep(1)\n"))
        first.processing.create(request("halted",
                                        f"s3://{BUCKET}/halted/input/code/script.py"))
        deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
        while not marker.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.processing.stop("halted")
    finally:
        first.close()
    second = build_services(settings)
    try:
        ctx = second.context
        assert ctx.resources.get("processing-job", "again").status == "InProgress"
        second.start()
        deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
        while ctx.resources.get("processing-job", "again").status == "InProgress":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        job = second.processing.describe("again")
        assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
        assert ctx.objects.read_object(BUCKET, "again/output/out/second.txt") == b"ran again"
        # Stopped by the first server as it stopped, or by the second as it started
        assert second.processing.describe("halted")["ProcessingJobStatus"] == "Stopped"
        assert [t[:2] for t in ctx.resources.transitions("processing-job", "again")] == [
            ("InProgress", "Completed")]
    finally:
        second.close()


def test_continuous_output_is_uploaded_while_the_job_runs(sm, s3):
    code = put_code(s3, "cont", """
        import time
        open("/opt/ml/processing/live/progress.txt", "w").write("half way")
        while True:
            time.sleep(1)
    """)
    body = request("cont", code, outputs=["live"])
    body["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3UploadMode"] = "Continuous"
    sm.create_processing_job(**body)
    deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
    while True:  # the object appears while the job still runs
        try:
            assert read(s3, "cont/output/live/progress.txt") == "half way"
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert sm.describe_processing_job(ProcessingJobName="cont")["ProcessingJobStatus"] == (
        "InProgress")
    sm.stop_processing_job(ProcessingJobName="cont")
    assert wait_for(sm, "cont")["ProcessingJobStatus"] == "Stopped"


def test_isolated_script_has_its_opt_ml_but_none_of_the_server_files(sm, s3, server, endpoint):
    """NetworkConfig.EnableNetworkIsolation: the job's own /opt/ml (inputs, outputs, config)
    works; the data directory shows only the way to the job's own directory."""
    data_dir = server.settings.data_dir
    put_rows(s3, "iso-raw", 1)
    code = put_code(s3, "iso-1", f"""
        import glob, json, os
        def attempt(action):
            try:
                return ["ok", action()]
            except OSError as err:
                return ["refused", type(err).__name__]
        data_dir = {str(data_dir)!r}
        rows = sum(1 for f in glob.glob("/opt/ml/processing/input/data/*.csv") for _ in open(f))
        seen = {{"rows": rows, "config": os.path.exists("/opt/ml/config/processingjobconfig.json"),
                "data_dir": attempt(lambda: sorted(os.listdir(data_dir))),
                "secret": attempt(lambda: open(os.path.join(data_dir, "secret.key")).read())}}
        os.makedirs("/opt/ml/processing/out", exist_ok=True)
        with open("/opt/ml/processing/out/seen.json", "w") as f:
            json.dump(seen, f)
    """)
    sm.create_processing_job(**request(
        "iso-1", code, inputs=[data_input(f"s3://{BUCKET}/iso-raw")], outputs=["out"],
        NetworkConfig={"EnableNetworkIsolation": True}))
    job = wait_for(sm, "iso-1")
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    seen = json.loads(read(s3, "iso-1/output/out/seen.json"))
    assert seen["rows"] == 10 and seen["config"] is True
    assert seen["data_dir"] == ["ok", ["jobs"]]
    assert seen["secret"] == ["refused", "FileNotFoundError"]
