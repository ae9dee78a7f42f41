"""The one place the services are built and connected, from the settings, at start-up.

Each service is handed a :class:`Context` and the services it calls; cross-service reactions
are subscriptions made here, so this file is the whole map of who depends on whom.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from typing import Any

from opensage.containers import find_engine
from opensage.errors import AwsError
from opensage.runner.environments import Environments
from opensage.runner.executor import Executor
from opensage.runner.forkserver import ForkServer
from opensage.runner.local import LocalExecutor, TrainingEvents
from opensage.runner.object_access import S3Endpoint
from opensage.runner.toolkit.contract import aws_environment
from opensage.runner.workspace import ray_resources
from opensage.services import kinds
from opensage.services.algorithms import AlgorithmCatalog
from opensage.services.audit import AuditService
from opensage.services.autoscaling import AutoscalingService
from opensage.services.context import Context
from opensage.services.endpoints import EndpointService
from opensage.services.experiments import (
    PROCESSING,
    TRAINING,
    TRANSFORM,
    ExperimentService,
    JobTracker,
    LineageService,
    PackageTracker,
)
from opensage.services.housekeeping import Housekeeping
from opensage.services.iam import IamService
from opensage.services.iam.job_roles import JobRoles
from opensage.services.logs import LogService
from opensage.services.metrics import MetricStore
from opensage.services.models import create_model
from opensage.services.pipelines import PipelineService
from opensage.services.pipelines.children import Collaborators
from opensage.services.processing import ProcessingService
from opensage.services.registry import groups as registry_groups
from opensage.services.registry.service import ModelRegistry
from opensage.services.takeover import Takeover
from opensage.services.training.jobs import TrainingService
from opensage.services.transform import TransformService
from opensage.services.tuning.jobs import TuningService
from opensage.serving.artifacts import archive_limits
from opensage.serving.fleet import InstanceLauncher
from opensage.settings import Settings
from opensage.store.audit import AuditStore
from opensage.store.db import Database
from opensage.store.lineage import LineageStore
from opensage.store.objects import ObjectStore
from opensage.store.resources import ResourceStore

# Jobs one server hands the Ray cluster at once: each waits for its placement there (and
# says so), so the cluster's capacity, not this number, is what limits them.
RAY_JOB_SLOTS = 64
INSTANCE_SESSION_SECONDS = 900  # a Ray model instance fetches its model with a session this long


@dataclass(frozen=True)
class Services:
    """Every service of one server, for the API layer to call; services never see this."""

    context: Context
    training: TrainingService
    tuning: TuningService
    endpoints: EndpointService
    transform: TransformService
    processing: ProcessingService
    pipelines: PipelineService
    autoscaling: AutoscalingService  # application-autoscaling
    housekeeping: Housekeeping  # retention purges
    experiments: ExperimentService  # experiments, trials, trial components, their metrics
    registry: ModelRegistry  # CreateModelPackage and who learns of a registered package
    lineage: LineageService  # artifacts, actions, contexts, associations, QueryLineage
    iam: IamService  # users, roles, access keys, STS sessions: what SigV4 checks against
    audit: AuditService  # CloudTrail: the record of every call, LookupEvents, trails
    takeover: Takeover  # the work of a server that died (several servers, one database)

    def start(self) -> None:
        """Start the job slots and pick up what a previous run left unfinished."""
        settings = self.context.settings
        if settings.auth == "sigv4":  # the root key exists before the first request
            self.iam.ensure_root(settings.root_access_key_id, settings.root_secret_access_key)
        self.training.start()  # job slots, then the jobs still InProgress run again
        self.tuning.start()  # its reconcile loop also resumes unfinished searches
        self.endpoints.start()  # endpoints that were InService come back InService
        self.transform.start()  # transform jobs left InProgress run again
        self.processing.start()  # job slots, then processing jobs left InProgress run again
        self.pipelines.start()  # its engine also resumes the executions left Executing
        self.autoscaling.start()  # the scaler thread
        self.audit.start()  # the trails' data event selectors
        self.housekeeping.start()  # retention purges
        self.takeover.start()  # adopts the jobs and endpoints of servers that died

    def reset(self) -> None:
        """Wipe all state: running jobs, rows, objects, logs (``--enable-reset`` only)."""
        with self.tuning.paused(), self.pipelines.engine.paused():
            # no tuning or pipeline step launches a child job mid-wipe
            self.training.cancel_all()
            self.processing.cancel_all()
            self.autoscaling.reset()
            self.endpoints.reset()
            self.transform.reset()
            self.context.db.wipe()
            self.context.objects.wipe()
            if self.iam.bucket_policies is not None:
                self.iam.bucket_policies.forget_all()

    def close(self) -> None:
        self.takeover.close()
        self.housekeeping.close()
        self.pipelines.close()
        self.tuning.shutdown()
        # Serving workers are forked by the fork server, which the training executor closes:
        # stop them before it goes, or they would look like crashes (replaced, or failing a
        # job).
        self.autoscaling.close()
        self.endpoints.close()
        self.transform.close()
        self.processing.close()
        self.training.close()
        self.audit.close()  # what is queued is committed
        if self.context.containers is not None:
            self.context.containers.close()
        self.context.db.dispose()


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    db.prepare()
    ctx = Context(settings=settings, db=db, resources=ResourceStore(db),
                  objects=ObjectStore(settings.objects_url, db, region=settings.region),
                  logs=LogService(db, settings), metrics=MetricStore(db),
                  algorithms=AlgorithmCatalog(),
                  environments=Environments(settings.frameworks_dir,
                                            wheelhouse=settings.wheelhouse),
                  containers=find_engine(settings.container_engine))
    forkserver = _forkserver(settings)
    aws = aws_environment(settings.local_url, settings.region)  # boto3 in a job: this server
    iam = IamService(settings, db, ctx.clock, objects=ctx.objects)
    # --auth sigv4: a job acts as its execution role (reads, writes, its code's credentials)
    roles = JobRoles(iam) if settings.auth == "sigv4" else None

    def executor(reports: TrainingEvents) -> Executor:
        if settings.executor == "ray":
            from opensage.runner.ray_executor import RayExecutor

            return RayExecutor(
                settings.data_dir / "jobs" / "training", ctx.objects, reports,
                address=settings.ray_address, endpoint=_s3_endpoint(settings),
                slots=max(settings.job_slots, RAY_JOB_SLOTS),
                stop_grace_seconds=settings.stop_grace_seconds,
                spot_interruptions_per_hour=settings.spot_interruptions_per_hour,
                frameworks_dir=settings.frameworks_dir, wheelhouse=settings.wheelhouse,
                archive_limits=archive_limits(settings), roles=roles,
                hidden=ctx.hidden_from_jobs, shared=settings.shared_paths)
        return LocalExecutor(
            settings.data_dir / "jobs" / "training", ctx.objects, reports,
            slots=settings.job_slots, stop_grace_seconds=settings.stop_grace_seconds,
            spot_interruptions_per_hour=settings.spot_interruptions_per_hour,
            forkserver=forkserver,
            environments=ctx.environments,
            archive_limits=archive_limits(settings),
            containers=ctx.containers, aws=aws, roles=roles,
            hidden=ctx.hidden_from_jobs, shared=settings.shared_paths)

    def processing_executor(reports: TrainingEvents) -> Executor:
        if settings.executor == "ray":  # each host an actor on a node of the cluster
            from opensage.runner.ray_executor import RayExecutor

            return RayExecutor(
                settings.data_dir / "jobs" / "processing", ctx.objects, reports,
                address=settings.ray_address, endpoint=_s3_endpoint(settings),
                slots=max(settings.job_slots, RAY_JOB_SLOTS),
                stop_grace_seconds=settings.stop_grace_seconds,
                frameworks_dir=settings.frameworks_dir, wheelhouse=settings.wheelhouse,
                roles=roles, hidden=ctx.hidden_from_jobs, shared=settings.shared_paths)
        return LocalExecutor(
            settings.data_dir / "jobs" / "processing", ctx.objects, reports,
            slots=settings.job_slots, stop_grace_seconds=settings.stop_grace_seconds,
            environments=ctx.environments, containers=ctx.containers, aws=aws, roles=roles,
            hidden=ctx.hidden_from_jobs, shared=settings.shared_paths)

    training = TrainingService(ctx, executor)
    tuning = TuningService(ctx, training)
    training.job_ended.subscribe(tuning.child_changed)
    training.watched_metrics.subscribe(tuning.child_changed)
    launcher = _instance_launcher(settings, roles)  # where endpoints' and transforms' workers run
    endpoints = EndpointService(ctx, forkserver, roles, launcher)
    autoscaling = AutoscalingService(ctx, endpoints)
    lineage_store = LineageStore(db)
    experiments = ExperimentService(ctx, lineage_store)
    lineage = LineageService(ctx, lineage_store)
    transform = TransformService(ctx, forkserver, roles, launcher)
    processing = ProcessingService(ctx, processing_executor)
    registry = ModelRegistry(ctx)
    # a job's trial component and lineage; a registered model's lineage
    for service, tracked in ((training, TRAINING), (processing, PROCESSING),
                             (transform, TRANSFORM)):
        tracker = JobTracker(ctx, experiments, lineage, tracked)
        service.job_created.subscribe(tracker.job_created)
        service.job_ended.subscribe(tracker.job_ended)
    registry.package_created.subscribe(
        PackageTracker(ctx, experiments, lineage).package_created)
    pipelines = PipelineService(ctx, _pipeline_children(ctx, training, processing, tuning,
                                                        transform, registry))
    # a step's job ended: its pipeline moves on at once (after the trackers recorded it)
    training.job_ended.subscribe(pipelines.child_ended)
    processing.job_ended.subscribe(pipelines.child_ended)
    transform.job_ended.subscribe(pipelines.child_ended)
    audit = AuditService(settings, AuditStore(db))
    return Services(context=ctx, training=training, tuning=tuning, endpoints=endpoints,
                    transform=transform, processing=processing, pipelines=pipelines,
                    autoscaling=autoscaling,
                    housekeeping=Housekeeping(settings, ctx.logs, ctx.metrics,
                                              autoscaling.purge_activities,
                                              audit.purge_expired),
                    experiments=experiments, lineage=lineage, registry=registry,
                    iam=iam, audit=audit,
                    takeover=Takeover(settings.lease_ttl_seconds / 3, (
                        lambda: training.recover(adopting=True),
                        lambda: processing.recover(adopting=True),
                        lambda: transform.recover(adopting=True),
                        endpoints.adopt)))


def _pipeline_children(ctx: Context, training: TrainingService, processing: ProcessingService,
                       tuning: TuningService, transform: TransformService,
                       registry: ModelRegistry) -> Collaborators:
    """The services a pipeline's steps create their children with."""

    def describe_model(name: str) -> dict[str, Any] | None:
        row = ctx.resources.get(kinds.MODEL.name, name)
        return None if row is None else row.body

    def tuning_children(name: str) -> list[dict[str, Any]]:
        """A Tuning step's ``TrainingJobSummaries``: best first (the SDK's
        ``get_top_model_s3_uri(top_k=0)`` is the best job's model), at most 50."""
        objective = (tuning.describe(name).get("HyperParameterTuningJobConfig") or {}).get(
            "HyperParameterTuningJobObjective") or {}
        order = "Descending" if objective.get("Type") == "Maximize" else "Ascending"
        found: list[dict[str, Any]] = tuning.training_jobs(
            {"HyperParameterTuningJobName": name, "MaxResults": 50,
             "SortBy": "FinalObjectiveMetricValue", "SortOrder": order}
        )["TrainingJobSummaries"]
        return found

    return Collaborators(training=training, processing=processing, tuning=tuning,
                         transform=transform,
                         create_model=lambda params: create_model(ctx, params).body,
                         describe_model=describe_model, tuning_children=tuning_children,
                         registry=_PipelineRegistry(ctx, registry))


