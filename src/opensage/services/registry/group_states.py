"""A model package group's lifecycle, as AWS reports ``ModelPackageGroupStatus``.

Created ``Pending``, it is ``InProgress`` while its row is set up and ``Completed`` once
versions can be registered in it; ``Deleting`` while DeleteModelPackageGroup removes it (only
an empty group: one with versions is refused). Every move is a compare-and-set through
``ResourceStore.transition``.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import Lifecycle


class GroupStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"


TERMINAL = frozenset({GroupStatus.COMPLETED, GroupStatus.FAILED})

LIFECYCLE: Lifecycle[GroupStatus] = Lifecycle("a model package group", {
    GroupStatus.PENDING: {GroupStatus.IN_PROGRESS, GroupStatus.FAILED},
    GroupStatus.IN_PROGRESS: {GroupStatus.COMPLETED, GroupStatus.FAILED},
    GroupStatus.COMPLETED: {GroupStatus.DELETING},
    GroupStatus.FAILED: {GroupStatus.DELETING},
    GroupStatus.DELETING: {GroupStatus.DELETE_FAILED},
    GroupStatus.DELETE_FAILED: {GroupStatus.DELETING},
})
