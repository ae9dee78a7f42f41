"""Real-time endpoints: CreateEndpoint, DescribeEndpoint, ListEndpoints, UpdateEndpoint,
DeleteEndpoint, and the routing table InvokeEndpoint reads.

The row is written before anything is acted on: ``Creating`` (or ``Updating``) is stored,
then a deploy thread fetches each variant's model, starts one worker process per instance
and waits for every ``/ping``; only then is the endpoint ``InService`` and routable. A model
that fails to load sends it to ``Failed`` with the reason. An update is blue/green: the new
workers pass ``/ping`` before the router is swapped, then the old ones drain (SIGTERM lets
them finish the requests in flight); a failed update leaves the endpoint ``InService`` on its
old configuration with a ``FailureReason``.

An instance whose process exits unexpectedly (a crash, a kill -9) is replaced: a watcher
starts a new worker for its variant and swaps it into the router once it passes ``/ping``;
meanwhile the router skips it (the runtime retries a request whose instance vanished on
another healthy one, or waits briefly for the replacement). The model's ``Environment``
reaches the worker processes.

Each row carries ``_Deployment`` (what was resolved from the endpoint configuration and its
models when deployed), so a restart can bring an ``InService`` endpoint back even after its
configuration or models were deleted, as AWS keeps serving them.
"""

from __future__ import annotations

import collections
import importlib.util
import itertools
import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensage.errors import AwsError, ValidationError, ValidationException
from opensage.runner.forkserver import ForkServer
from opensage.runner.workspace import cpus_for
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create, load, summaries
from opensage.serving.artifacts import ArtifactError, archive_limits, fetch_model
from opensage.serving.capture import CaptureService  # data capture
from opensage.serving.process import Worker, WorkerFailed, warm
from opensage.serving.router import LiveVariant, Router, UnknownVariant

__all__ = ["EndpointService"]

KIND = kinds.ENDPOINT
NAMESPACE = "AWS/SageMaker"
LOG_GROUP = "/aws/sagemaker/Endpoints/{name}"
DEFAULT_STARTUP_TIMEOUT = 60.0
METRIC_FLUSH_SECONDS = 1.0
WATCH_SECONDS = 1.0  # how often instances are checked (an exit also wakes the watcher)
REPLACE_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
RECOVERY_WAIT_SECONDS = 20.0
IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
log = logging.getLogger(__name__)


@dataclass
class LiveEndpoint:
    name: str
    router: Router
    workers: list[Worker]
    directory: Path
    instances: dict[str, int]  # variant -> instance count (InvocationsPerInstance)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> deployment
    replaced: dict[str, Worker] = field(default_factory=dict)  # dead worker's key -> successor

    def current(self, worker: Worker) -> Worker:
        """``worker``, or what replaced it (after a crash) if it was replaced."""
        while worker.key in self.replaced:
            worker = self.replaced[worker.key]
        return worker


class DeployFailed(Exception):
    pass


