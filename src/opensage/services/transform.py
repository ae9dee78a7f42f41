"""Batch transform: CreateTransformJob, DescribeTransformJob, ListTransformJobs,
StopTransformJob.

The row is stored ``InProgress`` first; a job thread then fetches the model, starts one
worker process per instance (the same workers endpoints use, :mod:`opensage.serving`) and
streams every input object through ``POST /invocations``:

* input objects are those under ``S3Prefix`` or listed in a ``ManifestFile``; each is read as
  a stream (``CompressionType: Gzip`` decompressed on the fly) and split into records by
  ``SplitType`` (``None``: the whole object; ``Line``; ``RecordIO``);
* ``BatchStrategy`` ``SingleRecord`` sends one record per request, ``MultiRecord`` packs
  records up to ``MaxPayloadInMB``; ``MaxConcurrentTransforms`` requests are in flight at
  once, and the answers are written back in input order;
* ``DataProcessing`` (``InputFilter``, ``JoinSource: Input``, ``OutputFilter``) takes a small
  JSONPath subset (``$``, ``$.key``, ``$[i]``, ``$[a:b]``, ``$[i,j:]``, ``$['k1','k2']``) over
  CSV rows (as arrays) and JSON records;
* each input object gives ``<S3OutputPath>/<key relative to the input prefix>.out``, written
  atomically through the object store: an object that fails leaves no ``.out``.

A request the model rejects fails the job with a reason naming the object and the line.
Logs go to ``/aws/sagemaker/TransformJobs``, stream ``<job>/<instance-id>-<epoch>``. After a
server restart a job left ``InProgress`` runs again from the start (outputs are replaced
whole), one left ``Stopping`` becomes ``Stopped``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from opensage.data import DataError
from opensage.data.recordio import iter_frames
from opensage.errors import AwsError, ValidationException
from opensage.runner.forkserver import ForkServer
from opensage.runner.workspace import cpus_for
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create, load, summaries
from opensage.serving.artifacts import ArtifactError, archive_limits, fetch_model
from opensage.serving.client import BlockingWorkerClient, WorkerUnavailable
from opensage.serving.process import Worker, WorkerFailed

__all__ = ["TransformService", "apply_path", "parse_path"]

KIND = kinds.TRANSFORM_JOB
LOG_GROUP = "/aws/sagemaker/TransformJobs"
STARTUP_TIMEOUT = 60.0
DEFAULT_PAYLOAD_MB = 6
DEFAULT_TIMEOUT = 600.0
TERMINAL = ("Completed", "Failed", "Stopped")
log = logging.getLogger(__name__)


class JobFailed(Exception):
    """The job cannot go on; the message is its FailureReason."""


class JobStopped(Exception):
    pass


# -- the service --------------------------------------------------------------------------------
@dataclass
class _Running:
    name: str
    stop: threading.Event = field(default_factory=threading.Event)
    workers: list[Worker] = field(default_factory=list)
    client: BlockingWorkerClient = field(default_factory=BlockingWorkerClient)
    thread: threading.Thread | None = None
    shutdown: bool = False  # stopped by a server shutdown: stays InProgress, runs again


class TransformService:
    def __init__(self, ctx: Context, forkserver: ForkServer | None) -> None:
        """``forkserver``: the warm process workers are forked from (None: started fresh)."""
        self.ctx = ctx
        self.forkserver = forkserver
        self.root = ctx.settings.data_dir / "transform"
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        # Workers are forked from this long-lived thread (PDEATHSIG follows the forking thread).
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transform-spawner")

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["TransformJobName"]
        model = load(self.ctx, kinds.MODEL, params["ModelName"]).body
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        _validate(params)
        now = self.ctx.now()
        arn = arn_of(self.ctx, KIND, name)
        body = {k: v for k, v in params.items() if k != "Tags"}
        body["TransformInput"] = {"CompressionType": "None", "SplitType": "None",
                                  **params["TransformInput"]}
        body.update(TransformJobArn=arn, TransformJobStatus="InProgress", CreationTime=now,
                    LastModifiedTime=now,
                    _Container={"Image": container.get("Image", ""),
                                "ModelDataUrl": container.get("ModelDataUrl"),
                                "Environment": container.get("Environment") or {}})
        create(self.ctx, KIND, name, body, params.get("Tags") or [], noun="transform job",
               status="InProgress")
        self._launch(name)
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        return {k: v for k, v in load(self.ctx, KIND, name).body.items()
                if not k.startswith("_")}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return summaries(self.ctx, KIND, params, key="TransformJobSummaries", fields={
            f: f for f in ("TransformJobName", "TransformJobArn", "CreationTime",
                           "TransformEndTime", "LastModifiedTime", "TransformJobStatus",
                           "FailureReason")})

    def stop(self, name: str) -> None:
        row = load(self.ctx, KIND, name)
        if row.status == "Stopping":
            return
        if row.status != "InProgress":
            raise ValidationException(
                f"The transform job {row.name} is in status {row.status}: only an InProgress "
                "job can be stopped.")
        body = dict(row.body, TransformJobStatus="Stopping", LastModifiedTime=self.ctx.now())
        if not self.ctx.resources.update(KIND.name, row.name, body, now=body[
                "LastModifiedTime"], status="Stopping", expected_status="InProgress"):
            return  # it finished meanwhile
        with self._lock:
            running = self._running.get(row.name.lower())
        if running is None:  # nothing runs it (e.g. a failed restart): stopped at once
            self._finish(row.name, "Stopped")
        else:
            running.stop.set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Run again every job a previous server left ``InProgress``; ``Stopping`` ones stop."""
        for row in self.ctx.resources.scan(KIND.name, statuses=("InProgress", "Stopping")):
            if row.status == "Stopping":
                self._finish(row.name, "Stopped")
            else:
                self._log(row.name, "system", "The server restarted: the transform "
                          "job runs again from the start.")
                self._launch(row.name)

    def stop_all(self, wait: float = 10.0, *, shutdown: bool = False) -> None:
        with self._lock:
            running = list(self._running.values())
        for job in running:
            job.shutdown = shutdown
            job.stop.set()
            for worker in job.workers:
                worker.kill()
        deadline = time.monotonic() + wait
        for job in running:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Server shutdown: jobs in progress are left ``InProgress``; ``start`` reruns them."""
        self.stop_all(shutdown=True)
        self._spawner.shutdown(wait=False)

    def reset(self) -> None:
        self.stop_all()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- running a job ---------------------------------------------------------------------
    def _launch(self, name: str) -> None:
        running = _Running(name)
        with self._lock:
            self._running[name.lower()] = running
        running.thread = threading.Thread(target=self._run, args=(running,), daemon=True,
                                          name=f"transform-{name}")
        running.thread.start()

    def _run(self, running: _Running) -> None:
        name = running.name
        directory = self.root / name.lower()
        outcome: tuple[str, str | None]
        try:
            job = load(self.ctx, KIND, name).body
            self._mutate(name, {"TransformStartTime": self.ctx.now()})
            _Job(self, job, running, directory).run()
        except JobStopped:
            outcome = ("Stopped", None)
        except JobFailed as e:
            outcome = ("Failed", str(e))
        except Exception as e:
            log.exception("transform job %s failed", name)
            outcome = ("Failed", f"InternalServerError: {type(e).__name__}: {e}")
        else:
            outcome = ("Stopped" if running.stop.is_set() else "Completed", None)
        try:
            if not running.shutdown:
                self._finish(name, *outcome)
        finally:
            running.client.close()
            for worker in running.workers:
                worker.kill()
            shutil.rmtree(directory, ignore_errors=True)
            with self._lock:
                if self._running.get(name.lower()) is running:
                    del self._running[name.lower()]

    def _mutate(self, name: str, changes: dict[str, Any]) -> None:
        row = self.ctx.resources.get(KIND.name, name)
        if row is not None:
            now = self.ctx.now()
            self.ctx.resources.update(KIND.name, name, dict(row.body, **changes,
                                                            LastModifiedTime=now),
                                      now=now, expected_status=row.status)

    def _finish(self, name: str, outcome: str, reason: str | None = None) -> None:
        for _attempt in range(5):  # compare-and-set against a concurrent StopTransformJob
            row = self.ctx.resources.get(KIND.name, name)
            if row is None or row.status in TERMINAL:
                return
            status = "Stopped" if row.status == "Stopping" and outcome != "Failed" else outcome
            now = self.ctx.now()
            body = dict(row.body, TransformJobStatus=status, TransformEndTime=now,
                        LastModifiedTime=now)
            if status == "Failed" and reason:
                body["FailureReason"] = reason[:1024]
            if self.ctx.resources.update(KIND.name, name, body, now=now, status=status,
                                         expected_status=row.status):
                return

    def _log(self, job: str, stream: str, message: str) -> None:
        try:
            self.ctx.logs.append(LOG_GROUP, f"{job}/{stream}",
                                     [(int(time.time() * 1000), message)])
        except Exception:
            log.exception("storing a log line of transform job %s failed", job)


def _validate(params: dict[str, Any]) -> None:
    payload = params.get("MaxPayloadInMB")
    concurrent = params.get("MaxConcurrentTransforms")
    if payload is not None and payload > 100:
        raise ValidationException("MaxPayloadInMB must be less than or equal to 100.")
    if payload is not None and concurrent and payload * concurrent > 100:
        raise ValidationException("MaxConcurrentTransforms * MaxPayloadInMB must be less than "
                                  "or equal to 100.")
    if len(params.get("Environment") or {}) > 16:
        raise ValidationException("Environment can have at most 16 entries.")
    source = params["TransformInput"]["DataSource"].get("S3DataSource")
    if not source:
        raise ValidationException("TransformInput.DataSource.S3DataSource is required.")
    for url in (source["S3Uri"], params["TransformOutput"]["S3OutputPath"]):
        _split_url(url)
    processing = params.get("DataProcessing") or {}
    for key in ("InputFilter", "OutputFilter"):
        if processing.get(key):
            try:
                parse_path(processing[key])
            except ValueError as e:
                raise ValidationException(f"DataProcessing.{key}: {e}") from None


def _split_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ValidationException(f"Invalid S3 URI {url!r}: expected s3://bucket/prefix")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


# -- one job's work -----------------------------------------------------------------------------
@dataclass
class _Batch:
    body: bytes
    numbers: Sequence[int]  # each record's 1-based line (record) number in its object
    # The records as read (before InputFilter), for JoinSource; None for a block of whole
    # lines sent as read (then they are the lines of ``body``, cut only when needed).
    records: list[bytes] | None
    sent: list[bytes] | None  # what each record became after InputFilter

    def lines(self) -> list[bytes]:
        return self.sent if self.sent is not None else self.body.splitlines(keepends=True)


class _Job:
    def __init__(self, service: TransformService, job: dict[str, Any], running: _Running,
                 directory: Any) -> None:
        self.service = service
        self.ctx = service.ctx
        self.job = job
        self.name = job["TransformJobName"]
        self.running = running
        self.directory = directory
        inp = job["TransformInput"]
        self.content_type = inp.get("ContentType")
        self.split = inp.get("SplitType") or "None"
        self.gzip = inp.get("CompressionType") == "Gzip"
        out = job["TransformOutput"]
        self.accept = out.get("Accept")
        self.assemble = out.get("AssembleWith") or "None"
        self.multi = job.get("BatchStrategy") == "MultiRecord"
        self.max_payload = int((job.get("MaxPayloadInMB") or DEFAULT_PAYLOAD_MB) * 1024 * 1024)
        self.concurrency = max(1, int(job.get("MaxConcurrentTransforms") or 1))
        client = job.get("ModelClientConfig") or {}
        self.timeout = float(client.get("InvocationsTimeoutInSeconds") or DEFAULT_TIMEOUT)
        processing = job.get("DataProcessing") or {}
        self.input_filter = _compiled(processing.get("InputFilter"))
        self.output_filter = _compiled(processing.get("OutputFilter"))
        self.join = processing.get("JoinSource") == "Input"
        self.per_record = (self.split == "Line" and (
            self.join or self.output_filter is not None or self.assemble == "Line"))
        self.stream = ""

    # -- driving
    def run(self) -> None:
        self._start_workers()
        objects = list(self._inputs())
        if not objects:
            raise JobFailed("No S3 objects found under the input S3 location "
                            f"{self.job['TransformInput']['DataSource']['S3DataSource']['S3Uri']}.")
        out_bucket, out_prefix = _split_url(self.job["TransformOutput"]["S3OutputPath"])
        if out_prefix and not out_prefix.endswith("/"):
            out_prefix += "/"
        failures = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"tx-{self.name}") as pool:
            for bucket, key, relative in objects:
                self._check_stop()
                target = out_prefix + relative + ".out"
                try:
                    self.ctx.objects.put_object(out_bucket, target,
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

    def _check_stop(self) -> None:
        if self.running.stop.is_set():
            raise JobStopped()

    def _log(self, message: str, *, data: bool = False) -> None:
        stream = self.stream + ("/data-log" if data else "")
        self.service._log(self.name, stream, message)

    # -- the model's workers
    def _start_workers(self) -> None:
        container = self.job.get("_Container") or {}
        image = container.get("Image", "")
        try:
            algorithm = self.ctx.algorithms.lookup(image)
        except AwsError as e:
            raise JobFailed(f"Image {image} cannot be served: {e.message}") from None
        if algorithm is None:
            raise JobFailed(f"Image {image} is not a built-in algorithm opensage can serve.")
        if importlib.util.find_spec(algorithm.module + ".serve") is None:
            raise JobFailed(f"The {algorithm.module} algorithm has no inference handler yet.")
        model_dir = self.directory / "model"
        if container.get("ModelDataUrl"):
            try:
                fetch_model(self.ctx.objects, container["ModelDataUrl"], model_dir,
                            archive_limits(self.ctx.settings))
            except ArtifactError as e:
                raise JobFailed(f"Failed to download or extract the model data: {e}") from None
        else:
            model_dir.mkdir(parents=True, exist_ok=True)
        resources = self.job.get("TransformResources") or {}
        # The model's Environment, then the job's (which wins), as the container sees them.
        env = {**(container.get("Environment") or {}), **(self.job.get("Environment") or {})}
        epoch = int(time.time())
        for _ in range(int(resources.get("InstanceCount") or 1)):
            worker = Worker(module=algorithm.module, model_dir=model_dir,
                            work_dir=self.directory,
                            cpus=cpus_for(resources.get("InstanceType") or "ml.m5.large"),
                            env=env)
            stream = f"{self.name}/{worker.instance_id}-{epoch}"
            self.stream = self.stream or f"{worker.instance_id}-{epoch}"
            worker.log_sink = (lambda events, s=stream:
                               self.ctx.logs.append(LOG_GROUP, s, events))
            self.running.workers.append(worker)
            worker.start(self.service._spawner, self.service.forkserver)
        for worker in self.running.workers:
            self._check_stop()
            try:
                worker.wait_ready(STARTUP_TIMEOUT)
            except WorkerFailed as e:
                self._check_stop()
                raise JobFailed(f"The model container did not pass the ping health check: "
                                f"{e}") from None

    # -- inputs
    def _inputs(self) -> Iterator[tuple[str, str, str]]:
        """(bucket, key, key relative to the input prefix) of every input object."""
        source = self.job["TransformInput"]["DataSource"]["S3DataSource"]
        bucket, prefix = _split_url(source["S3Uri"])
        if source.get("S3DataType") == "ManifestFile":
            try:
                manifest = json.loads(self.ctx.objects.read_object(bucket, prefix))
                base = manifest[0]["prefix"]
                base_bucket, base_prefix = _split_url(base)
                for entry in manifest[1:]:
                    key = base_prefix + entry
                    yield base_bucket, key, _relative(base_prefix, key)
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
                page = self.ctx.objects.list_objects(bucket, prefix, start_after=start_after)
                for info in page.objects:
                    if not info.key.endswith("/"):
                        yield bucket, info.key, _relative(prefix, info.key)
                if not page.is_truncated or page.last is None:
                    return
                start_after = page.last
        except AwsError as e:
            raise JobFailed(f"Unable to list the input S3 location {source['S3Uri']}: "
                            f"{e.message}") from None

    def _open(self, bucket: str, key: str) -> IO[bytes]:
        try:
            _, body = self.ctx.objects.open_object(bucket, key)
        except AwsError as e:
            raise JobFailed(f"Unable to read the input s3://{bucket}/{key}: {e.message}") from None
        return gzip.GzipFile(fileobj=body) if self.gzip else body  # type: ignore[return-value]

    def _records(self, f: IO[bytes], where: str) -> Iterator[bytes]:
        try:
            if self.split == "Line":
                yield from f
            elif self.split == "RecordIO":
                yield from iter_frames(f, keep_padding=self.multi)
            else:  # None (TFRecord framing is not split here: the object goes whole)
                yield f.read()
        except (OSError, EOFError, gzip.BadGzipFile, DataError) as e:
            raise JobFailed(f"Unable to read {where}: {e}") from None

    def _batches(self, f: IO[bytes], where: str) -> Iterator[_Batch]:
        if self.multi and self.split == "Line" and self.input_filter is None and not (
                self.per_record):
            yield from self._blocks(f, where)
            return
        records: list[bytes] = []
        sent: list[bytes] = []
        numbers: list[int] = []
        size = 0
        number = 0
        for record in self._records(f, where):
            number += 1
            if self.split == "Line":
                if not record.strip():
                    continue  # blank lines are not records
                record = record.rstrip(b"\r\n") + b"\n"
                payload = self._filter_input(record, where, number)
            else:
                payload = record
            if len(payload) > self.max_payload:
                raise JobFailed(f"{where}, line {number}: the record is larger than "
                                f"MaxPayloadInMB ({self.max_payload >> 20} MB).")
            if records and (not self.multi or size + len(payload) > self.max_payload):
                yield _Batch(b"".join(sent), numbers, records, sent)
                records, sent, numbers, size = [], [], [], 0
            numbers.append(number)
            records.append(record)
            sent.append(payload)
            size += len(payload)
        if records:
            yield _Batch(b"".join(sent), numbers, records, sent)

    def _blocks(self, f: IO[bytes], where: str) -> Iterator[_Batch]:
        """MultiRecord batches of whole lines, sent as read: cut from blocks of the stream
        with bytes operations (no Python per record); a block with blank lines, CR LF endings
        or leading/trailing blanks goes through the per-line path, which drops or trims them."""
        number = 0  # lines of the object consumed so far
        carry = b""
        eof = False
        while not eof or carry:
            if not eof and len(carry) <= self.max_payload:
                try:
                    data = f.read(self.max_payload + 1 - len(carry))
                except (OSError, EOFError, gzip.BadGzipFile) as e:
                    raise JobFailed(f"Unable to read {where}: {e}") from None
                eof = not data
                carry += data
                if not eof:
                    continue  # read until a whole payload's worth is at hand
            if eof and carry and not carry.endswith(b"\n"):
                carry += b"\n"
            cut = carry.rfind(b"\n", 0, self.max_payload) + 1
            if cut == 0:
                if not carry:
                    return
                raise JobFailed(f"{where}, line {number + 1}: the record is larger than "
                                f"MaxPayloadInMB ({self.max_payload >> 20} MB).")
            block, carry = carry[:cut], carry[cut:]
            count = block.count(b"\n")
            if (b"\n\n" in block or b"\r" in block or b"\t" in block or b"\n " in block
                    or b" \n" in block or block[:1].isspace()):
                yield from self._batches_of_lines(block.splitlines(keepends=True), where,
                                                  number)
            else:
                yield _Batch(block, range(number + 1, number + count + 1), None, None)
            number += count

    def _batches_of_lines(self, lines: list[bytes], where: str,
                          number: int) -> Iterator[_Batch]:
        """The per-line path over ``lines`` (numbered from ``number + 1``)."""
        records: list[bytes] = []
        numbers: list[int] = []
        size = 0
        for record in lines:
            number += 1
            if not record.strip():
                continue
            record = record.rstrip(b"\r\n") + b"\n"
            if records and size + len(record) > self.max_payload:
                yield _Batch(b"".join(records), numbers, records, records)
                records, numbers, size = [], [], 0
            records.append(record)
            numbers.append(number)
            size += len(record)
        if records:
            yield _Batch(b"".join(records), numbers, records, records)

    def _filter_input(self, record: bytes, where: str, number: int) -> bytes:
        if self.input_filter is None:
            return record
        try:
            value = apply_path(self.input_filter, self._parse_record(record))
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise JobFailed(f"{where}, line {number}: InputFilter "
                            f"{self.job['DataProcessing']['InputFilter']!r} failed: {e}") from None
        return self._format(value) + b"\n"

    def _is_csv(self) -> bool:
        return (self.content_type or "text/csv").split(";")[0].strip().lower() == "text/csv"

    def _parse_record(self, record: bytes) -> Any:
        text = record.decode("utf-8").rstrip("\r\n")
        return text.split(",") if self._is_csv() else json.loads(text)

    def _format(self, value: Any) -> bytes:
        if self._is_csv():
            if isinstance(value, list):
                return ",".join(_csv_field(v) for v in value).encode()
            return _csv_field(value).encode()
        return json.dumps(value, separators=(",", ":")).encode()

    # -- one object
    def _transform(self, pool: ThreadPoolExecutor, bucket: str, key: str) -> Iterator[bytes]:
        where = f"s3://{bucket}/{key}"
        f = self._open(bucket, key)
        pending: deque[tuple[_Batch, Future[bytes]]] = deque()
        index = 0
        try:
            with f:
                for batch in self._batches(f, where):
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

    def _invoke(self, batch: _Batch, index: int, where: str) -> bytes:
        if self.running.stop.is_set():
            raise JobStopped()
        status, body = self._post(batch.body, index)
        if status < 300:
            return body
        line, message = batch.numbers[0], body
        if len(batch.numbers) > 1:  # find the record the model rejects
            line, status, message = self._bisect(batch, index)
            if status < 300:
                raise JobFailed(f"{where}, lines {_span(batch)}: the model rejected the batch "
                                f"({status}): {_text(body)}")
        raise JobFailed(f"{where}, line {line}: the model rejected the record ({status}): "
                        f"{_text(message)}")

    def _bisect(self, batch: _Batch, index: int) -> tuple[int, int, bytes]:
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
        workers = self.running.workers
        worker = workers[index % len(workers)]
        headers = {"Content-Type": self.content_type or "text/csv"}
        if self.accept:
            headers["Accept"] = self.accept
        try:
            answer = self.running.client.request(worker.port, "POST", "/invocations", body,
                                                 headers, self.timeout)
        except WorkerUnavailable as e:
            if self.running.stop.is_set():
                raise JobStopped() from None
            raise JobFailed(f"The model container stopped answering: {e}") from None
        return answer.status, answer.body

    def _assemble(self, batch: _Batch, future: Future[bytes], where: str) -> bytes:
        body = future.result()
        if not self.per_record:
            return body + (b"\n" if self.assemble == "Line" and not body.endswith(b"\n")
                           else b"")
        assert batch.records is not None  # per-record output: never a block
        outputs = _split_response(body, len(batch.records))
        if outputs is None:
            raise JobFailed(f"{where}, lines {_span(batch)}: the model answered {len(body)} bytes that cannot be split into "
                            f"{len(batch.records)} records for AssembleWith/JoinSource/"
                            "OutputFilter.")
        lines = []
        for number, record, output in zip(batch.numbers, batch.records, outputs, strict=True):
            if self.join or self.output_filter is not None:
                output = self._join_and_filter(record, output, where, number)
            lines.append(output + (b"\n" if self.assemble == "Line" else b""))
        return b"".join(lines)

    def _join_and_filter(self, record: bytes, output: bytes, where: str, number: int) -> bytes:
        try:
            if self._is_csv():
                result: Any = output.decode("utf-8").split(",")
                if self.join:
                    result = self._parse_record(record) + result
            else:
                text = output.decode("utf-8")
                try:
                    result = json.loads(text)
                except ValueError:
                    result = text
                if self.join:
                    source = self._parse_record(record)
                    result = ({**source, "SageMakerOutput": result} if isinstance(source, dict)
                              else {"SageMakerInput": source, "SageMakerOutput": result})
            if self.output_filter is not None:
                result = apply_path(self.output_filter, result)
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise JobFailed(f"{where}, line {number}: joining or filtering the output "
                            f"failed: {e}") from None
        return self._format(result)


def _span(batch: _Batch) -> str:
    return f"{batch.numbers[0]}-{batch.numbers[-1]}"


def _text(body: bytes) -> str:
    return " ".join(body.decode("utf-8", "replace").split())[:600]


def _csv_field(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _relative(prefix: str, key: str) -> str:
    """An input key as it is named under the output prefix (the part after the input
    prefix's folder): ``in/a.csv`` under ``in`` or ``in/`` -> ``a.csv``."""
    if prefix.endswith("/"):
        return key[len(prefix):]
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    if key.startswith(prefix + "/"):
        return key[len(prefix) + 1:]
    return key[prefix.rfind("/") + 1:]


def _split_response(body: bytes, count: int) -> list[bytes] | None:
    """A multi-record answer cut into ``count`` per-record answers; None when it can't be."""
    text = body.strip()
    lines = [line.rstrip(b"\r") for line in text.split(b"\n") if line.strip()]
    if len(lines) == 1 and lines[0][:1] in (b"{", b"["):
        try:
            document = json.loads(lines[0])
        except ValueError:
            document = None
        if isinstance(document, dict) and len(document) == 1:  # {"predictions": [...]}
            document = next(iter(document.values()))
        if isinstance(document, list) and len(document) == count:
            return [json.dumps(v, separators=(",", ":")).encode() for v in document]
    if count == 1:
        return [text]
    if len(lines) == count:
        return lines
    if len(lines) == 1:
        values = lines[0].split(b",")  # one prediction per record, comma-separated
        if len(values) == count:
            return [v.strip() for v in values]
    return None


# -- the JSONPath subset ------------------------------------------------------------------------
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[([^\]]*)\]")
Selector = tuple[str, Any]  # ("key", name) | ("items", [int | slice | str, ...])


