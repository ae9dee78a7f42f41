"""What ``Search`` adds to the stored documents of experiments' resources: a trial
component's ``Parents`` (its trials and their experiments), a trial's
``TrialComponentSummaries``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opensage.services import kinds
from opensage.services.context import Context
from opensage.store.lineage import LineageStore
from opensage.store.resources import Resource


def component_extras(ctx: Context, rows: Sequence[Resource]) -> dict[str, dict[str, Any]]:
    found = LineageStore(ctx.db).parents_of([r.name for r in rows])
    return {name: {"Parents": [{"TrialName": m.trial_name, "ExperimentName": m.experiment_name}
                               for m in members]}
            for name, members in found.items()}


def trial_extras(ctx: Context, rows: Sequence[Resource]) -> dict[str, dict[str, Any]]:
    store = LineageStore(ctx.db)
    extras: dict[str, dict[str, Any]] = {}
    for row in rows:
        members = [m.component_name for m in store.memberships(trial=row.name)]
        components = ctx.resources.get_many(kinds.TRIAL_COMPONENT.name, members)
        extras[row.name] = {"TrialComponentSummaries": [
            {k: v for k, v in {"TrialComponentName": c.name,
                               "TrialComponentArn": c.arn,
                               "TrialComponentSource": c.body.get("Source"),
                               "CreationTime": c.creation_time,
                               "CreatedBy": c.body.get("CreatedBy")}.items() if v is not None}
            for c in (components[m] for m in members if m in components)]}
    return extras
