"""``opensage server --executor ray`` against a real Ray cluster of two nodes.

Everything runs inside a private network namespace (loopback only, see ``netns.py``): a
Ray head and a second node (``ray start``, one CPU each), the server, and the boto3 calls.
Where the hosts ran is read from Ray itself (its placement groups, in a driver subprocess).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config

from opensage.settings import NODE_INSTANCES_DIR
from opensage.testing import VENV_BIN, server_process
from tests.integration.netns import NamespaceUnavailable, private_network
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv, wait_for

pytest.importorskip("ray", reason="the ray extra is not installed")
HEAD_PORT = 6379
NODE_CPUS = "2"  # each node of the test cluster
INSTANCE = "ml.t3.medium"  # one vCPU: a job's hosts are spread one per node
SERVING = "ml.m5.large"  # two vCPUs, a whole node (transform's smallest instance type)


def _ray(*args: str, log: Path | None = None, **kwargs: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    out = subprocess.PIPE if log is None else open(log, "wb")  # noqa: SIM115
    return subprocess.Popen([str(VENV_BIN / "ray"), *args], env=env, stdout=out,
                            stderr=subprocess.STDOUT, **kwargs)


@pytest.fixture(scope="module")
def netns() -> Iterator[None]:
    try:
        with private_network():
            yield
    except NamespaceUnavailable as err:
        pytest.fail(str(err))


class Cluster:
    def __init__(self, temp: Path, node_cpus: list[set[int]] | None = None) -> None:
        """``node_cpus``: the machine's CPUs each node (head first) runs on, as if each were
        a machine of its own (the benchmarks'); None: every node on all of them."""
        self.temp = temp
        self.address = f"127.0.0.1:{HEAD_PORT}"
        self.worker: subprocess.Popen[bytes] | None = None
        self.node_cpus = node_cpus

    def _pinned(self, node: int) -> dict[str, Any]:
        if self.node_cpus is None:
            return {}
        cpus = self.node_cpus[node]
        return {"preexec_fn": lambda: os.sched_setaffinity(0, cpus)}

    def start(self) -> None:
        head = _ray("start", "--head", "--node-ip-address", "127.0.0.1", "--port",
                    str(HEAD_PORT), "--num-cpus", NODE_CPUS, "--include-dashboard=false",
                    "--disable-usage-stats", "--temp-dir", str(self.temp), **self._pinned(0))
        out, _ = head.communicate(timeout=120)
        assert head.returncode == 0, out.decode(errors="replace")[-2000:]
        self.start_worker()

    def start_worker(self) -> None:
        """The second node in the foreground (``--block``) in a process group of its own,
        so that killing the group is the node dying."""
        self.worker = _ray("start", "--address", self.address, "--node-ip-address",
                           "127.0.0.1", "--num-cpus", NODE_CPUS, "--disable-usage-stats", "--block",
                           log=self.temp / "worker.log", start_new_session=True,
                           **self._pinned(1))
        self.wait_nodes(2)

    def kill_worker(self) -> None:
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def query(self, code: str) -> Any:
        """Run ``code`` (which prints JSON) as a Ray driver in a subprocess."""
        script = ("import json, ray\n"
                  f"ray.init(address={self.address!r}, log_to_driver=False, "
                  "logging_level='ERROR')\n"
                  "def answer(value):\n    print('RESULT ' + json.dumps(value), flush=True)\n"
                  + code)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        marked = [line for line in done.stdout.decode().splitlines()
                  if line.startswith("RESULT ")]
        return json.loads(marked[-1].removeprefix("RESULT "))

    def wait_nodes(self, count: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            alive = self.query("answer(sum(n['Alive'] for n in ray.nodes()))")
            if alive >= count:
                return
            if self.worker is not None and self.worker.poll() is not None:
                break
            time.sleep(0.5)
        log = (self.temp / "worker.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"the Ray cluster did not reach {count} nodes: {log}")

    def placements(self) -> dict[str, list[str]]:
        """Every placement group opensage made: its name -> the node of each bundle."""
        return self.query(
            "from ray.util import placement_group_table as t\n"
            "answer({g['name']: [g['bundles_to_node_id'].get(i) for i in "
            "sorted(g['bundles'])] for g in t().values() if g['name'].startswith('opensage-')"
            " and g['state'] != 'REMOVED'})")

    def stop(self) -> None:
        """Kill this cluster's processes only: those whose command line names its temp
        directory, and their descendants (Ray's workers rename themselves). ``ray stop
        --force`` would kill every Ray process on the machine, other test runs' included."""
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
        mark, parents, doomed = str(self.temp).encode(), {}, set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                if mark in (entry / "cmdline").read_bytes():
                    doomed.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
        grown = True
        while grown:
            more = {pid for pid, parent in parents.items() if parent in doomed} - doomed
            doomed |= more
            grown = bool(more)
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue


@pytest.fixture(scope="module")
def cluster(netns: None) -> Iterator[Cluster]:
    temp = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: Ray's socket paths
    running = Cluster(temp)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def ray_server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("ray-server")
    output: list[str] = []
    try:
        with server_process(data_dir, "--executor", "ray", "--ray-address",
                            cluster.address, output=output) as (url, _proc):
            yield url
    finally:  # what the server said, to read when a test failed
        (data_dir / "server.log").write_text("\n".join(output))


@pytest.fixture(scope="module")
def make_client(ray_server: str) -> Callable[[str], Any]:
    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=ray_server, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(retries={"max_attempts": 1}))
    return make


@pytest.fixture(scope="module")
def data(make_client: Callable[[str], Any]) -> dict[str, Any]:
    s3 = make_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    train, _, _ = regression_csv(600, seed=1)
    validation, x_val, y_val = regression_csv(200, seed=2)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=train)
    s3.put_object(Bucket=BUCKET, Key="data/validation/part-0.csv", Body=validation)
    return {"x_val": x_val, "y_val": y_val}


def _request(name: str, count: int = 1, **overrides: Any) -> dict[str, Any]:
    return job_request(name, ResourceConfig={"InstanceType": INSTANCE, "InstanceCount": count,
                                             "VolumeSizeInGB": 5}, **overrides)


def _model(s3: Any, job: dict[str, Any]) -> bytes:
    bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
    blob = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        return member.read()


def test_a_training_job_runs_on_the_cluster_and_uploads_its_model(
        cluster: Cluster, make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    import xgboost

    sm, s3 = make_client("sagemaker"), make_client("s3")
    sm.create_training_job(**_request("ray-one"))
    job = wait_for(sm, "ray-one", timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    booster = xgboost.Booster()
    booster.load_model(bytearray(_model(s3, job)))
    predictions = booster.predict(xgboost.DMatrix(data["x_val"]))
    rmse = float(np.sqrt(np.mean((predictions - data["y_val"]) ** 2)))
    assert rmse < 0.6 * float(np.std(data["y_val"]))
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["validation:rmse"] == pytest.approx(rmse, rel=1e-3)
    logs = make_client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                       logStreamNamePrefix="ray-one/")["logStreams"][0]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=stream["logStreamName"],
                                 startFromHead=True)["events"]
    assert any("validation-rmse" in e["message"] for e in events)
    # it ran on the cluster: opensage's placement group for the job was on one of its nodes
    nodes = cluster.query("answer([n['NodeID'] for n in ray.nodes()])")
    assert "opensage-ray-one" not in cluster.placements()  # released once the job ended
    assert len(nodes) >= 2


def test_a_job_the_cluster_cannot_place_waits_visibly_for_capacity(
        make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    sm = make_client("sagemaker")
    sm.create_training_job(**job_request("ray-too-big", ResourceConfig={
        "InstanceType": "ml.m5.4xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName="ray-too-big")
        message = job["SecondaryStatusTransitions"][-1]["StatusMessage"]
        if "capacity" in message:
            break
        time.sleep(0.2)
    assert job["SecondaryStatus"] == "Starting"
    assert "Waiting for capacity on the Ray cluster: 1 host(s) of 16 CPU" in message
    sm.stop_training_job(TrainingJobName="ray-too-big")
    job = wait_for(sm, "ray-too-big", timeout=60)
    assert job["TrainingJobStatus"] == "Stopped"
    # a processing job has no status message: its log says it waits
    from tests.integration.test_processing import log_lines, put_code, request
    from tests.integration.test_processing import wait_for as wait_for_processing

    body = request("ray-proc-too-big", put_code(make_client("s3"), "ray-too-big", "print(1)"))
    body["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.4xlarge"
    sm.create_processing_job(**body)
    deadline = time.monotonic() + 60
    while not any("Waiting for capacity on the Ray cluster: 1 host(s) of 16 CPU" in line
                  for lines in log_lines(make_client, "ray-proc-too-big").values()
                  for line in lines):
        assert time.monotonic() < deadline, "the processing job's log never said it waits"
        time.sleep(0.2)
    sm.stop_processing_job(ProcessingJobName="ray-proc-too-big")
    assert wait_for_processing(sm, "ray-proc-too-big")["ProcessingJobStatus"] == "Stopped"
    # a spot job's wait for capacity counts against its MaxWaitTimeInSeconds, as on AWS
    sm.create_training_job(**job_request(
        "ray-spot-too-big", ResourceConfig={"InstanceType": "ml.m5.4xlarge",
                                            "InstanceCount": 1, "VolumeSizeInGB": 5},
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 2, "MaxWaitTimeInSeconds": 3}))
    job = wait_for(sm, "ray-spot-too-big", timeout=60)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == (
        "Stopped", "MaxWaitTimeExceeded")
    transitions = job["SecondaryStatusTransitions"]
    assert {t["Status"] for t in transitions[:-1]} == {"Starting"}  # never placed
    assert any("Waiting for capacity" in t["StatusMessage"] for t in transitions)
    listed = make_client("s3").list_objects_v2(Bucket=BUCKET,
                                               Prefix="output/ray-spot-too-big/")
    assert listed["KeyCount"] == 0  # it never ran: nothing uploaded


def _sharded(name: str, count: int, rounds: int, **overrides: Any) -> dict[str, Any]:
    channels = [{"ChannelName": channel, "ContentType": "text/csv", "DataSource": {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/shards/{channel}/",
                         "S3DataDistributionType": "ShardedByS3Key" if channel == "train"
                         else "FullyReplicated"}}} for channel in ("train", "validation")]
    return _request(name, count, InputDataConfig=channels, HyperParameters={
        "objective": "reg:squarederror", "num_round": str(rounds), "max_depth": "3",
        "eta": "0.3"}, **overrides)


@pytest.fixture(scope="module")
def shards(make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    s3 = make_client("s3")
    for part in range(2):
        body, _, _ = regression_csv(400, seed=10 + part)
        s3.put_object(Bucket=BUCKET, Key=f"shards/train/part-{part}.csv", Body=body)
    body, _, _ = regression_csv(200, seed=2)
    s3.put_object(Bucket=BUCKET, Key="shards/validation/part-0.csv", Body=body)


def test_two_hosts_train_one_model_on_two_nodes(
        cluster: Cluster, make_client: Callable[[str], Any], shards: None) -> None:
    sm = make_client("sagemaker")
    sm.create_training_job(**_sharded("ray-two", 2, 20))
    job = wait_for(sm, "ray-two", timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    logs = make_client("logs")
    streams = sorted(s["logStreamName"].split("/")[1].rsplit("-", 1)[0]
                     for s in logs.describe_log_streams(
                         logGroupName="/aws/sagemaker/TrainingJobs",
                         logStreamNamePrefix="ray-two/")["logStreams"])
    assert streams == ["algo-1", "algo-2"]


def test_pca_on_two_nodes_equals_one_host(make_client: Callable[[str], Any],
                                         data: dict[str, Any], tmp_path: Path) -> None:
    """A first-party built-in that trains across hosts (PCA): on two nodes, each its shard
    (downloaded, or streamed in Pipe mode), the components of one host on all the rows."""
    from opensage.algorithms.pca.serve import load
    from opensage.data.recordio import encode_dense
    from tests.integration.builtins import image, model_dir

    sm, s3 = make_client("sagemaker"), make_client("s3")
    rng = np.random.default_rng(21)
    x = (rng.normal(size=(1000, 8)) * np.linspace(3, 0.3, 8) @ rng.normal(size=(8, 8))
         + 5).astype(np.float32)
    for part, rows in enumerate((x[:600], x[600:])):
        s3.put_object(Bucket=BUCKET, Key=f"pca/train/part-{part}", Body=encode_dense(rows))
    models = []
    for name, count, mode in (("ray-pca-one", 1, "File"), ("ray-pca-two", 2, "File"),
                              ("ray-pca-pipe", 2, "Pipe")):
        sm.create_training_job(**_request(
            name, count, AlgorithmSpecification={"TrainingImage": image("pca"),
                                                 "TrainingInputMode": mode},
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/pca/train/",
                "S3DataDistributionType": "ShardedByS3Key" if count > 1
                else "FullyReplicated"}}}],
            HyperParameters={"num_components": "3", "feature_dim": "8",
                             "mini_batch_size": "100"}))
        job = wait_for(sm, name, timeout=120)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        models.append(load(model_dir(s3, job, tmp_path / name)))
    one, *across = models  # File and Pipe mode (each node's host fed its shard through FIFOs)
    for two in across:
        np.testing.assert_allclose(two.mean, one.mean, rtol=1e-6)
        np.testing.assert_allclose(np.abs(np.sum(one.components * two.components, axis=1)),
                                   1.0, atol=1e-6)
    logs = make_client("logs")
    second = next(s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamNamePrefix="ray-pca-two/")["logStreams"] if "/algo-2-" in s["logStreamName"])
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=second, startFromHead=True)["events"]
    assert any("400 dense records" in e["message"] and "host 2 of 2" in e["message"]
               for e in events)


