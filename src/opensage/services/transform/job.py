"""One transform job's run: its model's fleet of workers, its input objects, and every
object streamed through ``POST /invocations`` into ``<S3OutputPath>/<relative key>.out``.

``MaxConcurrentTransforms`` requests are in flight at once (spread over the instances), the
answers are written back in input order, and each ``.out`` is written atomically through
the object store: an object that fails leaves no ``.out``. A request the model rejects fails
the job with a reason naming the object and the line (a rejected batch is bisected to find
the record).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from opensage.errors import AwsError, ValidationException
from opensage.runner.job_role import AsRole, RoleDenied, model_data_denial
from opensage.runner.object_access import ObjectAccess
from opensage.runner.toolkit import isolation
from opensage.runner.workspace import cpus_for
from opensage.services.context import Context
from opensage.services.servable import NotServable, Servable, servable, worker_program
from opensage.services.transform.formats import RecordFormat, split_response
from opensage.services.transform.outcomes import JobFailed, JobStopped
from opensage.services.transform.records import Batch, Batcher
from opensage.serving.artifacts import ArtifactError, archive_limits
from opensage.serving.client import BlockingWorkerClient, WorkerTimeout, WorkerUnavailable
from opensage.serving.fleet import (
    Fleet,
    InstanceLauncher,
    ModelServer,
    WorkerFailed,
    prepare_model,
)
from opensage.serving.process import LogSink, Worker

LOG_GROUP = "/aws/sagemaker/TransformJobs"
CONTAINER = "_Container"  # key of Resource.internal: the model's container, as created
# Key of that container: the model's EnableNetworkIsolation (its workers have loopback only)
NETWORK_ISOLATION = "NetworkIsolation"
STARTUP_TIMEOUT = 60.0
DEFAULT_PAYLOAD_MB = 6
DEFAULT_TIMEOUT = 600.0
LOST_WAIT_SECONDS = 60.0  # how long a broken connection waits to learn its Ray node was lost


@dataclass
class Running:
    """A job being run by this server."""

    name: str
    stop: threading.Event = field(default_factory=threading.Event)
    fleet: Fleet | None = None
    client: BlockingWorkerClient = field(default_factory=BlockingWorkerClient)
    thread: threading.Thread | None = None
    shutdown: bool = False  # stopped by a server shutdown: stays InProgress, runs again
    lost: bool = False  # another server took it over (its run lease): nothing recorded here


def split_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ValidationException(f"Invalid S3 URI {url!r}: expected s3://bucket/prefix")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


class Job:
    def __init__(self, ctx: Context, launcher: InstanceLauncher, job: dict[str, Any],
                 container: dict[str, Any], running: Running, directory: Path,
                 log: Callable[[str, str, str], None],
                 objects: ObjectAccess | None = None) -> None:
        """``job``: the stored CreateTransformJob document; ``container``: its model's
        container as it was when the job was created; ``log(job, stream, message)``;
        ``objects``: where inputs are read and outputs written (the model's role's view of
        the store, ``runner.job_role.AsRole``; default: the whole store)."""
        self.ctx = ctx
        self.objects: ObjectAccess = objects if objects is not None else ctx.objects
        self.launcher = launcher
        self.job = job
        self.container = container
        self.name = job["TransformJobName"]
        self.running = running
        self.stop = running.stop
        self.client = running.client
        self.directory = directory
        self.log = log
        inp = job["TransformInput"]
        self.content_type = inp.get("ContentType")
        self.gzip = inp.get("CompressionType") == "Gzip"
        out = job["TransformOutput"]
        self.accept = out.get("Accept")
        self.assemble = out.get("AssembleWith") or "None"
        self.concurrency = max(1, int(job.get("MaxConcurrentTransforms") or 1))
        client = job.get("ModelClientConfig") or {}
        self.timeout = float(client.get("InvocationsTimeoutInSeconds") or DEFAULT_TIMEOUT)
        self.format = RecordFormat(self.content_type, job.get("DataProcessing") or {})
        split = inp.get("SplitType") or "None"
        self.per_record = split == "Line" and (self.format.rewrites_output
                                               or self.assemble == "Line")
        self.batcher = Batcher(
            split=split, multi=job.get("BatchStrategy") == "MultiRecord",
            max_payload=int((job.get("MaxPayloadInMB") or DEFAULT_PAYLOAD_MB) * 1024 * 1024),
            per_record=self.per_record, record_format=self.format)
        self.stream = ""
        self.fleet: Fleet | None = None
        # the fleet's, once started; one lost with its Ray node is replaced in place
        self.workers: list[Worker] = []
        self._replacing = threading.Lock()

    # -- driving
    def run(self) -> None:
        what, env = self._servable()
        objects = list(self._inputs())
        if not objects:
            raise JobFailed("No S3 objects found under the input S3 location "
                            f"{self.job['TransformInput']['DataSource']['S3DataSource']['S3Uri']}.")
        out_bucket, out_prefix = split_url(self.job["TransformOutput"]["S3OutputPath"])
        if out_prefix and not out_prefix.endswith("/"):
            out_prefix += "/"
        targets = [out_prefix + relative + ".out" for _, _, relative in objects]
        self._check_role(objects, out_bucket, targets)
        self._start_fleet(what, env)
        failures = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"tx-{self.name}") as pool:
            for (bucket, key, _), target in zip(objects, targets, strict=True):
                self._check_stop()
                try:
                    self.objects.put_object(out_bucket, target,
                                                self._transform(pool, bucket, key))
                except JobFailed as e:
                    self._log(f"s3://{bucket}/{key}: {e}", data=True)
                    failures.append(str(e))
                    continue
                except AwsError as e:
                    raise JobFailed(f"Unable to write the output s3://{out_bucket}/{target}: "
                                    f"{e.message}") from None
                self._log(f"Wrote s3://{out_bucket}/{target}")
        if failures:
            raise JobFailed(failures[0] if len(failures) == 1 else
                            f"{failures[0]} (and {len(failures) - 1} more input objects failed)")

    def _check_role(self, objects: list[tuple[str, str, str]], out_bucket: str,
                    targets: list[str]) -> None:
        """With the model's role (``--auth sigv4``), before the fleet starts and anything is
        written: it may read every input object (s3:GetObject), write every output
        (s3:PutObject) and read the model's artifact, else the job fails saying which."""
        if not isinstance(self.objects, AsRole):
            return
        for bucket, key, _ in objects:
            try:
                self.objects.require_read(bucket, key)
            except RoleDenied as e:
                raise JobFailed(f"Unable to read the input s3://{bucket}/{key}: "
                                f"{e.message}") from None
        for target in targets:
            try:
                self.objects.require_write(out_bucket, target)
            except RoleDenied as e:
                raise JobFailed(f"Unable to write the output s3://{out_bucket}/{target}: "
                                f"{e.message}") from None
        why = model_data_denial(self.objects.role, self.container.get("ModelDataUrl"),
                                self.ctx.settings.region)
        if why is not None:
            raise JobFailed(why)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise JobStopped()

    def _log(self, message: str, *, data: bool = False) -> None:
        stream = self.stream + ("/data-log" if data else "")
        self.log(self.name, stream, message)

    # -- the model's workers
    def _servable(self) -> tuple[Servable, dict[str, str]]:
        """What serves the model (no I/O yet: an image that cannot serve fails the job
        first), and the environment its container sees."""
        image = self.container.get("Image", "")
        # The model's Environment, then the job's (which wins), as the container sees them.
        job = self.job
        env = {"SAGEMAKER_BATCH": "true",  # what the platform adds for a transform job
               "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(job.get("MaxPayloadInMB")
                                                  or DEFAULT_PAYLOAD_MB),
               "SAGEMAKER_BATCH_STRATEGY": job.get("BatchStrategy") or "MultiRecord",
               "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(self.concurrency),
               **(self.container.get("Environment") or {}), **(job.get("Environment") or {})}
        try:
            what = servable(self.ctx.algorithms, image, env, self.ctx.containers)
        except NotServable as e:
            raise JobFailed(str(e)) from None
        if (self.container.get(NETWORK_ISOLATION) and not self.launcher.remote  # Ray: the node
                and (why := isolation.unavailable()) is not None):  # checks, each worker's
            raise JobFailed(why)
        return what, env

    def _start_fleet(self, what: Servable, env: dict[str, str]) -> None:
        isolated = bool(self.container.get(NETWORK_ISOLATION))
        model_dir = self.directory / "model"
        try:
            prepare_model(self.ctx.objects, self.container.get("ModelDataUrl"), model_dir,
                          archive_limits(self.ctx.settings))
        except ArtifactError as e:
            raise JobFailed(f"Failed to download or extract the model data: {e}") from None
        try:
            program = worker_program(self.ctx, what, model_dir, self.directory, env,
                                     lambda line: self._log(line),
                                     here=not self.launcher.remote)
        except NotServable as e:
            raise JobFailed(str(e)) from None
        resources = self.job.get("TransformResources") or {}
        model = ModelServer(program=program, model_dir=model_dir, work_dir=self.directory,
                            cpus=cpus_for(resources.get("InstanceType") or "ml.m5.large"),
                            env=env, startup_timeout=STARTUP_TIMEOUT, isolated=isolated,
                            model_url=self.container.get("ModelDataUrl"),
                            instance_type=resources.get("InstanceType") or "ml.m5.large",
                            hidden=self.ctx.hidden_from_jobs,
                            shared=self.ctx.settings.shared_paths)
        epoch = int(time.time())

        def sink(worker: Worker) -> LogSink:
            stream = f"{worker.instance_id}-{epoch}"
            self.stream = self.stream or stream

            def write(events: list[tuple[int, str]]) -> None:
                self.ctx.logs.append(LOG_GROUP, f"{self.name}/{stream}", events)

            return write

        self.fleet = self.running.fleet = Fleet(self.launcher, model, sink)
        self._check_stop()
        try:
            self.workers = self.fleet.start(int(resources.get("InstanceCount") or 1))
        except WorkerFailed as e:
            self._check_stop()
            raise JobFailed(f"The model container did not pass the ping health check: "
                            f"{e}") from None
        self.fleet.admit(self.workers)

    # -- inputs
    def _inputs(self) -> Iterator[tuple[str, str, str]]:
        """(bucket, key, key relative to the input prefix) of every input object."""
        source = self.job["TransformInput"]["DataSource"]["S3DataSource"]
        bucket, prefix = split_url(source["S3Uri"])
        if source.get("S3DataType") == "ManifestFile":
            try:
                manifest = json.loads(self.objects.read_object(bucket, prefix))
                base = manifest[0]["prefix"]
                base_bucket, base_prefix = split_url(base)
                for entry in manifest[1:]:
                    key = base_prefix + entry
                    yield base_bucket, key, relative_key(base_prefix, key)
            except AwsError as e:
                raise JobFailed(f"Unable to read the manifest file {source['S3Uri']}: "
                                f"{e.message}") from None
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise JobFailed(f"The manifest file {source['S3Uri']} is not valid: "
                                f"{e}") from None
            return
        start_after = ""
        try:
            while True:
                page = self.objects.list_objects(bucket, prefix, start_after=start_after)
                for info in page.objects:
                    if not info.key.endswith("/"):
                        yield bucket, info.key, relative_key(prefix, info.key)
                if not page.is_truncated or page.last is None:
                    return
                start_after = page.last
        except AwsError as e:
            raise JobFailed(f"Unable to list the input S3 location {source['S3Uri']}: "
                            f"{e.message}") from None

    def _open(self, bucket: str, key: str) -> IO[bytes]:
        try:
            _, body = self.objects.open_object(bucket, key)
        except AwsError as e:
            raise JobFailed(f"Unable to read the input s3://{bucket}/{key}: {e.message}") from None
        return gzip.GzipFile(fileobj=body) if self.gzip else body  # type: ignore[return-value]

    # -- one object
    def _transform(self, pool: ThreadPoolExecutor, bucket: str, key: str) -> Iterator[bytes]:
        where = f"s3://{bucket}/{key}"
        f = self._open(bucket, key)
        pending: deque[tuple[Batch, Future[bytes]]] = deque()
        index = 0
        try:
            with f:
                for batch in self.batcher.batches(f, where):
                    self._check_stop()
                    pending.append((batch, pool.submit(self._invoke, batch, index, where)))
                    index += 1
                    while len(pending) > 2 * self.concurrency:
                        yield self._assemble(*pending.popleft(), where)
                while pending:
                    self._check_stop()
                    yield self._assemble(*pending.popleft(), where)
        finally:
            for _, future in pending:
                future.cancel()

    def _invoke(self, batch: Batch, index: int, where: str) -> bytes:
        if self.stop.is_set():
            raise JobStopped()
        status, body = self._post(batch.body, index)
        if status < 300:
            return body
        line, message = batch.numbers[0], body
        if len(batch.numbers) > 1:  # find the record the model rejects
            line, status, message = self._bisect(batch, index)
            if status < 300:
                raise JobFailed(f"{where}, lines {batch.span()}: the model rejected the batch "
                                f"({status}): {_text(body)}")
        raise JobFailed(f"{where}, line {line}: the model rejected the record ({status}): "
                        f"{_text(message)}")

    def _bisect(self, batch: Batch, index: int) -> tuple[int, int, bytes]:
        sent = batch.lines()
        lo, hi = 0, len(sent)
        status, body = 200, b""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            status, body = self._post(b"".join(sent[lo:mid]), index)
            if status >= 300:
                hi = mid
            else:
                lo = mid
                status, body = self._post(b"".join(sent[lo:hi]), index)
                if status < 300:
                    return batch.numbers[0], status, body
        return batch.numbers[lo], status, body

    def _post(self, body: bytes, index: int) -> tuple[int, bytes]:
        worker = self.workers[index % len(self.workers)]
        headers = {"Content-Type": self.content_type or "text/csv"}
        if self.accept:
            headers["Accept"] = self.accept
        while True:
            try:
                answer = self.client.request(worker.port, "POST", "/invocations", body,
                                             headers, self.timeout, host=worker.host)
            except WorkerUnavailable as e:
                if self.stop.is_set():
                    raise JobStopped() from None
                replacement = None if isinstance(e, WorkerTimeout) else self._instead_of(worker)
                if replacement is None:
                    raise JobFailed(f"The model container stopped answering: {e}") from None
                worker = replacement  # the records are re-sent there
                continue
            return answer.status, answer.body

    def _instead_of(self, worker: Worker) -> Worker | None:
        """Where the records of a worker that stopped answering go next: when it was lost
        with its Ray node (``RayWorker.lost``; a local worker that crashed fails the job
        as before), another worker, started in its place on a live node; None otherwise."""
        if not worker.remote or worker.proc is None or self.fleet is None:
            return None
        try:  # the connection broke: Ray tells soon whether the actor's node is gone
            worker.proc.wait(LOST_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            return None
        lost = worker.lost
        if lost is None:
            return None
        with self._replacing:
            position = next((i for i, w in enumerate(self.workers) if w is worker), None)
            if position is None:  # replaced meanwhile by another sender
                return next((w for w in self.workers if w.healthy), None)
            self._log(f"Instance {worker.instance_id} was lost with its Ray node ({lost}); "
                      "its records are re-sent to a new instance")
            try:
                new, = self.fleet.start(1)
            except WorkerFailed as e:
                self._check_stop()
                raise JobFailed(f"An instance was lost with its Ray node ({lost}) and its "
                                f"replacement did not pass the ping health check: {e}") from None
            self.fleet.admit([new])
            self.workers[position] = new
            return new

    def _assemble(self, batch: Batch, future: Future[bytes], where: str) -> bytes:
        body = future.result()
        if not self.per_record:
            return body + (b"\n" if self.assemble == "Line" and not body.endswith(b"\n")
                           else b"")
        assert batch.records is not None  # per-record output: never a block
        outputs = split_response(body, len(batch.records))
        if outputs is None:
            raise JobFailed(f"{where}, lines {batch.span()}: the model answered {len(body)} bytes that cannot be split into "
                            f"{len(batch.records)} records for AssembleWith/JoinSource/"
                            "OutputFilter.")
        lines = []
        for number, record, output in zip(batch.numbers, batch.records, outputs, strict=True):
            if self.format.rewrites_output:
                output = self.format.join_and_filter(record, output, where, number)
            lines.append(output + (b"\n" if self.assemble == "Line" else b""))
        return b"".join(lines)


def _text(body: bytes) -> str:
    return " ".join(body.decode("utf-8", "replace").split())[:600]


def relative_key(prefix: str, key: str) -> str:
    """An input key as it is named under the output prefix (the part after the input
    prefix's folder): ``in/a.csv`` under ``in`` or ``in/`` -> ``a.csv``."""
    if prefix.endswith("/"):
        return key[len(prefix):]
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    if key.startswith(prefix + "/"):
        return key[len(prefix) + 1:]
    return key[prefix.rfind("/") + 1:]


