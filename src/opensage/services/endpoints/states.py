"""An endpoint's lifecycle, as AWS reports ``EndpointStatus``.

Every move is a compare-and-set through ``ResourceStore.transition``; :func:`sources` checks
a move against the table before it is tried, so an illegal one is a bug that raises.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class EndpointStatus(StrEnum):
    OUT_OF_SERVICE = "OutOfService"
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"

    @property
    def in_progress(self) -> bool:
        """A change is under way: UpdateEndpoint and capacity changes must wait."""
        return self in IN_PROGRESS


IN_PROGRESS = frozenset({EndpointStatus.CREATING, EndpointStatus.UPDATING,
                         EndpointStatus.SYSTEM_UPDATING, EndpointStatus.ROLLING_BACK,
                         EndpointStatus.DELETING})
# Nothing moves the endpoint on from these but DeleteEndpoint.
TERMINAL = frozenset({EndpointStatus.FAILED, EndpointStatus.UPDATE_ROLLBACK_FAILED})
# Routable: InvokeEndpoint reaches the workers (an update serves the old ones meanwhile).
SERVING = frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING,
                     EndpointStatus.SYSTEM_UPDATING, EndpointStatus.ROLLING_BACK})

_ALLOWED: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    # deployed, or the model would not load
    EndpointStatus.CREATING: frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.FAILED}),
    # UpdateEndpoint / capacity changes; a restart that cannot bring the workers back fails it
    EndpointStatus.IN_SERVICE: frozenset({EndpointStatus.UPDATING, EndpointStatus.FAILED,
                                          EndpointStatus.SYSTEM_UPDATING,
                                          EndpointStatus.DELETING,
                                          EndpointStatus.OUT_OF_SERVICE}),
    # switched over, or rolled back (InService on the old configuration, with a reason)
    EndpointStatus.UPDATING: frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.ROLLING_BACK,
                                        EndpointStatus.FAILED}),
    EndpointStatus.SYSTEM_UPDATING: frozenset({EndpointStatus.IN_SERVICE,
                                               EndpointStatus.FAILED}),
    EndpointStatus.ROLLING_BACK: frozenset({EndpointStatus.IN_SERVICE,
                                            EndpointStatus.UPDATE_ROLLBACK_FAILED}),
    EndpointStatus.OUT_OF_SERVICE: frozenset({EndpointStatus.IN_SERVICE,
                                              EndpointStatus.DELETING}),
    EndpointStatus.FAILED: frozenset({EndpointStatus.DELETING}),
    EndpointStatus.UPDATE_ROLLBACK_FAILED: frozenset({EndpointStatus.DELETING}),
}

LIFECYCLE = Lifecycle("an endpoint", _ALLOWED)
can_move = LIFECYCLE.can_move
sources = LIFECYCLE.sources
