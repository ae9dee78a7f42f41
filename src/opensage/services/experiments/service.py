"""Experiments, trials and trial components (SageMaker Experiments), and the metrics
``sagemaker-metrics`` records for them.

Each is a resource row (``services.crud``); a trial component's trials are rows of
``trial_memberships`` (``store.lineage``), its metric points rows of ``metric_data`` (with
their step) and its metric summaries part of its document, updated with every batch as one
compare-and-set. Errors are worded as AWS words them: a missing resource is
``ResourceNotFound`` "<Kind> '<arn>' does not exist.", a duplicate a ``ValidationException``
saying it "already exists" (the SDK's ``Run`` relies on that phrase to load instead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from opensage.errors import ResourceNotFound, ValidationException
from opensage.services import crud, kinds
from opensage.services.context import Context
from opensage.services.experiments import metrics as summaries
from opensage.services.experiments.states import TrialComponentStatus, sources
from opensage.store import pagination
from opensage.store.lineage import LineageStore
from opensage.store.resources import AlreadyExists, BodyPath, ListQuery, Resource

Body = dict[str, Any]
MAX_PARAMETERS = 300
MAX_ARTIFACTS = 60
_ANY_STATUS: tuple[str | None, ...] = (None, *TrialComponentStatus)


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value)


class ExperimentService:
    def __init__(self, ctx: Context, lineage: LineageStore) -> None:
        self.ctx = ctx
        self.lineage = lineage

    # -- experiments -----------------------------------------------------------------------
    def create_experiment(self, params: Body) -> str:
        name = params["ExperimentName"]
        now = self.ctx.now()
        body = {"ExperimentName": name, "ExperimentArn": crud.arn_of(self.ctx, kinds.EXPERIMENT,
                                                                     name),
                "DisplayName": params.get("DisplayName") or name, "CreationTime": now,
                "CreatedBy": {}, "LastModifiedTime": now, "LastModifiedBy": {}}
        if params.get("Description") is not None:
            body["Description"] = params["Description"]
        return self._create(kinds.EXPERIMENT, "Experiment", name, body, params).arn

    def describe_experiment(self, name: str) -> Body:
        return crud.load(self.ctx, kinds.EXPERIMENT, name).body

    def update_experiment(self, params: Body) -> str:
        return self._update(kinds.EXPERIMENT, params["ExperimentName"], params,
                            ("DisplayName", "Description")).arn

    def delete_experiment(self, name: str) -> str:
        experiment = crud.load(self.ctx, kinds.EXPERIMENT, name)
        if self._trial_names(experiment.name):
            raise ValidationException(
                f"Experiment '{experiment.arn}' has trials associated with it: all trials "
                "associated with the experiment must be deleted first.")
        crud.remove(self.ctx, kinds.EXPERIMENT, experiment.name)
        return experiment.arn

    def list_experiments(self, params: Body) -> Body:
        rows, token = self._list(kinds.EXPERIMENT, params)
        return {"ExperimentSummaries": [_pick(r.body, {
            "ExperimentArn": "ExperimentArn", "ExperimentName": "ExperimentName",
            "DisplayName": "DisplayName", "ExperimentSource": "Source",
            "CreationTime": "CreationTime", "LastModifiedTime": "LastModifiedTime"})
            for r in rows], "NextToken": token}

    # -- trials ----------------------------------------------------------------------------
    def create_trial(self, params: Body) -> str:
        experiment = crud.load(self.ctx, kinds.EXPERIMENT, params["ExperimentName"])
        name = params["TrialName"]
        now = self.ctx.now()
        body = {"TrialName": name, "TrialArn": crud.arn_of(self.ctx, kinds.TRIAL, name),
                "DisplayName": params.get("DisplayName") or name,
                "ExperimentName": experiment.name, "CreationTime": now, "CreatedBy": {},
                "LastModifiedTime": now, "LastModifiedBy": {}}
        if params.get("MetadataProperties"):
            body["MetadataProperties"] = params["MetadataProperties"]
        return self._create(kinds.TRIAL, "Trial", name, body, params).arn

    def describe_trial(self, name: str) -> Body:
        return crud.load(self.ctx, kinds.TRIAL, name).body

    def update_trial(self, params: Body) -> str:
        return self._update(kinds.TRIAL, params["TrialName"], params, ("DisplayName",)).arn

    def delete_trial(self, name: str) -> str:
        trial = crud.load(self.ctx, kinds.TRIAL, name)
        if self.lineage.count_members(trial.name):
            raise ValidationException(
                f"Trial '{trial.arn}' has trial components associated with it: all trial "
                "components that make up the trial must be disassociated or deleted first.")
        crud.remove(self.ctx, kinds.TRIAL, trial.name)
        return trial.arn

    def list_trials(self, params: Body) -> Body:
        experiment, component = params.get("ExperimentName"), params.get("TrialComponentName")
        if experiment and component:
            raise ValidationException("ListTrials accepts ExperimentName or TrialComponentName, "
                                      "not both.")
        if experiment:
            exp = crud.load(self.ctx, kinds.EXPERIMENT, experiment)
            rows, token = self._list(kinds.TRIAL, params, names=self._trial_names(exp.name))
        elif component:
            tc = self.ctx.resources.get(kinds.TRIAL_COMPONENT.name, component)
            names = [m.trial_name for m in self.lineage.memberships(component=tc.name)] \
                if tc else []
            rows, token = self._list(kinds.TRIAL, params, names=names)
        else:
            rows, token = self._list(kinds.TRIAL, params)
        return {"TrialSummaries": [_pick(r.body, {
            "TrialArn": "TrialArn", "TrialName": "TrialName", "DisplayName": "DisplayName",
            "TrialSource": "Source", "CreationTime": "CreationTime",
            "LastModifiedTime": "LastModifiedTime"}) for r in rows], "NextToken": token}

    # -- trial components ------------------------------------------------------------------
    def create_trial_component(self, params: Body, *, source: Body | None = None,
                               internal: Body | None = None) -> str:
        name = params["TrialComponentName"]
        now = self.ctx.now()
        body: Body = {"TrialComponentName": name,
                      "TrialComponentArn": crud.arn_of(self.ctx, kinds.TRIAL_COMPONENT, name),
                      "DisplayName": params.get("DisplayName") or name,
                      "CreationTime": now, "CreatedBy": {}, "LastModifiedTime": now,
                      "LastModifiedBy": {},
                      "Parameters": dict(params.get("Parameters") or {}),
                      "InputArtifacts": dict(params.get("InputArtifacts") or {}),
                      "OutputArtifacts": dict(params.get("OutputArtifacts") or {}),
                      "Metrics": [], "Sources": [source] if source else []}
        if source:
            body["Source"] = source
        for key in ("StartTime", "EndTime"):
            if params.get(key) is not None:
                body[key] = _seconds(params[key])
        if params.get("MetadataProperties"):
            body["MetadataProperties"] = params["MetadataProperties"]
        status = params.get("Status")
        if status:
            body["Status"] = dict(status)
        _check_limits(body)
        return self._create(kinds.TRIAL_COMPONENT, "TrialComponent", name, body, params,
                            status=(status or {}).get("PrimaryStatus"),
                            internal=internal).arn

    def describe_trial_component(self, name: str) -> Body:
        return crud.load(self.ctx, kinds.TRIAL_COMPONENT, name).body

    def update_trial_component(self, params: Body) -> str:
        name = params["TrialComponentName"]
        found = self.ctx.resources.get(kinds.TRIAL_COMPONENT.name, name) or \
            self.ctx.resources.get_by_arn(crud.arn_of(self.ctx, kinds.TRIAL_COMPONENT, name))
        if found is None:
            raise ValidationException("Could not find trial component "
                                      f"'{crud.arn_of(self.ctx, kinds.TRIAL_COMPONENT, name)}'")
        now = self.ctx.now()

        def change(body: Body) -> None:
            if params.get("DisplayName") is not None:
                body["DisplayName"] = params["DisplayName"]
            if params.get("Status"):
                body["Status"] = {**(body.get("Status") or {}), **params["Status"]}
            for key in ("StartTime", "EndTime"):
                if params.get(key) is not None:
                    body[key] = _seconds(params[key])
            for key in ("Parameters", "InputArtifacts", "OutputArtifacts"):
                current = dict(body.get(key) or {})
                current.update(params.get(key) or {})
                for removed in params.get(f"{key}ToRemove") or []:
                    current.pop(removed, None)
                body[key] = current
            _check_limits(body)
            body["LastModifiedTime"] = now

        target = (params.get("Status") or {}).get("PrimaryStatus")
        if target and target != found.status:
            self.ctx.resources.transition(kinds.TRIAL_COMPONENT.name, found.name,
                                          sources(TrialComponentStatus(target)), target,
                                          change, now=now)
        else:
            self.ctx.resources.edit(kinds.TRIAL_COMPONENT.name, found.name, _ANY_STATUS,
                                    change, now=now)
        return found.arn

    def delete_trial_component(self, name: str) -> str:
        tc = crud.load(self.ctx, kinds.TRIAL_COMPONENT, name)
        if self.lineage.memberships(component=tc.name):
            raise ValidationException(
                f"TrialComponent '{tc.arn}' is associated with trials: a trial component must "
                "be disassociated from all trials before it can be deleted.")
        crud.remove(self.ctx, kinds.TRIAL_COMPONENT, tc.name)
        self.lineage.remove_touching(tc.arn)
        self.ctx.metrics.forget_trial_component(tc.name)
        return tc.arn

    def list_trial_components(self, params: Body) -> Body:
        given = [k for k in ("ExperimentName", "TrialName", "SourceArn") if params.get(k)]
        if len(given) > 1:
            raise ValidationException("ListTrialComponents accepts only one of ExperimentName, "
                                      f"TrialName and SourceArn; got {', '.join(given)}.")
        names: list[str] | None = None
        if params.get("ExperimentName"):
            exp = crud.load(self.ctx, kinds.EXPERIMENT, params["ExperimentName"])
            names = [m.component_name for m in self.lineage.memberships(experiment=exp.name)]
        elif params.get("TrialName"):
            trial = crud.load(self.ctx, kinds.TRIAL, params["TrialName"])
            names = [m.component_name for m in self.lineage.memberships(trial=trial.name)]
        elif params.get("SourceArn"):
            names = self.components_of_source(params["SourceArn"])
        rows, token = self._list(kinds.TRIAL_COMPONENT, params, names=names)
        return {"TrialComponentSummaries": [_pick(r.body, {
            "TrialComponentName": "TrialComponentName",
            "TrialComponentArn": "TrialComponentArn", "DisplayName": "DisplayName",
            "TrialComponentSource": "Source", "Status": "Status", "StartTime": "StartTime",
            "EndTime": "EndTime", "CreationTime": "CreationTime", "CreatedBy": "CreatedBy",
            "LastModifiedTime": "LastModifiedTime", "LastModifiedBy": "LastModifiedBy"})
            for r in rows], "NextToken": token}

    def components_of_source(self, source_arn: str) -> list[str]:
        projected = self.ctx.resources.project(kinds.TRIAL_COMPONENT.name,
                                               [BodyPath(("Source", "SourceArn"))],
                                               present=[0])
        return [p.name for p in projected if p.values[0] == source_arn]

    # -- memberships -----------------------------------------------------------------------
    def associate(self, component: str, trial: str) -> Body:
        trial_row = crud.load(self.ctx, kinds.TRIAL, trial)
        tc = crud.load(self.ctx, kinds.TRIAL_COMPONENT, component)
        self.lineage.join(trial_row.name, tc.name, trial_row.body["ExperimentName"],
                          self.ctx.now())
        return {"TrialComponentArn": tc.arn, "TrialArn": trial_row.arn}

    def disassociate(self, component: str, trial: str) -> Body:
        trial_row = crud.load(self.ctx, kinds.TRIAL, trial)
        tc = crud.load(self.ctx, kinds.TRIAL_COMPONENT, component)
        self.lineage.leave(trial_row.name, tc.name)
        return {"TrialComponentArn": tc.arn, "TrialArn": trial_row.arn}

    # -- sagemaker-metrics -----------------------------------------------------------------
    def put_metrics(self, component: str, data: Sequence[Body]) -> Body:
        """BatchPutMetrics: the points are stored (with their steps) and folded into the
        component's summaries in one compare-and-set of its row."""
        tc = crud.load(self.ctx, kinds.TRIAL_COMPONENT, component)
        points = [(d["MetricName"], _seconds(d["Timestamp"]) or 0.0, float(d["Value"]),
                   d.get("Step")) for d in data]
        self.ctx.metrics.put_trial_component_metrics(tc.name, points)
        self.fold_metrics(tc.name, points)
        return {}

    def fold_metrics(self, component: str,
                     points: Sequence[tuple[str, float, float, int | None]],
                     source_arn: str | None = None) -> None:
        """Fold points into the component's running summaries (internal state) and render
        them as its ``Metrics``: one compare-and-set of the row."""
        states: dict[str, Any] = {}

        def change_internal(internal: Body) -> None:  # runs first
            summaries.merge(internal.setdefault("metrics", {}), points, source_arn)
            states.update(internal["metrics"])

        def change(body: Body) -> None:
            body["Metrics"] = summaries.summaries(states)

        self.ctx.resources.edit(kinds.TRIAL_COMPONENT.name, component, _ANY_STATUS, change,
                                now=self.ctx.now(), change_internal=change_internal)

    def get_metrics(self, queries: Sequence[Body]) -> Body:
        """BatchGetMetrics: each query's series, aggregated per step or per period."""
        return {"MetricQueryResults": [self._query(q) for q in queries]}

    def _query(self, q: Body) -> Body:
        arn = q["ResourceArn"]
        row = self.ctx.resources.get_by_arn(arn)
        if row is None or row.kind != kinds.TRIAL_COMPONENT.name:
            return {"Status": "ValidationError", "Message": f"Resource {arn} was not found.",
                    "XAxisValues": [], "MetricValues": []}
        points = self.ctx.metrics.trial_component_points(row.name, q["MetricName"])
        start, end = q.get("Start"), q.get("End")
        points = [p for p in points if (start is None or p[0] >= start)
                  and (end is None or p[0] < end)]
        by_step = q["XAxisType"] == "IterationNumber" or q["Period"] == "IterationNumber"
        width = {"OneMinute": 60, "FiveMinute": 300, "OneHour": 3600}.get(q["Period"], 1)
        groups: dict[int, list[float]] = {}
        for when, value, step in points:
            key = (step or 0) if by_step else int(when // width) * width
            groups.setdefault(key, []).append(value)
        xs = sorted(groups)
        return {"Status": "Complete", "XAxisValues": xs,
                "MetricValues": [summaries.stat(groups[x], q["MetricStat"]) for x in xs]}

    # -- helpers ---------------------------------------------------------------------------
    def _create(self, kind: kinds.Kind, noun: str, name: str, body: Body, params: Body, *,
                status: str | None = None, internal: Body | None = None) -> Resource:
        try:
            return self.ctx.resources.create(kind.name, name, body[f"{noun}Arn"],
                                             body, now=body["CreationTime"], status=status,
                                             tag_list=params.get("Tags") or [],
                                             internal=internal)
        except AlreadyExists:
            raise ValidationException(f"{noun} '{body[f'{noun}Arn']}' already exists.") from None

    def _update(self, kind: kinds.Kind, name: str, params: Body,
                fields: Sequence[str]) -> Resource:
        row = crud.load(self.ctx, kind, name)
        now = self.ctx.now()

        def change(body: Body) -> None:
            for key in fields:
                if params.get(key) is not None:
                    body[key] = params[key]
            body["LastModifiedTime"] = now

        return self.ctx.resources.edit(kind.name, row.name, [row.status], change, now=now)

    def _trial_names(self, experiment: str) -> list[str]:
        projected = self.ctx.resources.project(kinds.TRIAL.name,
                                               [BodyPath(("ExperimentName",))], present=[0])
        return [p.name for p in projected if p.values[0] == experiment]

    def _list(self, kind: kinds.Kind, params: Body,
              names: Sequence[str] | None = None) -> tuple[list[Resource], str | None]:
        """One page of ``kind`` (of ``names`` only, when given), sorted and filtered as the
        experiments' ``List*`` operations are (``CreatedAfter``/``Before``, ``SortBy`` Name
        or CreationTime, default newest first)."""
        sort_by = params.get("SortBy") or "CreationTime"
        if sort_by not in ("Name", "CreationTime"):
            raise ValidationException(f"Invalid SortBy value {sort_by!r}: Name or CreationTime")
        order = params.get("SortOrder") or "Descending"
        limit = params.get("MaxResults") or 10
        if names is None:
            return self.ctx.resources.list(kind.name, ListQuery(
                created_after=params.get("CreatedAfter"),
                created_before=params.get("CreatedBefore"), sort_by=sort_by,
                sort_order=order, max_results=limit, next_token=params.get("NextToken")))
        after, before = _seconds(params.get("CreatedAfter")), _seconds(
            params.get("CreatedBefore"))
        rows = [r for r in self.ctx.resources.get_many(kind.name, names).values()
                if (after is None or r.creation_time > after)
                and (before is None or r.creation_time < before)]
        key: Callable[[Resource], tuple[Any, ...]] = (
            (lambda r: (r.name, r.row_id)) if sort_by == "Name"
            else (lambda r: (r.creation_time, r.row_id)))
        descending = order == "Descending"
        rows.sort(key=key, reverse=descending)
        query = ("list", kind.name, sorted(names), sort_by, order, after, before)
        return pagination.page(rows, key, query=query, token=params.get("NextToken"),
                               limit=limit, descending=descending)

    def parents(self, components: Sequence[str]) -> dict[str, list[Body]]:
        """``Parents`` (trial, experiment) of many components, for Search."""
        return {name: [{"TrialName": m.trial_name, "ExperimentName": m.experiment_name}
                       for m in found]
                for name, found in self.lineage.parents_of(components).items()}

    def require_component(self, name: str) -> Resource:
        found = self.ctx.resources.get(kinds.TRIAL_COMPONENT.name, name)
        if found is None:
            raise ResourceNotFound(kinds.TRIAL_COMPONENT.missing.format(
                arn=crud.arn_of(self.ctx, kinds.TRIAL_COMPONENT, name), name=name))
        return found


def _pick(body: Body, fields: dict[str, str]) -> Body:
    return {out: body[src] for out, src in fields.items() if body.get(src) is not None}


def _check_limits(body: Body) -> None:
    if len(body.get("Parameters") or {}) > MAX_PARAMETERS:
        raise ValidationException(f"A trial component can have at most {MAX_PARAMETERS} "
                                  "parameters.")
    for key in ("InputArtifacts", "OutputArtifacts"):
        if len(body.get(key) or {}) > MAX_ARTIFACTS:
            raise ValidationException(f"A trial component can have at most {MAX_ARTIFACTS} "
                                      f"{key}.")