class _PipelineRegistry:
    """The model registry as a RegisterModel step uses it: the package is tagged with the
    step's token, so a step started again after a restart finds the version it registered
    instead of registering another; a missing group is created (under PipelineSession the
    SDK's own create-the-group-if-missing never runs)."""

    TOKEN_TAG = "opensage:pipeline-step"

    def __init__(self, ctx: Context, registry: ModelRegistry) -> None:
        self.ctx = ctx
        self.registry = registry

    def register(self, params: dict[str, Any], token: str) -> dict[str, Any]:
        group_name = params.get("ModelPackageGroupName")
        if group_name:
            try:
                group = registry_groups.load_group(self.ctx, group_name)
            except AwsError:
                registry_groups.create_group(self.ctx, {"ModelPackageGroupName": group_name})
            else:
                for row in self.ctx.resources.scan(kinds.MODEL_PACKAGE.name):
                    if row.body.get("ModelPackageGroupName") == group.name and any(
                            t["Key"] == self.TOKEN_TAG and t["Value"] == token
                            for t in self.ctx.resources.list_tags(row.arn)[0]):
                        return row.body
        tags = [*(params.get("Tags") or []), {"Key": self.TOKEN_TAG, "Value": token}]
        return self.registry.create_package({**params, "Tags": tags}).body


