"""What AWS records for a job and a registered model in Experiments and lineage, as
listeners of the job services and the model registry (subscribed in ``services.wiring``).

A training, processing or transform job (one :class:`TrackedJob` each says how to read its
document):

- at creation, a trial component ``<job>-aws-training-job`` / ``-aws-processing-job`` /
  ``-aws-transform-job`` (``Source`` the job's ARN, type ``SageMakerTrainingJob`` /
  ``SageMakerProcessingJob`` / ``SageMakerTransformJob``; parameters the job's settings
  (a training job's hyperparameters); input artifacts its data (channels, processing inputs,
  a transform's input and model)), an artifact for each input (``DataSet``, a transform's
  ``Model``) and for the image, each ``ContributedTo`` the component; with an
  ``ExperimentConfig`` the component joins the trial (created in the experiment when
  missing), and with a ``RunName`` (a job started inside ``sagemaker.experiments.Run``) it is
  also associated with the run's component (``ContributedTo``);
- a job a pipeline created (tagged ``sagemaker:pipeline-execution-arn``, as AWS tags them)
  joins the execution's trial (its experiment, the pipeline's, is created when missing) and
  its component is ``AssociatedWith`` the execution's context (``PipelineExecution``, source
  the execution's ARN);
- at its end, the component's status, end time, output artifacts (the model, processing
  outputs, the transform output), metric summaries (a training job's metric series), and an
  artifact for each output the component ``Produced`` when the job completed.

A model package (:class:`PackageTracker`) is an artifact (``ModelPackage``, source the
package's ARN: QueryLineage starts from artifacts, actions, contexts and trial components
only); each container's model data (``Model``, the same artifact a training job produced: one
artifact per source URI) and image (``Image``) ``ContributedTo`` it, and a versioned
package's artifact is ``AssociatedWith`` its group's context (``ModelGroup``, source the group's ARN; ``Properties.PipelineExecutionArn`` when a
pipeline registered it, as the SDK's ``ModelPackageGroup`` context reads it). So
``QueryLineage`` from a package reaches the training job and its data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opensage.errors import AwsError
from opensage.services import crud, kinds
from opensage.services.context import Context
from opensage.services.experiments.lineage import LineageService
from opensage.services.experiments.service import ExperimentService
from opensage.services.experiments.states import TrialComponentStatus, sources
from opensage.services.metrics import TRAINING_NAMESPACE
from opensage.store.resources import Resource

log = logging.getLogger(__name__)
Body = dict[str, Any]
PIPELINE_EXECUTION_TAG = "sagemaker:pipeline-execution-arn"


class JobEvent(Protocol):
    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class Data:
    """One input or output of a job: its artifact name in the component, its URI, the
    lineage artifact's type and (inputs) its media type."""

    name: str
    uri: str
    artifact_type: str = "DataSet"
    media_type: str | None = None


@dataclass
class Facts:
    """What a job's document says at its creation."""

    parameters: dict[str, Any] = field(default_factory=dict)  # plain values
    inputs: list[Data] = field(default_factory=list)
    image: str | None = None


@dataclass(frozen=True)
class TrackedJob:
    kind: kinds.Kind
    suffix: str
    source_type: str
    status_field: str
    end_field: str
    facts: Callable[[Context, Body], Facts]
    outputs: Callable[[Body], list[Data]]  # what it produced, read at its end
    metrics: bool = False  # metric series to fold into the component (training)


def _value(value: Any) -> Body:
    """A trial component parameter: numbers (and numeric strings) as NumberValue."""
    if isinstance(value, bool):
        return {"StringValue": str(value)}
    if isinstance(value, int | float):
        return {"NumberValue": float(value)} if math.isfinite(value) else {
            "StringValue": str(value)}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return {"StringValue": str(value)}
    return {"NumberValue": number} if math.isfinite(number) else {"StringValue": str(value)}


def _instance(resources: Body) -> dict[str, Any]:
    return {"SageMaker.InstanceType": resources.get("InstanceType"),
            "SageMaker.InstanceCount": resources.get("InstanceCount"),
            "SageMaker.VolumeSizeInGB": resources.get("VolumeSizeInGB")}


