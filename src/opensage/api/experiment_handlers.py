"""SageMaker Experiments and lineage handlers (``services.experiments``): experiments,
trials, trial components and their associations; artifacts, actions, contexts, lineage
associations and QueryLineage."""

from __future__ import annotations

from typing import Any

from opensage.services import kinds
from opensage.services.wiring import Services

Params = dict[str, Any]


# -- experiments ----------------------------------------------------------------------------
def create_experiment(services: Services, params: Params) -> Params:
    return {"ExperimentArn": services.experiments.create_experiment(params)}


def describe_experiment(services: Services, params: Params) -> Params:
    return services.experiments.describe_experiment(params["ExperimentName"])


def update_experiment(services: Services, params: Params) -> Params:
    return {"ExperimentArn": services.experiments.update_experiment(params)}


def delete_experiment(services: Services, params: Params) -> Params:
    return {"ExperimentArn": services.experiments.delete_experiment(params["ExperimentName"])}


def list_experiments(services: Services, params: Params) -> Params:
    return services.experiments.list_experiments(params)


# -- trials ---------------------------------------------------------------------------------
def create_trial(services: Services, params: Params) -> Params:
    return {"TrialArn": services.experiments.create_trial(params)}


def describe_trial(services: Services, params: Params) -> Params:
    return services.experiments.describe_trial(params["TrialName"])


def update_trial(services: Services, params: Params) -> Params:
    return {"TrialArn": services.experiments.update_trial(params)}


def delete_trial(services: Services, params: Params) -> Params:
    return {"TrialArn": services.experiments.delete_trial(params["TrialName"])}


def list_trials(services: Services, params: Params) -> Params:
    return services.experiments.list_trials(params)


# -- trial components -----------------------------------------------------------------------
def create_trial_component(services: Services, params: Params) -> Params:
    return {"TrialComponentArn": services.experiments.create_trial_component(params)}


def describe_trial_component(services: Services, params: Params) -> Params:
    return services.experiments.describe_trial_component(params["TrialComponentName"])


def update_trial_component(services: Services, params: Params) -> Params:
    return {"TrialComponentArn": services.experiments.update_trial_component(params)}


def delete_trial_component(services: Services, params: Params) -> Params:
    return {"TrialComponentArn": services.experiments.delete_trial_component(
        params["TrialComponentName"])}


def list_trial_components(services: Services, params: Params) -> Params:
    return services.experiments.list_trial_components(params)


def associate_trial_component(services: Services, params: Params) -> Params:
    return services.experiments.associate(params["TrialComponentName"], params["TrialName"])


def disassociate_trial_component(services: Services, params: Params) -> Params:
    return services.experiments.disassociate(params["TrialComponentName"], params["TrialName"])


# -- lineage --------------------------------------------------------------------------------
def create_artifact(services: Services, params: Params) -> Params:
    return {"ArtifactArn": services.lineage.create_artifact(params)}


def describe_artifact(services: Services, params: Params) -> Params:
    return services.lineage.describe_artifact(params["ArtifactArn"])


def update_artifact(services: Services, params: Params) -> Params:
    return {"ArtifactArn": services.lineage.update_artifact(params)}


def delete_artifact(services: Services, params: Params) -> Params:
    return {"ArtifactArn": services.lineage.delete_artifact(params)}


def list_artifacts(services: Services, params: Params) -> Params:
    return services.lineage.list_artifacts(params)


def create_action(services: Services, params: Params) -> Params:
    return {"ActionArn": services.lineage.create_named(kinds.ACTION, params)}


def describe_action(services: Services, params: Params) -> Params:
    return services.lineage.describe_named(kinds.ACTION, params["ActionName"])


def update_action(services: Services, params: Params) -> Params:
    return {"ActionArn": services.lineage.update_named(kinds.ACTION, params)}


def delete_action(services: Services, params: Params) -> Params:
    return {"ActionArn": services.lineage.delete_named(kinds.ACTION, params["ActionName"])}


def list_actions(services: Services, params: Params) -> Params:
    return services.lineage.list_named(kinds.ACTION, params)


def create_context(services: Services, params: Params) -> Params:
    return {"ContextArn": services.lineage.create_named(kinds.CONTEXT, params)}


def describe_context(services: Services, params: Params) -> Params:
    return services.lineage.describe_named(kinds.CONTEXT, params["ContextName"])


def update_context(services: Services, params: Params) -> Params:
    return {"ContextArn": services.lineage.update_named(kinds.CONTEXT, params)}


def delete_context(services: Services, params: Params) -> Params:
    return {"ContextArn": services.lineage.delete_named(kinds.CONTEXT, params["ContextName"])}


def list_contexts(services: Services, params: Params) -> Params:
    return services.lineage.list_named(kinds.CONTEXT, params)


def add_association(services: Services, params: Params) -> Params:
    return services.lineage.add_association(params["SourceArn"], params["DestinationArn"],
                                            params.get("AssociationType"))


def delete_association(services: Services, params: Params) -> Params:
    return services.lineage.delete_association(params["SourceArn"], params["DestinationArn"])


def list_associations(services: Services, params: Params) -> Params:
    return services.lineage.list_associations(params)


def query_lineage(services: Services, params: Params) -> Params:
    return services.lineage.query(params)
