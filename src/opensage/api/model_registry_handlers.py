"""SageMaker model registry and algorithm resource handlers: model package groups (and their
policies), model packages, algorithms (the services are ``services.registry``)."""

from __future__ import annotations

from typing import Any

from opensage.services.registry import algorithms, groups, packages
from opensage.services.wiring import Services

Params = dict[str, Any]


# -- model package groups -------------------------------------------------------------------
def create_model_package_group(services: Services, params: Params) -> Params:
    return {"ModelPackageGroupArn": groups.create_group(services.context, params).arn}


def describe_model_package_group(services: Services, params: Params) -> Params:
    return groups.describe_group(services.context, params["ModelPackageGroupName"])


def list_model_package_groups(services: Services, params: Params) -> Params:
    return groups.list_groups(services.context, params)


def delete_model_package_group(services: Services, params: Params) -> None:
    groups.delete_group(services.context, params["ModelPackageGroupName"])


def put_model_package_group_policy(services: Services, params: Params) -> Params:
    return {"ModelPackageGroupArn": groups.put_policy(
        services.context, params["ModelPackageGroupName"], params["ResourcePolicy"])}


def get_model_package_group_policy(services: Services, params: Params) -> Params:
    return {"ResourcePolicy": groups.get_policy(services.context,
                                                params["ModelPackageGroupName"])}


def delete_model_package_group_policy(services: Services, params: Params) -> None:
    groups.delete_policy(services.context, params["ModelPackageGroupName"])


# -- model packages -------------------------------------------------------------------------
def create_model_package(services: Services, params: Params) -> Params:
    return {"ModelPackageArn": services.registry.create_package(params).arn}


def describe_model_package(services: Services, params: Params) -> Params:
    return packages.describe_package(services.context, params["ModelPackageName"])


def list_model_packages(services: Services, params: Params) -> Params:
    return packages.list_packages(services.context, params)


def update_model_package(services: Services, params: Params) -> Params:
    return {"ModelPackageArn": packages.update_package(services.context, params)}


def delete_model_package(services: Services, params: Params) -> None:
    packages.delete_package(services.context, params["ModelPackageName"])


def batch_describe_model_package(services: Services, params: Params) -> Params:
    return packages.batch_describe(services.context, params["ModelPackageArnList"])


# -- algorithms -----------------------------------------------------------------------------
def create_algorithm(services: Services, params: Params) -> Params:
    return {"AlgorithmArn": algorithms.create_algorithm(services.context, params).arn}


def describe_algorithm(services: Services, params: Params) -> Params:
    return algorithms.describe_algorithm(services.context, params["AlgorithmName"])


def list_algorithms(services: Services, params: Params) -> Params:
    return algorithms.list_algorithms(services.context, params)


def delete_algorithm(services: Services, params: Params) -> None:
    algorithms.delete_algorithm(services.context, params["AlgorithmName"])