def _s3_endpoint(settings: Settings) -> S3Endpoint:
    """Where hosts on other machines reach the objects: this server's S3 facade, at the
    address it listens on (a wildcard bind: this machine's name)."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return S3Endpoint(f"http://{host}:{settings.port}", settings.region)


def _instance_launcher(settings: Settings,
                       roles: JobRoles | None) -> InstanceLauncher | None:
    """With ``--executor ray``: model workers as actors on the cluster (None: the services'
    own launcher, processes on this machine). Under ``--auth sigv4`` each instance fetches
    its model with a short-lived session of the server's own (the model's role was checked
    here before the fleet started, as for a local one)."""
    if settings.executor != "ray":
        return None
    from opensage.runner.ray_executor import connect, ray_directories
    from opensage.runner.toolkit.isolation import unavailable
    from opensage.serving.ray_instances import RayLauncher

    return RayLauncher(lambda: connect(settings.ray_address), _s3_endpoint(settings),
                       ray_resources, archive_limits(settings),
                       None if roles is None else lambda: roles.server_session(
                           INSTANCE_SESSION_SECONDS),
                       functools.partial(Environments, settings.frameworks_dir,
                                         wheelhouse=settings.wheelhouse),
                       ray_directories, unavailable)  # both called on the instance's node


def _forkserver(settings: Settings) -> ForkServer | None:
    """A warm process with the built-ins imported, so that jobs and model workers start in
    milliseconds. The training executor closes it (after the model workers have stopped)."""
    if not settings.preload_algorithms:
        return None
    from opensage.algorithms.registry import preload_modules

    modules = preload_modules()
    return ForkServer(modules) if modules else None
