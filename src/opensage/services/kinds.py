"""SageMaker resource kinds: their ARN resource type and how AWS words a missing one."""

from __future__ import annotations

from dataclasses import dataclass

from opensage.errors import ResourceNotFound, ValidationException


@dataclass(frozen=True)
class Kind:
    name: str  # the ARN resource type: arn:aws:sagemaker:<region>:<account>:<name>/<id>
    missing: str  # the message AWS answers when it does not exist; {arn} and {name} filled in
    missing_error: type[Exception] = ValidationException

    def not_found(self, arn: str, name: str) -> Exception:
        return self.missing_error(self.missing.format(arn=arn, name=name))


MODEL = Kind("model", 'Could not find model "{arn}".')
ENDPOINT_CONFIG = Kind("endpoint-config", 'Could not find endpoint configuration "{arn}".')
ENDPOINT = Kind("endpoint", 'Could not find endpoint "{arn}".')
TRAINING_JOB = Kind("training-job", "Requested resource not found.")
TRANSFORM_JOB = Kind("transform-job", "Could not find requested job with name {name}")
PROCESSING_JOB = Kind("processing-job", "Could not find requested job with name {name}")
TUNING_JOB = Kind("hyper-parameter-tuning-job", "Amazon SageMaker can't find a tuning job "
                  "with name {name}", ResourceNotFound)
EXPERIMENT = Kind("experiment", "Experiment '{arn}' does not exist.", ResourceNotFound)
TRIAL = Kind("experiment-trial", "Trial '{arn}' does not exist.", ResourceNotFound)
TRIAL_COMPONENT = Kind("experiment-trial-component", "TrialComponent '{arn}' does not exist.",
                       ResourceNotFound)
ARTIFACT = Kind("artifact", "Artifact '{arn}' does not exist.", ResourceNotFound)
ACTION = Kind("action", "Action '{arn}' does not exist.", ResourceNotFound)
CONTEXT = Kind("context", "Context '{arn}' does not exist.", ResourceNotFound)
MODEL_PACKAGE_GROUP = Kind("model-package-group", "ModelPackageGroup {arn} does not exist.")
MODEL_PACKAGE = Kind("model-package", "ModelPackage {arn} does not exist.")
ALGORITHM = Kind("algorithm", 'Could not find algorithm "{arn}".')

PIPELINE = Kind("pipeline", "Pipeline '{arn}' does not exist.", ResourceNotFound)
PIPELINE_EXECUTION = Kind("pipeline-execution", "Pipeline execution '{arn}' does not exist.",
                          ResourceNotFound)

ALL = {k.name: k for k in (MODEL, ENDPOINT_CONFIG, ENDPOINT, TRAINING_JOB, TRANSFORM_JOB,
                           PROCESSING_JOB, TUNING_JOB, EXPERIMENT, TRIAL, TRIAL_COMPONENT,
                           ARTIFACT, ACTION, CONTEXT, MODEL_PACKAGE_GROUP, MODEL_PACKAGE,
                           ALGORITHM, PIPELINE, PIPELINE_EXECUTION)}
