"""SageMaker Experiments (experiments, trials, trial components, their metrics) and ML
lineage (artifacts, actions, contexts, associations, QueryLineage), and what jobs record in
them (``tracking``)."""

from opensage.services.experiments.lineage import LineageService
from opensage.services.experiments.service import ExperimentService
from opensage.services.experiments.tracking import (
    PROCESSING,
    TRAINING,
    TRANSFORM,
    JobTracker,
    PackageTracker,
)

__all__ = ["PROCESSING", "TRAINING", "TRANSFORM", "ExperimentService", "JobTracker",
           "LineageService", "PackageTracker"]
