"""What a tuning job's trials add up to, as AWS reports it: the counters, the best job and
the completion details of ``DescribeHyperParameterTuningJob``, and the pages of
``ListTrainingJobsForHyperParameterTuningJob``.

Trials come from the store as :class:`TuningTrial` rows and are shown as trial documents
(the AWS names of their fields, see :func:`trial_document`); a warm start's parent trials
are kept as such documents already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opensage.services.tuning import completion
from opensage.services.tuning.states import TRIAL_TERMINAL, ObjectiveStatus, TrialStatus
from opensage.store import pagination
from opensage.store.trials import TuningTrial

# A search that has produced no objective after this many failed children gives up.
MAX_FAILURES_WITHOUT_SUCCESS = 3


# -- the trials, counted --------------------------------------------------------------------
def ended(trial: TuningTrial) -> bool:
    return trial.status in TRIAL_TERMINAL


def running(trials: Sequence[TuningTrial]) -> int:
    return sum(not ended(t) for t in trials)


def counted(trials: Sequence[TuningTrial]) -> list[TuningTrial]:
    """The trials that count against MaxNumberOfTrainingJobs: a retried trial's point counts
    once (its retry)."""
    return [t for t in trials if not t.retried]


def give_up(trials: Sequence[TuningTrial], max_jobs: int) -> bool:
    """No objective yet and too many failures: the definition itself is broken."""
    if any(t.objective_status == ObjectiveStatus.SUCCEEDED for t in trials):
        return False
    failed = sum(t.objective_status == ObjectiveStatus.FAILED for t in counted(trials))
    return failed >= min(MAX_FAILURES_WITHOUT_SUCCESS, max_jobs)


def retryable(trial: TuningTrial) -> bool:
    """AWS: "A failed training job can be retried only if it failed because an internal
    service error occurred" (opensage's ``InternalServerError: ...`` reasons: the runner or
    the server failed, not the job's definition, data or code)."""
    return (trial.status == TrialStatus.FAILED
            and (trial.failure_reason or "").startswith("InternalServerError"))


def scored(trials: Sequence[TuningTrial]) -> list[float]:
    """The objective values of the scored trials, in the order they ended."""
    found = [t for t in trials if t.objective_status == ObjectiveStatus.SUCCEEDED
             and t.objective is not None]
    found.sort(key=lambda t: (t.training_end_time or 0.0, t.training_job_name))
    return [t.objective for t in found if t.objective is not None]


def first_failure(trials: Sequence[TuningTrial]) -> str:
    for trial in trials:
        if trial.failure_reason:
            return f"{trial.training_job_name}: {trial.failure_reason}"
    return "no child job reported it"


# -- documents ------------------------------------------------------------------------------
def trial_document(trial: TuningTrial) -> dict[str, Any]:
    """A trial with the AWS names of its fields (what summaries and warm starts read)."""
    document: dict[str, Any] = {
        "TrainingJobName": trial.training_job_name, "TrainingJobArn": trial.training_job_arn,
        "TunedHyperParameters": dict(trial.tuned_hyperparameters),
        "TrainingJobStatus": trial.status, "ObjectiveStatus": trial.objective_status,
        "CreationTime": trial.creation_time}
    optional = {"TrainingJobDefinitionName": trial.definition_name,
                "Objective": trial.objective, "FailureReason": trial.failure_reason,
                "TrainingStartTime": trial.training_start_time,
                "TrainingEndTime": trial.training_end_time}
    document.update({k: v for k, v in optional.items() if v is not None})
    return document