ALLREDUCE = """
    import json, os, socket
    import torch
    import torch.distributed as dist

    def node():
        \"\"\"The pid of the Ray node (its raylet) this process runs under.\"\"\"
        pid = os.getpid()
        while pid > 1:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"raylet" in f.read().split(b"\\0")[0]:
                    return pid
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        return None

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    value = torch.tensor([float(rank + 1)])
    dist.all_reduce(value)  # the sum over both ranks
    me = {"rank": rank, "world": dist.get_world_size(), "sum": value.item(),
          "host": os.environ["SM_CURRENT_HOST"], "hosts": json.loads(os.environ["SM_HOSTS"]),
          "master": f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}",
          "hostname": socket.gethostname(), "raylet": node()}
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, me)
    print(f"rank {rank} on {me['host']}: sum {me['sum']}", flush=True)
    if rank == 0:
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "ranks.json"), "w") as f:
            json.dump(everyone, f)
    dist.destroy_process_group()
"""


def test_a_torch_distributed_script_runs_its_two_hosts_on_two_nodes(
        make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    """Script mode on Ray: the PyTorch environment on each node, torchrun's two hosts on the
    two nodes (each under its own node's raylet), meeting at algo-1's node."""
    from tests.integration.script_jobs import (
        FIRST_BUILD_TIMEOUT,
        PYTORCH_IMAGE,
        artifact,
        log_lines,
        script_request,
        upload_code,
    )

    sm, s3 = make_client("sagemaker"), make_client("s3")
    code = upload_code(s3, "ray-ddp", {"train.py": ALLREDUCE})
    sm.create_training_job(**script_request(
        "ray-ddp", code, image=PYTORCH_IMAGE,
        hyperparameters={"sagemaker_torch_distributed_enabled": True},
        ResourceConfig={"InstanceType": INSTANCE, "InstanceCount": 2, "VolumeSizeInGB": 5}))
    job = wait_for(sm, "ray-ddp", timeout=FIRST_BUILD_TIMEOUT)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    ranks = json.loads(artifact(s3, "ray-ddp")["ranks.json"])
    assert [(r["rank"], r["host"], r["world"], r["sum"]) for r in ranks] == [
        (0, "algo-1", 2, 3.0), (1, "algo-2", 2, 3.0)]
    assert all(r["hosts"] == ["algo-1", "algo-2"] for r in ranks)
    # algo-1's node address (the cluster's nodes are on 127.0.0.1 in this namespace)
    assert ranks[0]["master"] == ranks[1]["master"]
    assert ranks[0]["master"].startswith("127.0.0.1:")
    raylets = [r["raylet"] for r in ranks]
    assert None not in raylets and raylets[0] != raylets[1]  # one host on each node
    streams = log_lines(make_client, "ray-ddp")  # algo-2's output came back from its node
    assert any("/algo-2-" in stream and any("rank 1 on algo-2: sum 3.0" in line
                                            for line in lines)
               for stream, lines in streams.items())


def test_a_failing_script_on_the_cluster_reports_the_toolkits_error(
        make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    from tests.integration.script_jobs import PYTORCH_IMAGE, script_request, upload_code

    sm, s3 = make_client("sagemaker"), make_client("s3")
    code = upload_code(s3, "ray-fail", {"train.py": """
        print("starting")
        raise ValueError("the label column holds text")
    """})
    sm.create_training_job(**script_request(
        "ray-fail", code, image=PYTORCH_IMAGE,
        ResourceConfig={"InstanceType": INSTANCE, "InstanceCount": 1, "VolumeSizeInGB": 5}))
    job = wait_for(sm, "ray-fail", timeout=300)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        'AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage '
        '"ValueError: the label column holds text"\nCommand "')
    assert job["FailureReason"].endswith(' train.py"')


def test_a_tuning_job_runs_its_children_on_the_cluster(
        make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    from tests.integration.test_tuning import tuning_request

    sm = make_client("sagemaker")
    request = tuning_request("ray-tune", max_jobs=2, parallel=2)
    request["TrainingJobDefinition"]["HyperParameterTuningResourceConfig"]["InstanceType"] = \
        INSTANCE
    sm.create_hyper_parameter_tuning_job(**request)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="ray-tune")
        if tuning["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.5)
    assert tuning["HyperParameterTuningJobStatus"] == "Completed", tuning.get("FailureReason")
    assert tuning["TrainingJobStatusCounters"]["Completed"] == 2
    assert "validation:rmse" in str(tuning["BestTrainingJob"]["FinalHyperParameterTuningJob"
                                                               "ObjectiveMetric"]["MetricName"])


def _actors(cluster: Cluster, class_name: str) -> dict[str, dict[str, str]]:
    """Every actor of ``class_name`` (Ray's actor table, dead ones too): its node, state."""
    return cluster.query(
        "from ray._private.state import actors\n"
        f"answer({{i: {{'node': a['Address']['NodeID'], 'state': a['State']}} "
        f"for i, a in actors().items() if a['ActorClassName'] == {class_name!r}}})")


def _alive_nodes(cluster: Cluster) -> list[str]:
    return cluster.query("answer(sorted(n['NodeID'] for n in ray.nodes() if n['Alive']))")


def test_a_processing_job_runs_its_hosts_on_the_cluster(
        cluster: Cluster, make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    """Two hosts, one per node: each builds (finds) the scikit-learn environment on its node,
    stages its shard of the input through S3, runs the script with its own /opt/ml and
    uploads its outputs itself; its output reaches CloudWatch Logs."""
    from tests.integration.test_processing import (
        SPLIT,
        data_input,
        log_lines,
        put_code,
        put_rows,
        read,
        request,
    )
    from tests.integration.test_processing import wait_for as wait_for_processing

    sm, s3 = make_client("sagemaker"), make_client("s3")
    put_rows(s3, "ray-raw", 2)
    code = put_code(s3, "ray-split", SPLIT)
    body = request("ray-split", code, outputs=["train", "test"], inputs=[data_input(
        f"s3://{BUCKET}/ray-raw", S3DataDistributionType="ShardedByS3Key")])
    body["ProcessingResources"]["ClusterConfig"].update(InstanceType=INSTANCE,
                                                        InstanceCount=2)
    sm.create_processing_job(**body)
    job = wait_for_processing(sm, "ray-split")
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ExitMessage"] == "split 10 rows"  # each host saw its shard: one file
    train = read(s3, "ray-split/output/train/train.csv").splitlines()
    assert len(train) == 7  # 10 rows, a test ratio of 0.25
    seen = json.loads(read(s3, "ray-split/output/train/seen.json"))
    assert seen["resource"]["hosts"] == ["algo-1", "algo-2"]
    streams = log_lines(make_client, "ray-split")
    assert sorted(s.split("/")[1].rsplit("-", 1)[0] for s in streams) == ["algo-1", "algo-2"]
    assert any("split 10 rows into 7 and 3" in line for lines in streams.values()
               for line in lines)
    ran_on = sorted(line.rsplit(" ", 1)[1] for lines in streams.values() for line in lines
                    if line.startswith("Placed on Ray node "))
    assert ran_on == _alive_nodes(cluster)  # one host per node, as each host's log says


# What a job sees around it on its node: the server's port, Ray's directory (its sockets),
# the other hosts' directories; written where the job's report goes (argv[1]).
PROBE = """
    import json, os, socket, sys

    report, port, ray_dir, own = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

    def attempt(action):
        try:
            return ["ok", action()]
        except OSError as err:
            return ["refused", type(err).__name__]

    seen = {"server": attempt(lambda: socket.create_connection(("127.0.0.1", port),
                                                               timeout=5).close()),
            "ray": attempt(lambda: sorted(os.listdir(ray_dir))),
            "hosts": attempt(lambda: sorted(os.listdir(os.path.dirname(own))))}
    seen["own"] = os.path.basename(own)
    os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w") as out:
        json.dump(seen, out)
    print(json.dumps(seen), flush=True)
"""


def test_isolated_hosts_on_the_cluster_reach_neither_the_network_nor_other_directories(
        cluster: Cluster, ray_server: str, make_client: Callable[[str], Any],
        data: dict[str, Any]) -> None:
    """EnableNetworkIsolation on Ray, for a processing job and a script-mode training job:
    each runs on a node in a network namespace of its own, where Ray's directory and the
    other hosts' are hidden; the same job without isolation reaches them."""
    from tests.integration.script_jobs import (
        FIRST_BUILD_TIMEOUT,
        PYTORCH_IMAGE,
        artifact,
        script_request,
        upload_code,
    )
    from tests.integration.test_processing import put_code, request
    from tests.integration.test_processing import wait_for as wait_for_processing

    sm, s3 = make_client("sagemaker"), make_client("s3")
    port, ray_dir = ray_server.rsplit(":", 1)[1], str(cluster.temp)
    code = put_code(s3, "ray-probe", PROBE)
    for name, isolated in (("ray-proc-open", False), ("ray-proc-isolated", True)):
        body = request(name, code, arguments=[
            "/opt/ml/output/message", port, ray_dir, "/opt/ml/processing"],
            NetworkConfig={"EnableNetworkIsolation": isolated})
        body["ProcessingResources"]["ClusterConfig"]["InstanceType"] = INSTANCE
        sm.create_processing_job(**body)
    script = upload_code(s3, "ray-probe-train", {"train.py": """
        import os, runpy, sys
        model = os.environ["SM_MODEL_DIR"]
        sys.argv = ["probe", os.path.join(model, "seen.json"), os.environ["SM_HP_PORT"],
                    os.environ["SM_HP_RAY_DIR"], os.path.dirname(model)]
        runpy.run_path("probe.py")
    """, "probe.py": PROBE})
    for name, isolated in (("ray-train-open", False), ("ray-train-isolated", True)):
        sm.create_training_job(**script_request(
            name, script, image=PYTORCH_IMAGE,
            hyperparameters={"port": port, "ray_dir": ray_dir},
            ResourceConfig={"InstanceType": INSTANCE, "InstanceCount": 1,
                            "VolumeSizeInGB": 5}, EnableNetworkIsolation=isolated))
    seen = {}
    for name in ("ray-proc-open", "ray-proc-isolated"):
        job = wait_for_processing(sm, name)
        assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
        seen[name] = json.loads(job["ExitMessage"])
    for name in ("ray-train-open", "ray-train-isolated"):
        job = wait_for(sm, name, timeout=FIRST_BUILD_TIMEOUT)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        seen[name] = json.loads(artifact(s3, name)["seen.json"])
    for kind in ("proc", "train"):
        open_, isolated = seen[f"ray-{kind}-open"], seen[f"ray-{kind}-isolated"]
        assert open_["server"] == ["ok", None]
        assert isolated["server"][0] == "refused"  # no route out of its namespace
        assert open_["ray"][0] == "ok" and open_["ray"][1]  # Ray's sockets and logs
        assert isolated["ray"] == ["ok", []]  # covered
        if kind == "train":  # its own directory, and of the others only its own
            assert isolated["hosts"] == ["ok", [isolated["own"]]]
            assert open_["hosts"][0] == "ok" and open_["own"] in open_["hosts"][1]


def test_a_transform_job_runs_its_workers_on_the_cluster(
        cluster: Cluster, make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    """Two model workers, one per node (actors fetching the model through S3); the records
    go to them over HTTP at their node's address; the outputs equal direct predictions."""
    from tests.integration.test_endpoints import csv_rows
    from tests.integration.test_transform import job as transform_job
    from tests.integration.test_transform import predict, rows, setup_model
    from tests.integration.test_transform import wait_for as wait_for_transform

    sm, s3 = make_client("sagemaker"), make_client("s3")
    booster = setup_model(sm, s3, "ray-tx-model")
    parts = [rows(40, 11), rows(30, 12)]
    for index, part in enumerate(parts):
        s3.put_object(Bucket=BUCKET, Key=f"ray-tx/in/part-{index}.csv", Body=csv_rows(part))
    before = set(_actors(cluster, "RemoteModelServer"))
    sm.create_transform_job(**transform_job(
        "ray-tx", ModelName="ray-tx-model", MaxPayloadInMB=1,
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/ray-tx/in/"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformResources={"InstanceCount": 2, "InstanceType": SERVING}))
    done = wait_for_transform(sm, "ray-tx", timeout=180)
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    for index, part in enumerate(parts):
        body = s3.get_object(Bucket=BUCKET, Key=f"out/ray-tx/part-{index}.csv.out")["Body"]
        got = np.array([float(v) for v in body.read().decode().split()], dtype=np.float32)
        np.testing.assert_array_equal(got, predict(booster, part))
    workers = {i: a for i, a in _actors(cluster, "RemoteModelServer").items()
               if i not in before}
    assert sorted(a["node"] for a in workers.values()) == _alive_nodes(cluster)
    assert all(a["state"] == "DEAD" for a in workers.values())  # ended with the job


def test_an_endpoint_serves_from_the_cluster_and_replaces_an_instance_lost_with_its_node(
        cluster: Cluster, make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    """Two instances of a whole node each. The second node dies: every request is still
    answered (retried on the healthy instance); the replacement waits for room, and once a
    node is back the lost instance is replaced there (the node is restarted for the tests
    after this one too)."""
    import xgboost

    from tests.integration.test_endpoints import FAST, csv_rows, make_model
    from tests.integration.test_training_jobs import ROLE, XGB_IMAGE

    sm, s3 = make_client("sagemaker"), make_client("s3")
    runtime = make_client("sagemaker-runtime")
    artifact, booster, rows = make_model(seed=4)
    s3.put_object(Bucket=BUCKET, Key="models/ray-ep/model.tar.gz", Body=artifact)
    sm.create_model(ModelName="ray-ep", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/ray-ep/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="ray-ep", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ray-ep", "InitialInstanceCount": 2,
        "InstanceType": SERVING, "InitialVariantWeight": 1}])
    before = set(_actors(cluster, "RemoteModelServer"))
    sm.create_endpoint(EndpointName="ray-ep", EndpointConfigName="ray-ep")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ray-ep", WaiterConfig=FAST)
    expected = booster.predict(xgboost.DMatrix(rows))

    def answered() -> np.ndarray:
        body = runtime.invoke_endpoint(EndpointName="ray-ep", ContentType="text/csv",
                                       Accept="text/csv", Body=csv_rows(rows))["Body"]
        return np.array([float(v) for v in body.read().decode().split(",")], np.float32)

    def alive() -> dict[str, dict[str, str]]:
        return {i: a for i, a in _actors(cluster, "RemoteModelServer").items()
                if i not in before and a["state"] == "ALIVE"}

    first = alive()
    assert sorted(a["node"] for a in first.values()) == _alive_nodes(cluster)
    for _ in range(4):  # round robin: both instances answer
        np.testing.assert_array_equal(answered(), expected)
    cluster.kill_worker()
    for _ in range(4):  # the lost instance's requests are retried on the healthy one
        np.testing.assert_array_equal(answered(), expected)
    cluster.start_worker()
    deadline = time.monotonic() + 120
    while True:
        now = alive()
        if len(now) == 2 and set(now) - set(first):
            break
        assert time.monotonic() < deadline, f"the lost instance was not replaced: {now}"
        time.sleep(0.5)
    assert sorted(a["node"] for a in now.values()) == _alive_nodes(cluster)
    np.testing.assert_array_equal(answered(), expected)
    sm.delete_endpoint(EndpointName="ray-ep")
    deadline = time.monotonic() + 60
    while alive():  # the instances' CPUs are free for the next test
        assert time.monotonic() < deadline, "the endpoint's instances outlived it"
        time.sleep(0.2)


# A framework model's own handlers: model_fn loads weights from the model and its bias from
# S3 through the platform's AWS_ENDPOINT_URL (the server as the node reaches it), and proves
# it runs in the scikit-learn 1.2-1 environment; predict_fn is a dot product.
LINEAR_HANDLERS = """
import json
import os
import urllib.request

import numpy as np
import sklearn


def model_fn(model_dir):
    assert sklearn.__version__ == "1.2.2", sklearn.__version__
    with open(os.path.join(model_dir, "weights.json")) as f:
        model = json.load(f)
    url = os.environ["AWS_ENDPOINT_URL"] + "/BUCKET/ray-sk/bias.txt"
    model["b"] = float(urllib.request.urlopen(url).read())
    return model


def predict_fn(data, model):
    return np.asarray(data, dtype=np.float64) @ np.asarray(model["w"]) + model["b"]
""".replace("BUCKET", BUCKET)
LINEAR = {"w": [1.0, 10.0, 100.0], "b": 0.5}
# The same, isolated: the bias from the model's Environment; the server must be unreachable.
ISOLATED_HANDLERS = """
import json
import os
import urllib.request

import numpy as np


def model_fn(model_dir):
    try:
        urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"], timeout=5)
    except OSError:
        pass
    else:
        raise RuntimeError("an isolated model reached the server")
    with open(os.path.join(model_dir, "weights.json")) as f:
        model = json.load(f)
    model["b"] = float(os.environ["BIAS"])
    return model


def predict_fn(data, model):
    return np.asarray(data, dtype=np.float64) @ np.asarray(model["w"]) + model["b"]
"""


def _linear(rows: list[list[float]]) -> list[float]:
    return [sum(w * v for w, v in zip(LINEAR["w"], row, strict=True)) + LINEAR["b"]
            for row in rows]


def _used(cluster: Cluster) -> dict[str, float]:
    """What the cluster's actors hold now: its total resources less those available."""
    return cluster.query(
        "total, free = ray.cluster_resources(), ray.available_resources()\n"
        "answer({k: total[k] - free.get(k, 0.0) for k in ('CPU', 'memory', 'GPU')"
        " if k in total})")


def test_a_framework_model_serves_from_the_cluster_for_an_endpoint_and_a_transform_job(
        cluster: Cluster, make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    """A scikit-learn script-mode model (SDK-style: SAGEMAKER_PROGRAM, code/ in
    model.tar.gz) on an endpoint: its instance is an actor on a node, which gets the
    framework's environment there and runs framework_worker.py with the user's model_fn and
    predict_fn; the actor asks Ray for the instance type's CPUs and memory. Then a transform
    job of the same handlers fetched as an s3:// sourcedir.tar.gz, one worker per node."""
    from opensage.runner.workspace import ray_resources
    from tests.integration.frameworks import SKLEARN_IMAGE, csv_rows, tar_gz
    from tests.integration.script_jobs import FIRST_BUILD_TIMEOUT, sourcedir
    from tests.integration.test_training_jobs import ROLE
    from tests.integration.test_transform import read
    from tests.integration.test_transform import wait_for as wait_for_transform

    sm, s3 = make_client("sagemaker"), make_client("s3")
    runtime = make_client("sagemaker-runtime")
    weights = json.dumps({"w": LINEAR["w"]})
    s3.put_object(Bucket=BUCKET, Key="ray-sk/bias.txt", Body=str(LINEAR["b"]).encode())
    s3.put_object(Bucket=BUCKET, Key="models/ray-sk/model.tar.gz", Body=tar_gz(
        {"weights.json": weights, "code/inference.py": LINEAR_HANDLERS}))
    sm.create_model(ModelName="ray-sk", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/ray-sk/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "SAGEMAKER_REGION": "us-east-1"}})
    sm.create_endpoint_config(EndpointConfigName="ray-sk", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ray-sk", "InitialInstanceCount": 1,
        "InstanceType": SERVING, "InitialVariantWeight": 1}])
    before = set(_actors(cluster, "RemoteModelServer"))
    idle = _used(cluster)
    sm.create_endpoint(EndpointName="ray-sk", EndpointConfigName="ray-sk")
    deadline = time.monotonic() + FIRST_BUILD_TIMEOUT  # the environment may be built first
    while (status := sm.describe_endpoint(EndpointName="ray-sk"))["EndpointStatus"] in (
            "Creating", "Updating"):
        assert time.monotonic() < deadline, "the endpoint did not come up"
        time.sleep(0.5)
    assert status["EndpointStatus"] == "InService", status.get("FailureReason")

    rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.25, -1.0, 7.0]]
    answer = runtime.invoke_endpoint(EndpointName="ray-sk", ContentType="text/csv",
                                     Accept="text/csv", Body=csv_rows(rows))
    got = [float(v) for v in answer["Body"].read().decode().split()]
    assert got == _linear(rows) == [321.5, 654.5, 690.75]
    instances = {i: a for i, a in _actors(cluster, "RemoteModelServer").items()
                 if i not in before}
    assert [a["state"] for a in instances.values()] == ["ALIVE"]  # one instance, an actor
    assert next(iter(instances.values()))["node"] in _alive_nodes(cluster)
    wanted = ray_resources(SERVING)  # the instance type's CPUs and memory, as a host's
    assert wanted["CPU"] == 2 and wanted["memory"] > 0
    deadline = time.monotonic() + 30  # the cluster's view of what is free follows shortly
    while (held := {k: _used(cluster).get(k, 0.0) - idle.get(k, 0.0) for k in wanted}) \
            != wanted:
        assert time.monotonic() < deadline, f"the instance holds {held}, not {wanted}"
        time.sleep(0.5)
    sm.delete_endpoint(EndpointName="ray-sk")
    deadline = time.monotonic() + 60
    while any(a["state"] == "ALIVE" for i, a in _actors(cluster, "RemoteModelServer").items()
              if i not in before):  # its node is free for the transform job's workers
        assert time.monotonic() < deadline, "the endpoint's instance outlived it"
        time.sleep(0.2)

    # a transform job: the code as an s3:// sourcedir.tar.gz, fetched by each node
    s3.put_object(Bucket=BUCKET, Key="code/ray-sk/sourcedir.tar.gz",
                  Body=sourcedir({"inference.py": LINEAR_HANDLERS}))
    s3.put_object(Bucket=BUCKET, Key="models/ray-sk-tx/model.tar.gz",
                  Body=tar_gz({"weights.json": weights}))
    sm.create_model(ModelName="ray-sk-tx", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": SKLEARN_IMAGE,
        "ModelDataUrl": f"s3://{BUCKET}/models/ray-sk-tx/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY":
                            f"s3://{BUCKET}/code/ray-sk/sourcedir.tar.gz"}})
    parts = [[[float(i), float(i % 3), 0.5 * i] for i in range(start, start + 20)]
             for start in (0, 100)]
    for index, part in enumerate(parts):
        s3.put_object(Bucket=BUCKET, Key=f"ray-sk-in/part-{index}.csv",
                      Body=csv_rows(part) + "\n")
    before = set(_actors(cluster, "RemoteModelServer"))
    sm.create_transform_job(
        TransformJobName="ray-sk-tx", ModelName="ray-sk-tx",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/ray-sk-in/"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out/ray-sk-tx", "Accept": "text/csv",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceCount": 2, "InstanceType": SERVING},
        BatchStrategy="MultiRecord", MaxPayloadInMB=1)
    done = wait_for_transform(sm, "ray-sk-tx", timeout=300)
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    for index, part in enumerate(parts):
        out = read(s3, f"out/ray-sk-tx/part-{index}.csv.out")
        assert [float(v) for v in out.split()] == _linear(part)
    workers = {i: a for i, a in _actors(cluster, "RemoteModelServer").items()
               if i not in before}
    assert sorted(a["node"] for a in workers.values()) == _alive_nodes(cluster)
    assert all(a["state"] == "DEAD" for a in workers.values())  # ended with the job

    # EnableNetworkIsolation: the same handlers in the node's environment, in a network
    # namespace of their own (model_fn fails should the server be reachable)
    s3.put_object(Bucket=BUCKET, Key="models/ray-sk-iso/model.tar.gz", Body=tar_gz(
        {"weights.json": weights, "code/inference.py": ISOLATED_HANDLERS}))
    sm.create_model(ModelName="ray-sk-iso", ExecutionRoleArn=ROLE, EnableNetworkIsolation=True,
                    PrimaryContainer={
                        "Image": SKLEARN_IMAGE,
                        "ModelDataUrl": f"s3://{BUCKET}/models/ray-sk-iso/model.tar.gz",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                                        "BIAS": str(LINEAR["b"])}})
    sm.create_endpoint_config(EndpointConfigName="ray-sk-iso", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ray-sk-iso", "InitialInstanceCount": 1,
        "InstanceType": SERVING, "InitialVariantWeight": 1}])
    sm.create_endpoint(EndpointName="ray-sk-iso", EndpointConfigName="ray-sk-iso")
    deadline = time.monotonic() + 120
    while (status := sm.describe_endpoint(EndpointName="ray-sk-iso"))["EndpointStatus"] == \
            "Creating":
        assert time.monotonic() < deadline, "the isolated endpoint did not come up"
        time.sleep(0.2)
    assert status["EndpointStatus"] == "InService", status.get("FailureReason")
    answer = runtime.invoke_endpoint(EndpointName="ray-sk-iso", ContentType="text/csv",
                                     Accept="text/csv", Body=csv_rows(rows))
    assert [float(v) for v in answer["Body"].read().decode().split()] == _linear(rows)
    sm.delete_endpoint(EndpointName="ray-sk-iso")


