"""What AWS records for a training job in Experiments and lineage, as listeners of the
training service (subscribed in ``services.wiring``):

- at creation, a trial component ``<job>-aws-training-job`` (``Source`` the job's ARN,
  type ``SageMakerTrainingJob``; parameters the hyperparameters and the job's instance
  settings; input artifacts its channels), dataset artifacts for its S3 channels and an
  image artifact, each ``ContributedTo`` the component; with an ``ExperimentConfig`` the
  component joins the trial (created in the experiment when missing), and with a
  ``RunName`` (a job started inside ``sagemaker.experiments.Run``) it is also associated
  with the run's component (``ContributedTo``);
- at its end, the component's status, end time, metric summaries (from the job's metric
  series) and model output, and a model artifact the component ``Produced``.

Transform and processing jobs are not tracked yet.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from opensage.errors import AwsError
from opensage.services import crud, kinds
from opensage.services.context import Context
from opensage.services.experiments.lineage import LineageService
from opensage.services.experiments.service import ExperimentService
from opensage.services.experiments.states import TrialComponentStatus, sources
from opensage.services.metrics import TRAINING_NAMESPACE
from opensage.services.training.events import TrainingJobCreated, TrainingJobEnded

log = logging.getLogger(__name__)
Body = dict[str, Any]
SUFFIX = "-aws-training-job"
SOURCE_TYPE = "SageMakerTrainingJob"


def component_name(job: str) -> str:
    return f"{job}{SUFFIX}"


def _parameter(value: str) -> Body:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return {"StringValue": str(value)}
    return {"NumberValue": number} if math.isfinite(number) else {"StringValue": str(value)}


class TrainingTracker:
    def __init__(self, ctx: Context, experiments: ExperimentService,
                 lineage: LineageService) -> None:
        self.ctx = ctx
        self.experiments = experiments
        self.lineage = lineage

    def job_created(self, event: TrainingJobCreated) -> None:
        job = self.ctx.resources.get(kinds.TRAINING_JOB.name, event.name)
        if job is None:
            return
        body = job.body
        config = body.get("ExperimentConfig") or {}
        name = component_name(job.name)
        resources = body.get("ResourceConfig") or {}
        algorithm = body.get("AlgorithmSpecification") or {}
        parameters = {k: _parameter(v) for k, v in (body.get("HyperParameters") or {}).items()}
        for key, value in (("SageMaker.InstanceType", resources.get("InstanceType")),
                           ("SageMaker.InstanceCount", resources.get("InstanceCount")),
                           ("SageMaker.VolumeSizeInGB", resources.get("VolumeSizeInGB")),
                           ("SageMaker.ImageUri", algorithm.get("TrainingImage"))):
            if value is not None:
                parameters[key] = ({"NumberValue": float(value)} if isinstance(value, int)
                                   else {"StringValue": str(value)})
        inputs = {}
        for channel in body.get("InputDataConfig") or []:
            uri = ((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
            if uri:
                inputs[channel["ChannelName"]] = {"Value": uri, **(
                    {"MediaType": channel["ContentType"]} if channel.get("ContentType") else {})}
        try:
            arn = self.experiments.create_trial_component(
                {"TrialComponentName": name,
                 "DisplayName": config.get("TrialComponentDisplayName") or name,
                 "Status": {"PrimaryStatus": "InProgress", "Message": "Status: InProgress"},
                 "StartTime": job.creation_time, "Parameters": parameters,
                 "InputArtifacts": inputs},
                source={"SourceArn": job.arn, "SourceType": SOURCE_TYPE})
        except AwsError as err:
            log.warning("training job %s: no trial component (%s)", job.name, err)
            return
        for channel, artifact in inputs.items():
            self._contributes(artifact["Value"], "DataSet", arn, f"{job.name}-{channel}")
        if algorithm.get("TrainingImage"):
            self._contributes(algorithm["TrainingImage"], "Image", arn, None)
        self._join(job.name, name, config)

    def job_ended(self, event: TrainingJobEnded) -> None:
        job = self.ctx.resources.get(kinds.TRAINING_JOB.name, event.name)
        name = component_name(event.name)
        tc = self.ctx.resources.get(kinds.TRIAL_COMPONENT.name, name)
        if job is None or tc is None:
            return
        body = job.body
        status = TrialComponentStatus(body["TrainingJobStatus"])
        model = (body.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        now = self.ctx.now()

        def change(doc: Body) -> None:
            message = body.get("FailureReason") or f"Status: {status}, secondary status: " \
                f"{body.get('SecondaryStatus', status)}"
            doc["Status"] = {"PrimaryStatus": str(status), "Message": message[:1024]}
            doc["EndTime"] = body.get("TrainingEndTime") or now
            if model:
                doc.setdefault("OutputArtifacts", {})["SageMaker.ModelArtifact"] = {
                    "Value": model}
            doc["LastModifiedTime"] = now

        if tc.status != status:
            self.ctx.resources.transition(kinds.TRIAL_COMPONENT.name, name, sources(status),
                                          status, change, now=now)
        points = []
        for metric in body.get("FinalMetricDataList") or []:
            series = self.ctx.metrics.series(TRAINING_NAMESPACE, metric["MetricName"],
                                             {"TrainingJobName": job.name}, 0.0, math.inf)
            points += [(metric["MetricName"], p.timestamp, p.value, None) for p in series]
        if points:
            self.experiments.fold_metrics(name, points, source_arn=job.arn)
        if model and status == TrialComponentStatus.COMPLETED:
            artifact = self.lineage.create_artifact(
                {"ArtifactName": f"{job.name}-model", "ArtifactType": "Model",
                 "Source": {"SourceUri": model}}, exist_ok=True)
            self.lineage.add_association(tc.arn, artifact, "Produced", exist_ok=True)

    # -- helpers ---------------------------------------------------------------------------
    def _contributes(self, uri: str, artifact_type: str, component_arn: str,
                     artifact_name: str | None) -> None:
        params: Body = {"ArtifactType": artifact_type, "Source": {"SourceUri": uri}}
        if artifact_name:
            params["ArtifactName"] = artifact_name[:120]
        artifact = self.lineage.create_artifact(params, exist_ok=True)
        self.lineage.add_association(artifact, component_arn, "ContributedTo", exist_ok=True)

    def _join(self, job: str, component: str, config: Body) -> None:
        """The component joins the ExperimentConfig's trial (made in its experiment when it
        does not exist), and the run's component when the job ran inside a ``Run``."""
        experiment_name = config.get("ExperimentName")
        if not experiment_name:
            return
        experiment = self.ctx.resources.get(kinds.EXPERIMENT.name, experiment_name)
        if experiment is None:
            log.warning("training job %s: experiment %s does not exist", job, experiment_name)
            return
        trial = config.get("TrialName") or component
        try:
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
            log.warning("training job %s: not associated with trial %s (%s)", job, trial, err)