class EndpointService:
    def __init__(self, ctx: Context, forkserver: ForkServer | None) -> None:
        """``forkserver``: the warm process workers are forked from (None: started fresh)."""
        self.ctx = ctx
        self.forkserver = forkserver
        self.root = ctx.settings.data_dir / "endpoints"
        self._live: dict[str, LiveEndpoint] = {}
        self._lock = threading.RLock()
        self._tokens: dict[str, str] = {}  # endpoint -> the deployment that may go live
        self._samples: collections.deque[tuple[str, str, int, float, float]] = (
            collections.deque())
        self._closing = threading.Event()
        self._flusher: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._wake = threading.Event()  # a worker exited: look now
        self._replacing: set[str] = set()  # keys of dead workers being replaced
        self.stop_grace = 30.0
        # Workers are forked from this long-lived thread (PDEATHSIG follows the forking thread).
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="endpoint-spawner")
        self.capture = CaptureService(  # data capture
            ctx.objects, max_bytes=ctx.settings.capture_buffer_bytes)

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["EndpointName"]
        config = load(self.ctx, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"]).body
        deployment = self._resolve(config)
        now = self.ctx.now()
        arn = arn_of(self.ctx, KIND, name)
        body = {"EndpointName": name, "EndpointArn": arn,
                "EndpointConfigName": config["EndpointConfigName"],
                "EndpointStatus": "Creating", "CreationTime": now, "LastModifiedTime": now,
                "ProductionVariants": _variant_views(deployment, current=False, when=now),
                "_Deployment": deployment}
        if config.get("DataCaptureConfig"):
            body["DataCaptureConfig"] = _capture_view(config["DataCaptureConfig"])
        create(self.ctx, KIND, name, body, params.get("Tags") or [], noun="endpoint",
               status="Creating")
        self._spawn(name, deployment, updating=False)
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        return load(self.ctx, KIND, name).body

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return summaries(self.ctx, KIND, params, key="Endpoints", fields={
            f: f for f in ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime",
                           "EndpointStatus")})

    def update(self, params: dict[str, Any]) -> str:
        row = load(self.ctx, KIND, params["EndpointName"])
        if row.status != "InService":
            raise ValidationException(
                f'Cannot update in-progress endpoint "{row.arn}".' if row.status in IN_PROGRESS
                else f"Cannot update endpoint \"{row.arn}\" in status {row.status}.")
        config = load(self.ctx, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"]).body
        deployment = self._resolve(config)
        body = dict(row.body, EndpointStatus="Updating", _Pending=deployment)
        body.pop("FailureReason", None)
        if not self.ctx.resources.update(KIND.name, row.name, body, now=self.ctx.now(),
                                         status="Updating", expected_status="InService"):
            raise ValidationException(f'Cannot update in-progress endpoint "{row.arn}".')
        self._spawn(row.name, deployment, updating=True)
        return row.arn

    def delete(self, name: str) -> None:
        row = load(self.ctx, KIND, name)
        self.ctx.resources.delete(KIND.name, row.name)
        with self._lock:
            self._tokens.pop(row.name.lower(), None)
            live = self._live.pop(row.name.lower(), None)
        self.capture.remove(row.name)  # data capture: write what is buffered
        if live is not None:
            self._retire(live, grace=self.stop_grace)

    # -- capacity (UpdateEndpointWeightsAndCapacities, autoscaling) ------------------------
    def set_capacities(self, name: str, desired: list[dict[str, Any]]) -> tuple[str,
                                                                               threading.Thread]:
        """Change variants' weight and/or instance count in place (workers started before
        traffic reaches them, removed ones drained): ``Updating`` then ``InService``."""
        row = load(self.ctx, KIND, name)
        if row.status != "InService":
            raise ValidationException(
                f'Cannot update in-progress endpoint "{row.arn}".' if row.status in IN_PROGRESS
                else f"Cannot update endpoint \"{row.arn}\" in status {row.status}.")
        deployment = row.body["_Deployment"]
        known = {v["VariantName"]: v for v in deployment["Variants"]}
        missing = [d["VariantName"] for d in desired if d["VariantName"] not in known]
        if missing:
            raise ValidationException(f"The variant(s) \"{missing}\" are not present in the "
                                      f"endpoint \"{row.arn}\".")
        target = {"EndpointConfigName": deployment["EndpointConfigName"],
                  "Variants": [dict(v) for v in deployment["Variants"]]}
        by_name = {v["VariantName"]: v for v in target["Variants"]}
        for d in desired:
            if d.get("DesiredWeight") is None and d.get("DesiredInstanceCount") is None:
                raise ValidationException("Either DesiredWeight or DesiredInstanceCount must be "
                                          f"specified for variant {d['VariantName']}.")
            if d.get("DesiredWeight") is not None:
                by_name[d["VariantName"]]["Weight"] = float(d["DesiredWeight"])
            if d.get("DesiredInstanceCount") is not None:
                if int(d["DesiredInstanceCount"]) < 1:
                    raise ValidationException("DesiredInstanceCount must be at least 1.")
                by_name[d["VariantName"]]["InstanceCount"] = int(d["DesiredInstanceCount"])
        now = self.ctx.now()
        views = _variant_views(target, current=False, when=now)
        for view, old in zip(views, row.body.get("ProductionVariants") or [], strict=False):
            view.update({k: old[k] for k in ("CurrentWeight", "CurrentInstanceCount",
                                             "DeployedImages") if k in old})
        body = dict(row.body, EndpointStatus="Updating", ProductionVariants=views)
        body.pop("FailureReason", None)
        if not self.ctx.resources.update(KIND.name, row.name, body, now=now,
                                         status="Updating", expected_status="InService"):
            raise ValidationException(f'Cannot update in-progress endpoint "{row.arn}".')
        thread = threading.Thread(target=self._apply_capacities, args=(row.name, target),
                                  daemon=True, name=f"capacity-{row.name}")
        thread.start()
        return row.arn, thread

    def _apply_capacities(self, name: str, target: dict[str, Any]) -> None:
        key = name.lower()
        live = self._live.get(key)
        token = self._tokens.get(key)
        added: list[Worker] = []
        retired: list[Worker] = []
        try:
            if live is None:
                raise DeployFailed("The endpoint has no running instances.")
            group = LOG_GROUP.format(name=name)
            members: dict[str, list[Worker]] = {v.name: list(v.workers)
                                                for v in live.router.variants}
            for variant in target["Variants"]:
                vname = variant["VariantName"]
                own = members[vname]
                while len(own) > variant["InstanceCount"]:
                    retired.append(own.pop())
                fresh = []
                for _ in range(variant["InstanceCount"] - len(own)):
                    worker = self._start_worker(
                        variant, self._module_for(variant), live.directory / vname / "model",
                        live.directory / vname, group)
                    added.append(worker)
                    fresh.append(worker)
                for worker in fresh:
                    try:
                        worker.wait_ready(variant["StartupTimeout"])
                    except WorkerFailed as e:
                        raise DeployFailed(f"A new instance of production variant {vname} did "
                                           f"not pass the ping health check: {e}.") from None
                own.extend(fresh)
        except DeployFailed as e:
            self._capacities_failed(name, token, added, str(e))
            return
        except Exception as e:
            log.exception("changing the capacity of endpoint %s failed", name)
            self._capacities_failed(name, token, added, f"InternalFailure: {e}")
            return
        with self._lock:
            row = self.ctx.resources.get(KIND.name, name)
            if row is None or self._tokens.get(key) != token or self._live.get(key) is not live:
                retired, added = added, []  # deleted or redeployed meanwhile
            else:
                # Instances replaced after a crash while this change was being made
                members = {n: [live.current(w) for w in ws] for n, ws in members.items()}
                retired = [live.current(w) for w in retired]
                weights = {v["VariantName"]: v["Weight"] for v in target["Variants"]}
                live.router = Router([LiveVariant(n, weights[n], ws)
                                      for n, ws in members.items()])
                live.workers = [w for ws in members.values() for w in ws]
                live.instances = {n: len(ws) for n, ws in members.items()}
                live.variants = {v["VariantName"]: v for v in target["Variants"]}
                now = self.ctx.now()
                images = {v["VariantName"]: v.get("DeployedImages")
                          for v in row.body.get("ProductionVariants") or []}
                views = _variant_views(target, current=True, when=now)
                for view in views:
                    if images.get(view["VariantName"]):
                        view["DeployedImages"] = images[view["VariantName"]]
                body = dict(row.body, EndpointStatus="InService", LastModifiedTime=now,
                            ProductionVariants=views, _Deployment=target)
                self.ctx.resources.update(KIND.name, name, body, now=now,
                                          status="InService")
        for worker in retired:  # drain: finish what is in flight, off this thread
            worker.stopped = True
            threading.Thread(target=worker.stop, args=(self.stop_grace,), daemon=True,
                             name=f"retire-{name}").start()

    def _capacities_failed(self, name: str, token: str | None, added: list[Worker],
                           reason: str) -> None:
        """Roll back a capacity change: the new workers go, the endpoint keeps serving."""
        for worker in added:
            worker.kill()
        with self._lock:
            row = self.ctx.resources.get(KIND.name, name)
            if row is not None and self._tokens.get(name.lower()) == token:
                now = self.ctx.now()
                body = dict(row.body, EndpointStatus="InService", FailureReason=reason[:1024],
                            ProductionVariants=_variant_views(row.body["_Deployment"],
                                                              current=True, when=now))
                self.ctx.resources.update(KIND.name, name, body, now=now,
                                          status="InService")
    # -- end capacity ----------------------------------------------------------------------

    def _start_worker(self, variant: dict[str, Any], module: str, model_dir: Path,
                      work_dir: Path, group: str) -> Worker:
        """One instance of a variant: a worker process whose output goes to the endpoint's
        log group, stream ``<variant>/<instance-id>``."""
        worker = Worker(module=module, model_dir=model_dir, work_dir=work_dir,
                        cpus=cpus_for(variant["InstanceType"]),
                        env=variant.get("Environment") or {})
        stream = f"{variant['VariantName']}/{worker.instance_id}"
        worker.log_sink = (lambda events: self.ctx.logs.append(group, stream, events))
        worker.on_exit = lambda _worker: self._wake.set()
        worker.start(self._spawner, self.forkserver)
        return worker

    # -- the invocation path (no store access) ---------------------------------------------
    def route(self, name: str, target_variant: str | None) -> tuple[str, Worker]:
        live = self._live.get(name.lower())
        if live is None:
            raise ValidationError(f"Endpoint {name} of account "
                                  f"{self.ctx.settings.account_id} not found.")
        try:
            variant, worker = live.router.pick(target_variant)
        except UnknownVariant:
            raise ValidationError(f"The variant {target_variant} does not exist for endpoint "
                                  f"{name}.") from None
        return variant.name, worker

    def reroute(self, name: str, variant: str, failed: Worker) -> Worker | None:
        """Another instance of ``variant`` (of whatever configuration is live now) that is up,
        for a request ``failed`` could not take; None while there is none (a replacement may
        be starting). ValidationError once the endpoint is gone."""
        live = self._live.get(name.lower())
        if live is None:
            raise ValidationError(f"Endpoint {name} of account "
                                  f"{self.ctx.settings.account_id} not found.")
        own = live.router.by_name.get(variant.lower())
        if own is None:  # the live configuration has other variants now
            return None
        return own.healthy_worker(failed)

    def record(self, endpoint: str, variant: str, status: int, model_us: float,
               overhead_us: float) -> None:
        """One invocation's outcome; written to the metric store in batches, off this path."""
        self._samples.append((endpoint, variant, status, model_us, overhead_us))

    def log_stream_arn(self, endpoint: str, variant: str) -> str:
        group = LOG_GROUP.format(name=endpoint)
        return self.ctx.arn(f"log-group:{group}:log-stream:{variant}", service="logs")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, wait: float = RECOVERY_WAIT_SECONDS) -> None:
        """Start the metric flusher; bring back the endpoints a previous run was serving
        (waiting up to ``wait`` seconds for them, so that InService means routable)."""
        self._closing.clear()
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                         name="endpoint-metrics")
        self._flusher.start()
        self._watcher = threading.Thread(target=self._watch_loop, daemon=True,
                                         name="endpoint-watch")
        self._watcher.start()
        if self.forkserver is not None:
            warm(self.forkserver)  # probe it now: workers fork from it once it is ready
        with self._lock:
            if not self._live:  # what a previous (killed) server left behind
                shutil.rmtree(self.root, ignore_errors=True)
        deploys = []
        for row in self.ctx.resources.scan(KIND.name):
            status = row.status
            deployment = row.body.get("_Deployment")
            if status in ("InService", "Updating", "Creating") and deployment:
                if status == "Updating":
                    body = dict(row.body, EndpointStatus="InService",
                                FailureReason="The update was interrupted by a server restart.")
                    body.pop("_Pending", None)
                    self.ctx.resources.update(KIND.name, row.name, body,
                                              now=self.ctx.now(), status="InService")
                deploys.append(self._spawn(row.name, deployment, updating=False))
        deadline = time.monotonic() + wait
        for thread in deploys:
            thread.join(max(0.0, deadline - time.monotonic()))

    def stop_all(self, grace: float = 5.0) -> None:
        """Stop every worker (server shutdown or reset)."""
        with self._lock:
            live = list(self._live.values())
            self._live.clear()
            self._tokens.clear()
        threads = [threading.Thread(target=self._retire_now, args=(e, grace)) for e in live]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        self.stop_all()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._flush()
        self.capture.close()  # data capture
        self._spawner.shutdown(wait=False)

    def reset(self) -> None:
        self.stop_all(grace=1.0)
        self._samples.clear()
        self.capture.reset()  # data capture
        shutil.rmtree(self.root, ignore_errors=True)

    # -- deployment ------------------------------------------------------------------------
    def _resolve(self, config: dict[str, Any]) -> dict[str, Any]:
        """What to run, read from the configuration and its models now."""
        variants = []
        for variant in config["ProductionVariants"]:
            model = load(self.ctx, kinds.MODEL, variant["ModelName"]).body
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            variants.append({
                "VariantName": variant["VariantName"],
                "ModelName": variant["ModelName"],
                "Weight": float(variant.get("InitialVariantWeight", 1.0)),
                "InstanceCount": int(variant.get("InitialInstanceCount") or 1),
                "InstanceType": variant.get("InstanceType") or "ml.m5.large",
                "Image": container.get("Image", ""),
                "ModelDataUrl": container.get("ModelDataUrl"),
                "Environment": container.get("Environment") or {},
                "StartupTimeout": float(variant.get(
                    "ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_STARTUP_TIMEOUT),
            })
        return {"EndpointConfigName": config["EndpointConfigName"], "Variants": variants,
                "DataCapture": config.get("DataCaptureConfig")}  # data capture

    def _spawn(self, name: str, deployment: dict[str, Any], *,
               updating: bool) -> threading.Thread:
        token = uuid.uuid4().hex
        with self._lock:
            self._tokens[name.lower()] = token
        thread = threading.Thread(target=self._deploy, args=(name, deployment, token, updating),
                                  daemon=True, name=f"deploy-{name}")
        thread.start()
        return thread

    def _deploy(self, name: str, deployment: dict[str, Any], token: str,
                updating: bool) -> None:
        try:
            live = self._start_workers(name, deployment, token)
        except DeployFailed as e:
            self._deploy_failed(name, str(e), token, updating)
            return
        except Exception as e:
            log.exception("deploying endpoint %s failed", name)
            self._deploy_failed(name, f"InternalFailure: {type(e).__name__}: {e}", token,
                                updating)
            return
        with self._lock:
            current = self._tokens.get(name.lower())
            row = self.ctx.resources.get(KIND.name, name)
            if current != token or row is None:  # deleted (or superseded) meanwhile
                stale = live
                old = None
            else:
                stale = None
                old = self._live.get(name.lower())
                self._live[name.lower()] = live
                self.capture.configure(name, deployment.get("DataCapture"))  # data capture
                now = self.ctx.now()
                body = dict(row.body)
                body.pop("_Pending", None)
                body.pop("FailureReason", None)
                body.update(EndpointStatus="InService", LastModifiedTime=now,
                            EndpointConfigName=deployment["EndpointConfigName"],
                            ProductionVariants=_variant_views(deployment, current=True,
                                                              when=now),
                            _Deployment=deployment)
                self.ctx.resources.update(KIND.name, name, body, now=now,
                                          status="InService")
        if stale is not None:
            self._retire(stale, grace=1.0)
        if old is not None:
            self._retire(old, grace=self.stop_grace)  # drain: finish what is in flight

    def _start_workers(self, name: str, deployment: dict[str, Any], token: str) -> LiveEndpoint:
        directory = self.root / name.lower() / token
        group = LOG_GROUP.format(name=name)
        workers: list[Worker] = []
        variants: list[tuple[dict[str, Any], list[Worker]]] = []
        try:
            for variant in deployment["Variants"]:
                vname = variant["VariantName"]
                module = self._module_for(variant)
                model_dir = directory / vname / "model"
                if variant.get("ModelDataUrl"):
                    try:
                        fetch_model(self.ctx.objects, variant["ModelDataUrl"], model_dir,
                                    archive_limits(self.ctx.settings))
                    except ArtifactError as e:
                        raise DeployFailed(f"Failed to download or extract the model data "
                                           f"for production variant {vname}: {e}") from None
                else:
                    model_dir.mkdir(parents=True, exist_ok=True)
                own = []
                for _ in range(variant["InstanceCount"]):
                    worker = self._start_worker(variant, module, model_dir, directory / vname,
                                                group)
                    workers.append(worker)
                    own.append(worker)
                variants.append((variant, own))
            for variant, own in variants:
                for worker in own:
                    try:
                        worker.wait_ready(variant["StartupTimeout"])
                    except WorkerFailed as e:
                        raise DeployFailed(
                            f"The primary container for production variant "
                            f"{variant['VariantName']} did not pass the ping health check: "
                            f"{e}. Please check CloudWatch logs for this endpoint.") from None
        except BaseException:
            for worker in workers:
                worker.kill()
            shutil.rmtree(directory, ignore_errors=True)
            raise
        router = Router([LiveVariant(v["VariantName"], v["Weight"], own) for v, own in variants])
        return LiveEndpoint(name, router, workers, directory,
                            {v["VariantName"]: len(own) for v, own in variants},
                            {v["VariantName"]: v for v, _ in variants})

    def _module_for(self, variant: dict[str, Any]) -> str:
        image = variant["Image"]
        try:
            algorithm = self.ctx.algorithms.lookup(image)
        except AwsError as e:
            raise DeployFailed(f"Image {image} of production variant "
                               f"{variant['VariantName']} cannot be served: {e.message}") from None
        if algorithm is None:
            raise DeployFailed(f"Image {image} of production variant {variant['VariantName']} "
                               "is not a built-in algorithm opensage can serve.")
        if importlib.util.find_spec(algorithm.module + ".serve") is None:
            raise DeployFailed(f"The {algorithm.module} algorithm has no inference handler yet.")
        return algorithm.module

    def _deploy_failed(self, name: str, reason: str, token: str, updating: bool) -> None:
        with self._lock:
            if self._tokens.get(name.lower()) != token:
                return
            row = self.ctx.resources.get(KIND.name, name)
            if row is None:
                return
            now = self.ctx.now()
            body = dict(row.body)
            body.pop("_Pending", None)
            body["FailureReason"] = reason[:1024]
            body["LastModifiedTime"] = now
            if updating:  # roll back: still serving the old configuration
                body["EndpointStatus"] = "InService"
            else:
                body["EndpointStatus"] = "Failed"
                self._tokens.pop(name.lower(), None)
                self._live.pop(name.lower(), None)
            self.ctx.resources.update(KIND.name, name, body, now=now,
                                      status=body["EndpointStatus"])

    def _retire(self, live: LiveEndpoint, grace: float) -> None:
        threading.Thread(target=self._retire_now, args=(live, grace), daemon=True,
                         name=f"retire-{live.name}").start()

    @staticmethod
    def _retire_now(live: LiveEndpoint, grace: float) -> None:
        for worker in live.workers:
            worker.stopped = True  # the runtime drops its connections to it
        threads = [threading.Thread(target=w.stop, args=(grace,)) for w in live.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shutil.rmtree(live.directory, ignore_errors=True)

    # -- replacing instances that died ----------------------------------------------------
    def _watch_loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(WATCH_SECONDS)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                self._check_instances()
            except Exception:
                log.exception("checking endpoint instances failed")

    def _check_instances(self) -> None:
        with self._lock:
            lives = list(self._live.values())
        for live in lives:
            for variant in live.router.variants:
                for worker in variant.workers:
                    if worker.stopped or worker.key in self._replacing:
                        continue
                    if not worker.exited and (worker.proc is None or worker.proc.poll() is None):
                        continue
                    self._replacing.add(worker.key)
                    threading.Thread(target=self._replace, args=(live, variant.name, worker),
                                     daemon=True, name=f"replace-{live.name}").start()

    def _replace(self, live: LiveEndpoint, vname: str, dead: Worker) -> None:
        """Start a new instance for ``dead`` and swap it into the router once it is up."""
        key = live.name.lower()
        group = LOG_GROUP.format(name=live.name)
        code = dead.proc.returncode if dead.proc is not None else None
        self._log(group, f"{vname}/{dead.instance_id}",
                  f"The instance exited unexpectedly (exit status {code}); replacing it.")
        log.warning("endpoint %s: instance %s of variant %s exited (%s); replacing it",
                    live.name, dead.instance_id, vname, code)
        try:
            for attempt in itertools.count():
                if self._closing.is_set() or self._live.get(key) is not live:
                    return
                variant = live.variants[vname]
                worker = self._start_worker(variant, self._module_for(variant),
                                            live.directory / vname / "model",
                                            live.directory / vname, group)
                try:
                    worker.wait_ready(variant["StartupTimeout"])
                except WorkerFailed as e:
                    worker.kill()
                    self._log(group, f"{vname}/{worker.instance_id}",
                              f"The replacement instance did not pass the ping health check: "
                              f"{e}")
                    backoff = REPLACE_BACKOFF_SECONDS
                    if self._closing.wait(backoff[min(attempt, len(backoff) - 1)]):
                        return
                    continue
                with self._lock:
                    current = (self._live.get(key) is live
                               and any(w is dead for w in live.router.workers()))
                    if current:
                        live.router = live.router.replaced(dead, worker)
                        live.workers = [worker if w is dead else w for w in live.workers]
                        live.replaced[dead.key] = worker
                        dead.stopped = True  # the runtime forgets its connections
                if not current:  # deleted, redeployed or resized meanwhile
                    worker.stop(1.0)
                return
        except DeployFailed as e:
            self._log(group, f"{vname}/{dead.instance_id}", f"Cannot replace the instance: {e}")
        except Exception:
            log.exception("replacing instance %s of endpoint %s failed", dead.instance_id,
                          live.name)
        finally:
            self._replacing.discard(dead.key)

    def _log(self, group: str, stream: str, message: str) -> None:
        try:
            self.ctx.logs.append(group, stream, [(int(time.time() * 1000), message)])
        except Exception:
            log.exception("storing a log line in %s failed", group)

    # -- metrics ---------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        while not self._closing.wait(METRIC_FLUSH_SECONDS):
            try:
                self._flush()
            except Exception:
                log.exception("writing endpoint metrics failed")

    def _flush(self) -> None:
        samples = []
        while self._samples:
            samples.append(self._samples.popleft())
        if not samples:
            return
        totals: dict[tuple[str, str], list[float]] = {}
        for endpoint, variant, status, model_us, overhead_us in samples:
            t = totals.setdefault((endpoint, variant), [0, 0, 0, 0.0, 0.0, 0])
            t[0] += 1
            t[1] += 400 <= status < 500
            t[2] += status >= 500
            if status < 400:
                t[3] += model_us
                t[5] += 1
            t[4] += overhead_us
        now = time.time()
        points = []
        for (endpoint, variant), (count, e4, e5, model, overhead, ok) in totals.items():
            dims = {"EndpointName": endpoint, "VariantName": variant}
            live = self._live.get(endpoint.lower())
            instances = (live.instances.get(variant) if live else None) or 1
            points += [("Invocations", dims, now, count, "None"),
                       ("InvocationsPerInstance", dims, now, count / instances, "None"),
                       ("Invocation4XXErrors", dims, now, e4, "None"),
                       ("Invocation5XXErrors", dims, now, e5, "None"),
                       # one point per flush: the interval's mean latency
                       ("OverheadLatency", dims, now, overhead / count, "Microseconds")]
            if ok:
                points.append(("ModelLatency", dims, now, model / ok, "Microseconds"))
        self.ctx.metrics.put(NAMESPACE, points)


def _variant_views(deployment: dict[str, Any], *, current: bool,
                   when: float) -> list[dict[str, Any]]:
    views = []
    for v in deployment["Variants"]:
        view: dict[str, Any] = {
            "VariantName": v["VariantName"],
            "DeployedImages": [{"SpecifiedImage": v["Image"], "ResolvedImage": v["Image"],
                                "ResolutionTime": when}],
            "DesiredWeight": v["Weight"], "DesiredInstanceCount": v["InstanceCount"]}
        if current:
            view.update(CurrentWeight=v["Weight"], CurrentInstanceCount=v["InstanceCount"])
        views.append(view)
    return views


def _capture_view(config: dict[str, Any]) -> dict[str, Any]:
    return {"EnableCapture": bool(config.get("EnableCapture", True)),
            "CaptureStatus": "Started" if config.get("EnableCapture", True) else "Stopped",
            "CurrentSamplingPercentage": config.get("InitialSamplingPercentage", 0),
            "DestinationS3Uri": config.get("DestinationS3Uri", "")}