def definition_of(body: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """The (described) training job definition a trial's child was made from."""
    name = trial.get("TrainingJobDefinitionName")
    for job in body.get("TrainingJobDefinitions") or []:
        if job.get("DefinitionName") == name:
            return dict(job)
    return dict(body["TrainingJobDefinition"])


def objective_of(body: dict[str, Any], trial: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trial's objective: its definition's TuningObjective, else the tuning job's."""
    config_objective = body["HyperParameterTuningJobConfig"].get(
        "HyperParameterTuningJobObjective")
    definitions = body.get("TrainingJobDefinitions") or []
    if trial is not None and definitions and trial.get("TrainingJobDefinitionName"):
        found = definition_of(body, trial).get("TuningObjective")
        if found:
            return dict(found)
    if config_objective:
        return dict(config_objective)
    return dict(definitions[0].get("TuningObjective") or {})


def summarise(body: dict[str, Any], state: dict[str, Any], trials: Sequence[TuningTrial],
              now: float) -> None:
    """Counters, best job, completion details and consumed time, derived from the trials
    (stored with the row so that List and Search see them too)."""
    documents = [trial_document(t) for t in trials]
    status = [t.status for t in trials]
    retryable_errors = sum(retryable(t) for t in trials)
    body["TrainingJobStatusCounters"] = {
        "Completed": status.count(TrialStatus.COMPLETED),
        "InProgress": running(trials),
        "RetryableError": retryable_errors,
        "NonRetryableError": status.count(TrialStatus.FAILED) - retryable_errors,
        "Stopped": status.count(TrialStatus.STOPPED)}
    objective = [t.objective_status for t in trials]
    body["ObjectiveStatusCounters"] = {str(k): objective.count(k) for k in ObjectiveStatus}
    best = best_trial(body, documents)
    if best is not None:
        body["BestTrainingJob"] = training_job_summary(body, best)
    if body.get("WarmStartConfig"):
        overall = best_trial(body, [*documents, *(state.get("ParentTrials") or [])])
        if overall is not None:
            body["OverallBestTrainingJob"] = training_job_summary(body, overall)
    values = scored(trials)
    details: dict[str, Any] = {}
    if values:
        details["NumberOfTrainingJobsObjectiveNotImproving"] = completion.not_improving(
            values, objective_of(body).get("Type", "Minimize"))
    if state.get("ConvergenceDetectedTime"):
        details["ConvergenceDetectedTime"] = state["ConvergenceDetectedTime"]
    if details:
        body["TuningJobCompletionDetails"] = details
    end = body.get("HyperParameterTuningEndTime") or now
    body["ConsumedResources"] = {"RuntimeInSeconds": max(0, round(end - body["CreationTime"]))}


def best_trial(body: dict[str, Any], documents: Sequence[dict[str, Any]]
               ) -> dict[str, Any] | None:
    """The best of the trial documents (a warm start's parent trials among them, maybe)."""
    found = [t for t in documents if t["ObjectiveStatus"] == ObjectiveStatus.SUCCEEDED]
    if not found:
        return None
    sign = -1 if objective_of(body)["Type"] == "Maximize" else 1
    return min(found, key=lambda t: sign * float(t["Objective"]))


def training_job_summary(body: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """A ``HyperParameterTrainingJobSummary`` (the shape of BestTrainingJob too)."""
    objective = objective_of(body, trial)
    summary = {k: trial.get(k) for k in (
        "TrainingJobDefinitionName", "TrainingJobName", "TrainingJobArn", "CreationTime",
        "TrainingStartTime", "TrainingEndTime", "TrainingJobStatus", "TunedHyperParameters",
        "FailureReason", "ObjectiveStatus")}
    summary["TuningJobName"] = trial.get("TuningJobName") or body["HyperParameterTuningJobName"]
    if trial.get("Objective") is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"], "MetricName": objective["MetricName"],
            "Value": trial["Objective"]}
    return summary


# -- ListTrainingJobsForHyperParameterTuningJob ---------------------------------------------
_SORT_KEYS = {"Name": "TrainingJobName", "CreationTime": "CreationTime",
              "Status": "TrainingJobStatus", "FinalObjectiveMetricValue": "Objective"}
DEFAULT_MAX_RESULTS = 10


def training_job_summaries(body: dict[str, Any], trials: Sequence[TuningTrial],
                           params: dict[str, Any]) -> dict[str, Any]:
    """The trials as summaries: status filter, sort (Name by default, Ascending), keyset pages
    whose opaque token carries the last row's sort key and name."""
    name = body["HyperParameterTuningJobName"]
    sort_by = params.get("SortBy") or "Name"
    descending = (params.get("SortOrder") or "Ascending") == "Descending"
    status = params.get("StatusEquals")
    key = _SORT_KEYS[sort_by]
    documents = [d for d in map(trial_document, trials)
                 if (status is None or d["TrainingJobStatus"] == status)
                 and d.get(key) is not None]
    keyed = sorted(((d[key], d["TrainingJobName"], d) for d in documents),
                   key=lambda k: (k[0], k[1]), reverse=descending)
    page, token = pagination.page(
        keyed, lambda k: (k[0], k[1]), token=params.get("NextToken"),
        query=("TrainingJobsForTuningJob", name.lower(), sort_by, descending, status or ""),
        limit=params.get("MaxResults") or DEFAULT_MAX_RESULTS, descending=descending)
    return {"TrainingJobSummaries": [training_job_summary(body, d) for _, _, d in page],
            "NextToken": token}
