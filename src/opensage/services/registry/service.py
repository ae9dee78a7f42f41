"""The model registry as the other services and the API see it: CreateModelPackage, whose
listeners (lineage, subscribed in ``services.wiring``) learn of every registered package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensage.services.context import Context
from opensage.services.events import Listeners
from opensage.services.registry import packages
from opensage.store.resources import Resource


@dataclass(frozen=True)
class PackageCreated:
    """A model package (versioned or not) was registered: ``name`` is its row's name."""

    name: str


class ModelRegistry:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.package_created: Listeners[PackageCreated] = Listeners("ModelPackageCreated")

    def create_package(self, params: dict[str, Any]) -> Resource:
        row = packages.create_package(self.ctx, params)
        self.package_created.publish(PackageCreated(row.name))
        return row