# -- training --------------------------------------------------------------------------------
def _training_facts(ctx: Context, body: Body) -> Facts:
    algorithm = body.get("AlgorithmSpecification") or {}
    parameters: dict[str, Any] = dict(body.get("HyperParameters") or {})
    parameters.update(_instance(body.get("ResourceConfig") or {}))
    parameters["SageMaker.ImageUri"] = algorithm.get("TrainingImage")
    inputs = []
    for channel in body.get("InputDataConfig") or []:
        uri = ((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
        if uri:
            inputs.append(Data(channel["ChannelName"], uri,
                               media_type=channel.get("ContentType")))
    return Facts(parameters, inputs, algorithm.get("TrainingImage"))


def _training_outputs(body: Body) -> list[Data]:
    model = (body.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    return [Data("SageMaker.ModelArtifact", model, "Model")] if model else []


# -- processing ------------------------------------------------------------------------------
def _processing_facts(ctx: Context, body: Body) -> Facts:
    app = body.get("AppSpecification") or {}
    parameters = _instance((body.get("ProcessingResources") or {}).get("ClusterConfig") or {})
    parameters["SageMaker.ImageUri"] = app.get("ImageUri")
    inputs = [Data(i["InputName"], i["S3Input"]["S3Uri"])
              for i in body.get("ProcessingInputs") or []
              if (i.get("S3Input") or {}).get("S3Uri")]
    return Facts(parameters, inputs, app.get("ImageUri"))


def _processing_outputs(body: Body) -> list[Data]:
    return [Data(o["OutputName"], o["S3Output"]["S3Uri"])
            for o in (body.get("ProcessingOutputConfig") or {}).get("Outputs") or []
            if (o.get("S3Output") or {}).get("S3Uri")]


# -- transform -------------------------------------------------------------------------------
def _transform_facts(ctx: Context, body: Body) -> Facts:
    resources = body.get("TransformResources") or {}
    parameters: dict[str, Any] = {
        "SageMaker.InstanceType": resources.get("InstanceType"),
        "SageMaker.InstanceCount": resources.get("InstanceCount"),
        "SageMaker.ModelName": body.get("ModelName"),
        "SageMaker.BatchStrategy": body.get("BatchStrategy"),
        "SageMaker.MaxConcurrentTransforms": body.get("MaxConcurrentTransforms"),
        "SageMaker.MaxPayloadInMB": body.get("MaxPayloadInMB")}
    source = ((body.get("TransformInput") or {}).get("DataSource") or {}).get(
        "S3DataSource") or {}
    content_type = (body.get("TransformInput") or {}).get("ContentType")
    inputs = [Data("SageMaker.InputData", source["S3Uri"], media_type=content_type)] \
        if source.get("S3Uri") else []
    image = None
    model = ctx.resources.get(kinds.MODEL.name, str(body.get("ModelName")))
    if model is not None:
        containers = [model.body.get("PrimaryContainer") or {},
                      *(model.body.get("Containers") or [])]
        container: Body = next((c for c in containers if c.get("ModelDataUrl") or c.get("Image")),
                         {})
        if container.get("ModelDataUrl"):
            inputs.append(Data("SageMaker.ModelArtifact", container["ModelDataUrl"], "Model"))
        image = container.get("Image")
    return Facts(parameters, inputs, image)


def _transform_outputs(body: Body) -> list[Data]:
    path = (body.get("TransformOutput") or {}).get("S3OutputPath")
    return [Data("SageMaker.OutputData", path)] if path else []


TRAINING = TrackedJob(kinds.TRAINING_JOB, "-aws-training-job", "SageMakerTrainingJob",
                      "TrainingJobStatus", "TrainingEndTime", _training_facts,
                      _training_outputs, metrics=True)
PROCESSING = TrackedJob(kinds.PROCESSING_JOB, "-aws-processing-job", "SageMakerProcessingJob",
                        "ProcessingJobStatus", "ProcessingEndTime", _processing_facts,
                        _processing_outputs)
TRANSFORM = TrackedJob(kinds.TRANSFORM_JOB, "-aws-transform-job", "SageMakerTransformJob",
                       "TransformJobStatus", "TransformEndTime", _transform_facts,
                       _transform_outputs)


def component_name(job: str, tracked: TrackedJob = TRAINING) -> str:
    return f"{job}{tracked.suffix}"


def pipeline_execution(ctx: Context, row: Resource) -> str | None:
    """The ARN of the pipeline execution that created ``row`` (its tag), if any."""
    tags, _ = ctx.resources.list_tags(row.arn)
    return next((t["Value"] for t in tags if t["Key"] == PIPELINE_EXECUTION_TAG), None)


class _Recorder:
    def __init__(self, ctx: Context, experiments: ExperimentService,
                 lineage: LineageService) -> None:
        self.ctx = ctx
        self.experiments = experiments
        self.lineage = lineage

    def contributes(self, data: Data, destination_arn: str,
                    artifact_name: str | None = None) -> str:
        params: Body = {"ArtifactType": data.artifact_type, "Source": {"SourceUri": data.uri}}
        if artifact_name:
            params["ArtifactName"] = artifact_name[:120]
        artifact = self.lineage.create_artifact(params, exist_ok=True)
        self.lineage.add_association(artifact, destination_arn, "ContributedTo",
                                     exist_ok=True)
        return artifact

    def execution_context(self, execution_arn: str) -> str | None:
        """The lineage context of a pipeline execution (made on first use)."""
        execution_id = execution_arn.rsplit("/", 1)[-1]
        name = f"sagemaker-pipeline-execution-{execution_id}"
        try:
            return self.lineage.create_named(kinds.CONTEXT, {
                "ContextName": name, "ContextType": "PipelineExecution",
                "Source": {"SourceUri": execution_arn}}, exist_ok=True)
        except AwsError as err:
            log.warning("pipeline execution %s: no lineage context (%s)", execution_arn, err)
            return None


class JobTracker(_Recorder):
    """One kind of job's trial component and lineage (training, processing, transform)."""

    def __init__(self, ctx: Context, experiments: ExperimentService,
                 lineage: LineageService, tracked: TrackedJob = TRAINING) -> None:
        super().__init__(ctx, experiments, lineage)
        self.tracked = tracked

    def job_created(self, event: JobEvent) -> None:
        tracked = self.tracked
        job = self.ctx.resources.get(tracked.kind.name, event.name)
        if job is None:
            return
        body = job.body
        config = dict(body.get("ExperimentConfig") or {})
        name = component_name(job.name, tracked)
        facts = tracked.facts(self.ctx, body)
        inputs = {d.name: {"Value": d.uri, **({"MediaType": d.media_type}
                                             if d.media_type else {})} for d in facts.inputs}
        try:
            arn = self.experiments.create_trial_component(
                {"TrialComponentName": name,
                 "DisplayName": config.get("TrialComponentDisplayName") or name,
                 "Status": {"PrimaryStatus": "InProgress", "Message": "Status: InProgress"},
                 "StartTime": job.creation_time,
                 "Parameters": {k: _value(v) for k, v in facts.parameters.items()
                                if v is not None},
                 "InputArtifacts": inputs},
                source={"SourceArn": job.arn, "SourceType": tracked.source_type})
        except AwsError as err:
            log.warning("%s %s: no trial component (%s)", tracked.kind.name, job.name, err)
            return
        for data in facts.inputs:
            self.contributes(data, arn, f"{job.name}-{data.name}")
        if facts.image:
            self.contributes(Data("image", facts.image, "Image"), arn)
        execution = pipeline_execution(self.ctx, job)
        if execution is not None:
            context = self.execution_context(execution)
            if context is not None:
                self.lineage.add_association(arn, context, "AssociatedWith", exist_ok=True)
        self._join(job.name, name, config, create_experiment=execution is not None)

    def job_ended(self, event: JobEvent) -> None:
        tracked = self.tracked
        job = self.ctx.resources.get(tracked.kind.name, event.name)
        name = component_name(event.name, tracked)
        tc = self.ctx.resources.get(kinds.TRIAL_COMPONENT.name, name)
        if job is None or tc is None:
            return
        body = job.body
        status = TrialComponentStatus(body[tracked.status_field])
        outputs = tracked.outputs(body)
        now = self.ctx.now()

        def change(doc: Body) -> None:
            secondary = body.get("SecondaryStatus")
            message = body.get("FailureReason") or (
                f"Status: {status}, secondary status: {secondary}" if secondary
                else f"Status: {status}")
            doc["Status"] = {"PrimaryStatus": str(status), "Message": message[:1024]}
            doc["EndTime"] = body.get(tracked.end_field) or now
            for data in outputs:
                doc.setdefault("OutputArtifacts", {})[data.name] = {"Value": data.uri}
            doc["LastModifiedTime"] = now

        if tc.status != status:
            self.ctx.resources.transition(kinds.TRIAL_COMPONENT.name, name, sources(status),
                                          status, change, now=now)
        if tracked.metrics:
            points = []
            for metric in body.get("FinalMetricDataList") or []:
                series = self.ctx.metrics.series(TRAINING_NAMESPACE, metric["MetricName"],
                                                 {"TrainingJobName": job.name}, 0.0, math.inf)
                points += [(metric["MetricName"], p.timestamp, p.value, None) for p in series]
            if points:
                self.experiments.fold_metrics(name, points, source_arn=job.arn)
        if status == TrialComponentStatus.COMPLETED:
            for data in outputs:
                params: Body = {"ArtifactType": data.artifact_type,
                                "Source": {"SourceUri": data.uri}}
                if data.artifact_type == "Model":
                    params["ArtifactName"] = f"{job.name}-model"[:120]
                artifact = self.lineage.create_artifact(params, exist_ok=True)
                self.lineage.add_association(tc.arn, artifact, "Produced", exist_ok=True)

    def _join(self, job: str, component: str, config: Body, *,
              create_experiment: bool) -> None:
        """The component joins the ExperimentConfig's trial (made in its experiment when it
        does not exist; a pipeline's experiment too), and the run's component when the job
        ran inside a ``Run``."""
        experiment_name = config.get("ExperimentName")
        if not experiment_name:
            return
        try:
            experiment = self.ctx.resources.get(kinds.EXPERIMENT.name, experiment_name)
            if experiment is None and create_experiment:
                self.experiments.create_experiment({"ExperimentName": experiment_name})
                experiment = self.ctx.resources.get(kinds.EXPERIMENT.name, experiment_name)
            if experiment is None:
                log.warning("job %s: experiment %s does not exist", job, experiment_name)
                return
            trial = config.get("TrialName") or component
            if self.ctx.resources.get(kinds.TRIAL.name, trial) is None:
                self.experiments.create_trial({"TrialName": trial,
                                               "ExperimentName": experiment.name})
            self.experiments.associate(component, trial)
            run = config.get("RunName")
            if run and self.ctx.resources.get(kinds.TRIAL_COMPONENT.name, run) is not None:
                self.lineage.add_association(
                    crud.arn_of(self.ctx, kinds.TRIAL_COMPONENT, component),
                    crud.arn_of(self.ctx, kinds.TRIAL_COMPONENT, run), "ContributedTo",
                    exist_ok=True)
        except AwsError as err:
            log.warning("job %s: not associated with experiment %s (%s)", job,
                        experiment_name, err)


class PackageTracker(_Recorder):
    """A registered model's lineage: its model data and images, its group's context."""

    def package_created(self, event: JobEvent) -> None:
        row = self.ctx.resources.get(kinds.MODEL_PACKAGE.name, event.name)
        if row is None:
            return
        body = row.body
        package = self.lineage.create_artifact({
            "ArtifactName": row.name.replace("/", "-")[:120], "ArtifactType": "ModelPackage",
            "Source": {"SourceUri": row.arn}}, exist_ok=True)
        for container in (body.get("InferenceSpecification") or {}).get("Containers") or []:
            if container.get("ModelDataUrl"):
                self.contributes(Data("model", container["ModelDataUrl"], "Model"), package)
            if container.get("Image"):
                self.contributes(Data("image", container["Image"], "Image"), package)
        execution = pipeline_execution(self.ctx, row)
        if execution is not None:
            context = self.execution_context(execution)
            if context is not None:
                self.lineage.add_association(package, context, "AssociatedWith",
                                             exist_ok=True)
        group_name = body.get("ModelPackageGroupName")
        group = self.ctx.resources.get(kinds.MODEL_PACKAGE_GROUP.name, str(group_name))
        if not group_name or group is None:
            return
        properties = {"PipelineExecutionArn": execution} if execution else {}
        name = f"{group.name}-aws-model-package-group"[:120].rstrip("-")
        try:
            context = self.lineage.create_named(kinds.CONTEXT, {
                "ContextName": name, "ContextType": "ModelGroup",
                "Source": {"SourceUri": group.arn}, "Properties": properties}, exist_ok=True)
            if properties:
                self.lineage.update_named(kinds.CONTEXT, {"ContextName": name,
                                                          "Properties": properties})
            self.lineage.add_association(package, context, "AssociatedWith", exist_ok=True)
        except AwsError as err:
            log.warning("model package %s: no group context (%s)", row.name, err)