def parse_path(path: str) -> list[Selector]:
    """``$``, ``$.a.b``, ``$[0]``, ``$[1:]``, ``$[0,-1]``, ``$[0,5:]``, ``$['a','b']``."""
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"JSONPath {path!r} must start with $")
    steps: list[Selector] = []
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r}")
        pos = match.end()
        if match.group(1) is not None:
            steps.append(("key", match.group(1)))
            continue
        items: list[Any] = []
        for part in match.group(2).split(","):
            part = part.strip()
            if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
                items.append(part[1:-1])
            elif ":" in part:
                start, _, stop = part.partition(":")
                items.append(slice(int(start) if start.strip() else None,
                                   int(stop) if stop.strip() else None))
            elif part == "*":
                items.append(slice(None))
            else:
                try:
                    items.append(int(part))
                except ValueError:
                    raise ValueError(f"unsupported JSONPath {path!r}") from None
        steps.append(("items", items))
    return steps


def apply_path(steps: list[Selector], value: Any) -> Any:
    for kind, arg in steps:
        if kind == "key":
            if not isinstance(value, dict):
                raise TypeError(f"cannot select key {arg!r} from a {type(value).__name__}")
            value = value[arg]
            continue
        if isinstance(value, dict):
            if not all(isinstance(i, str) for i in arg):
                raise TypeError("an object is selected by quoted keys")
            value = value[arg[0]] if len(arg) == 1 else {k: value[k] for k in arg}
            continue
        if not isinstance(value, list):
            raise TypeError(f"cannot index a {type(value).__name__}")
        picked: list[Any] = []
        for item in arg:
            if isinstance(item, slice):
                picked.extend(value[item])
            elif isinstance(item, int):
                if not -len(value) <= item < len(value):
                    raise IndexError(f"index {item} is out of range for {len(value)} fields")
                picked.append(value[item])
            else:
                raise TypeError(f"cannot select key {item!r} from an array")
        single = len(arg) == 1 and isinstance(arg[0], int)
        value = picked[0] if single else picked
    return value


def _compiled(path: str | None) -> list[Selector] | None:
    if not path or path.strip() == "$":
        return None
    return parse_path(path)

