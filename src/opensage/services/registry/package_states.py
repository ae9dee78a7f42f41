"""A model package's lifecycle, as AWS reports ``ModelPackageStatus``.

Created ``Pending``; ``InProgress`` while its specification is validated (its containers'
images servable here, its algorithm's spec met), then ``Completed`` (or ``Failed``);
``Deleting`` while DeleteModelPackage removes it.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import Lifecycle


class PackageStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DELETING = "Deleting"


class ApprovalStatus(StrEnum):
    APPROVED = "Approved"
    REJECTED = "Rejected"
    PENDING_MANUAL_APPROVAL = "PendingManualApproval"


TERMINAL = frozenset({PackageStatus.COMPLETED, PackageStatus.FAILED})

LIFECYCLE: Lifecycle[PackageStatus] = Lifecycle("a model package", {
    PackageStatus.PENDING: {PackageStatus.IN_PROGRESS, PackageStatus.FAILED},
    PackageStatus.IN_PROGRESS: {PackageStatus.COMPLETED, PackageStatus.FAILED},
    PackageStatus.COMPLETED: {PackageStatus.DELETING},
    PackageStatus.FAILED: {PackageStatus.DELETING},
})
