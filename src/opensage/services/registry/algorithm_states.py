"""An algorithm resource's lifecycle, as AWS reports ``AlgorithmStatus``.

Created ``Pending``; ``InProgress`` while its training (and inference) specification is
validated against what runs here, then ``Completed``; ``Deleting`` while DeleteAlgorithm
removes it.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import Lifecycle


class AlgorithmStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DELETING = "Deleting"


TERMINAL = frozenset({AlgorithmStatus.COMPLETED, AlgorithmStatus.FAILED})

LIFECYCLE: Lifecycle[AlgorithmStatus] = Lifecycle("an algorithm", {
    AlgorithmStatus.PENDING: {AlgorithmStatus.IN_PROGRESS, AlgorithmStatus.FAILED},
    AlgorithmStatus.IN_PROGRESS: {AlgorithmStatus.COMPLETED, AlgorithmStatus.FAILED},
    AlgorithmStatus.COMPLETED: {AlgorithmStatus.DELETING},
    AlgorithmStatus.FAILED: {AlgorithmStatus.DELETING},
})