def _model_workers(instances: set[str]) -> dict[str, int]:
    """The model worker processes of these Ray instances (on this machine): id -> pid."""
    marker = f"/{NODE_INSTANCES_DIR}/".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # not a process, or gone meanwhile
        if b"opensage.serving.worker" in argv[:3] and b"--model-dir" in argv:
            model_dir = argv[argv.index(b"--model-dir") + 1]
            instance = model_dir.split(marker)[-1].split(b"/")[0].decode()
            if marker in model_dir and instance in instances:
                found[instance] = int(entry.name)
    return found


def test_an_isolated_model_serves_from_the_cluster_in_namespaces_of_its_own(
        cluster: Cluster, make_client: Callable[[str], Any], data: dict[str, Any]) -> None:
    """EnableNetworkIsolation on Ray: a built-in model's two instances (one per node) answer
    as the model does, and each worker runs in a network namespace of its own (not the
    node's, where its actor is), seeing neither Ray's directory (its sockets) nor the other
    instance's directory, which its actor sees. Then a transform job of the same model."""
    import xgboost

    from tests.integration.test_endpoints import FAST, csv_rows, make_model
    from tests.integration.test_training_jobs import ROLE, XGB_IMAGE
    from tests.integration.test_transform import job as transform_job
    from tests.integration.test_transform import predict
    from tests.integration.test_transform import rows as random_rows
    from tests.integration.test_transform import wait_for as wait_for_transform

    sm, s3 = make_client("sagemaker"), make_client("s3")
    runtime = make_client("sagemaker-runtime")
    artifact, booster, rows = make_model(seed=6)
    s3.put_object(Bucket=BUCKET, Key="models/ray-iso/model.tar.gz", Body=artifact)
    sm.create_model(ModelName="ray-iso", ExecutionRoleArn=ROLE, EnableNetworkIsolation=True,
                    PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl":
                                      f"s3://{BUCKET}/models/ray-iso/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="ray-iso", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ray-iso", "InitialInstanceCount": 2,
        "InstanceType": SERVING, "InitialVariantWeight": 1}])
    before = set(_actors(cluster, "RemoteModelServer"))
    sm.create_endpoint(EndpointName="ray-iso", EndpointConfigName="ray-iso")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ray-iso", WaiterConfig=FAST)
    expected = booster.predict(xgboost.DMatrix(rows))
    for _ in range(4):  # round robin: both instances answer as the model does
        body = runtime.invoke_endpoint(EndpointName="ray-iso", ContentType="text/csv",
                                       Accept="text/csv", Body=csv_rows(rows))["Body"]
        got = np.array([float(v) for v in body.read().decode().split(",")], np.float32)
        np.testing.assert_array_equal(got, expected)
    instances = {i: a for i, a in _actors(cluster, "RemoteModelServer").items()
                 if i not in before}
    assert sorted(a["node"] for a in instances.values()) == _alive_nodes(cluster)

    streams = make_client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/Endpoints/ray-iso")["logStreams"]
    ids = {s["logStreamName"].split("/", 1)[1] for s in streams}  # AllTraffic/<instance>
    workers = _model_workers(ids)
    assert len(workers) == 2, (ids, workers)  # the endpoint's two, on this machine's nodes
    own_net = os.stat("/proc/thread-self/ns/net").st_ino  # the cluster's namespace
    base = Path(tempfile.gettempdir()) / NODE_INSTANCES_DIR
    assert set(workers) <= set(os.listdir(base))  # both instances' directories
    assert os.listdir(cluster.temp)  # Ray's sockets, logs, sessions
    for instance, pid in workers.items():
        actor = int((Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]).split()[1])
        assert os.stat(f"/proc/{actor}/ns/net").st_ino == own_net  # the node's network
        assert os.stat(f"/proc/{pid}/ns/net").st_ino != own_net  # a namespace of its own
        root = Path(f"/proc/{pid}/root")  # the files as the worker sees them
        assert os.listdir(f"{root}{cluster.temp}") == []  # Ray's directory covered
        assert os.listdir(f"{root}{base}") == [instance]  # of the instances, only its own
        assert (Path(f"{root}{base}") / instance / "model" / "xgboost-model").is_file()
    sm.delete_endpoint(EndpointName="ray-iso")
    deadline = time.monotonic() + 60
    while any(a["state"] == "ALIVE" for i, a in _actors(cluster, "RemoteModelServer").items()
              if i not in before):  # the nodes are free for the transform job's workers
        assert time.monotonic() < deadline, "the endpoint's instances outlived it"
        time.sleep(0.2)
    assert not _model_workers(ids)  # their workers went with them

    part = random_rows(30, 13)
    s3.put_object(Bucket=BUCKET, Key="ray-iso-tx/in/part-0.csv", Body=csv_rows(part))
    sm.create_transform_job(**transform_job(
        "ray-iso-tx", ModelName="ray-iso",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/ray-iso-tx/in/"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformResources={"InstanceCount": 1, "InstanceType": SERVING}))
    done = wait_for_transform(sm, "ray-iso-tx", timeout=180)
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    body = s3.get_object(Bucket=BUCKET, Key="out/ray-iso-tx/part-0.csv.out")["Body"]
    got = np.array([float(v) for v in body.read().decode().split()], dtype=np.float32)
    np.testing.assert_array_equal(got, predict(booster, part))


def test_the_sdk_trains_on_two_nodes_and_deploys_two_instances_on_the_cluster(
        cluster: Cluster, ray_server: str, data: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The SageMaker SDK, unchanged, against a server on Ray: Estimator.fit with two hosts
    (one model across the nodes, the job's log streamed by the SDK), deploy with two
    instances (one actor on each node) and predict, as a user would."""
    import sagemaker
    import xgboost
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.serializers import CSVSerializer

    from opensage.sdk import fast_polling, write_sdk_config
    from tests.conftest import ACCOUNT, REGION
    from tests.integration.conftest import ROLE

    config = write_sdk_config(ray_server, ACCOUNT, REGION, path=tmp_path / "sdk.yaml")
    for name, value in {"AWS_ENDPOINT_URL": ray_server, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION,
                        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
                        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
                        "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    session = sagemaker.Session()
    estimator = Estimator(image_uri=sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1"),
                          role=ROLE, instance_count=2, instance_type=INSTANCE,
                          sagemaker_session=session, output_path=f"s3://{BUCKET}/sdk-out",
                          hyperparameters={"objective": "reg:squarederror", "num_round": 30,
                                           "max_depth": 3})
    printed = io.StringIO()
    with fast_polling(factor=100), redirect_stdout(printed):
        estimator.fit({"train": TrainingInput(f"s3://{BUCKET}/data/train/",
                                              content_type="text/csv"),
                       "validation": TrainingInput(f"s3://{BUCKET}/data/validation/",
                                                   content_type="text/csv")}, logs=True)
    output = printed.getvalue()
    assert "Completed - Training job completed" in output
    assert "validation-rmse" in output and "Placed on Ray node" in output  # its log
    bucket, key = estimator.model_data[5:].split("/", 1)
    blob = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        booster = xgboost.Booster()
        booster.load_model(bytearray(member.read()))
    rows = data["x_val"][:20]
    expected = booster.predict(xgboost.DMatrix(rows))
    with fast_polling(factor=100):
        predictor = estimator.deploy(initial_instance_count=2, instance_type=SERVING,
                                     serializer=CSVSerializer())
    try:
        served = {i: a for i, a in _actors(cluster, "RemoteModelServer").items()
                  if a["state"] == "ALIVE"}
        assert sorted(a["node"] for a in served.values()) == _alive_nodes(cluster)
        answer = predictor.predict(rows).decode()
        got = np.array([float(v) for v in answer.replace("\n", ",").split(",") if v])
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        assert np.corrcoef(got, data["y_val"][:20])[0, 1] > 0.9  # it learned
    finally:
        predictor.delete_endpoint()
    deadline = time.monotonic() + 60
    while any(a["state"] == "ALIVE" for a in _actors(cluster, "RemoteModelServer").values()):
        assert time.monotonic() < deadline, "the endpoint's instances outlived it"
        time.sleep(0.2)


def test_an_isolated_instance_never_serves_without_knowing_rays_directory(
        tmp_path: Path) -> None:
    """An instance actor told to isolate but not where Ray's directory is on its node fails
    before it fetches anything or starts a worker (it never serves with Ray's sockets in
    sight). No cluster: the actor's class on this machine."""
    from opensage.runner.local import DEFAULT_ARCHIVE_LIMITS
    from opensage.serving.process import WorkerFailed, WorkerProgram
    from opensage.serving.remote_instance import NO_RAY_DIRECTORIES, RemoteModelServer
    from opensage.store.remote_objects import S3Endpoint

    instance = RemoteModelServer(
        WorkerProgram.builtin("opensage.algorithms.xgboost"), "s3://nowhere/model.tar.gz",
        S3Endpoint("http://127.0.0.1:9", "us-east-1"), 1, {}, DEFAULT_ARCHIVE_LIMITS,
        "i-unplaced", str(tmp_path), isolated=True, private=None)
    with pytest.raises(WorkerFailed, match="Ray's directory"):
        instance.start(5.0)
    assert instance.worker is None and not (tmp_path / NODE_INSTANCES_DIR).exists()
    assert NO_RAY_DIRECTORIES.startswith("EnableNetworkIsolation")
    instance.close()


def _working_in(job: str) -> set[str]:
    """The host directories of ``job`` (under this machine's nodes' temporary directory)
    that a live process works in."""
    base = Path(tempfile.gettempdir()) / "opensage-hosts"
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            cwd = Path(os.readlink(entry / "cwd")) if entry.name.isdigit() else None
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if cwd is not None and cwd.parent == base and cwd.name.startswith(f"{job}-algo-"):
            found.add(cwd.name)
    return found


def test_a_server_killed_mid_job_leaves_nothing_running_and_runs_it_again_on_restart(
        cluster: Cluster, tmp_path: Path) -> None:
    """kill -9 of the server: its agents die with it (they are its Ray driver's), and so do
    the job's processes on the nodes, so the restarted server runs the job again, never
    twice at once."""
    data_dir = tmp_path / "server"

    def clients(url: str) -> tuple[Any, Any]:
        made = [boto3.client(service, endpoint_url=url, region_name="us-east-1",
                             aws_access_key_id="test", aws_secret_access_key="test",
                             config=Config(retries={"max_attempts": 2}))
                for service in ("sagemaker", "s3")]
        return made[0], made[1]

    def running_again(sm: Any, before: set[str]) -> set[str]:
        deadline = time.monotonic() + 120
        while True:
            now = _working_in("ray-restart") - before
            if now and sm.describe_training_job(
                    TrainingJobName="ray-restart")["SecondaryStatus"] == "Training":
                return now
            assert time.monotonic() < deadline, "the job did not run"
            time.sleep(0.2)

    extra = ("--executor", "ray", "--ray-address", cluster.address)
    with server_process(data_dir, *extra) as (url, proc):
        sm, s3 = clients(url)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv",
                      Body=regression_csv(600, seed=1)[0])
        s3.put_object(Bucket=BUCKET, Key="data/validation/part-0.csv",
                      Body=regression_csv(200, seed=2)[0])
        sm.create_training_job(**_request("ray-restart", HyperParameters={
            "objective": "reg:squarederror", "num_round": "1000000"}))
        first = running_again(sm, set())
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60
    while _working_in("ray-restart") & first:  # its agent died with the server, and its host
        assert time.monotonic() < deadline, "the job's process outlived its server"
        time.sleep(0.2)
    with server_process(data_dir, *extra) as (url, _proc):
        sm, _ = clients(url)
        second = running_again(sm, first)  # the restarted server runs it again
        assert not _working_in("ray-restart") & first and len(second) == 1
        sm.stop_training_job(TrainingJobName="ray-restart")
        job = wait_for(sm, "ray-restart", timeout=60)
        assert job["TrainingJobStatus"] == "Stopped"
    assert not _working_in("ray-restart")


def test_a_lost_node_fails_the_job_naming_why_and_hosts_are_spread(
        cluster: Cluster, make_client: Callable[[str], Any], shards: None) -> None:
    """Last: it kills the second node. The two hosts are on the two nodes (Ray's placement
    of the job's group); without checkpoints the job fails, saying a node was lost."""
    sm = make_client("sagemaker")
    sm.create_training_job(**_sharded("ray-lost", 2, 1_000_000))
    deadline = time.monotonic() + 120
    while sm.describe_training_job(TrainingJobName="ray-lost")["SecondaryStatus"] != "Training":
        assert time.monotonic() < deadline, "the job did not start training"
        time.sleep(0.2)
    placed = cluster.placements()["opensage-ray-lost"]
    nodes = cluster.query("answer(sorted(n['NodeID'] for n in ray.nodes() if n['Alive']))")
    assert sorted(placed) == nodes  # one host on each node
    cluster.kill_worker()
    job = wait_for(sm, "ray-lost", timeout=120)
    assert job["TrainingJobStatus"] == "Failed"
    assert "Ray node running the job was lost" in job["FailureReason"]
    assert "no CheckpointConfig" in job["FailureReason"]
