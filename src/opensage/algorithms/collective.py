"""The hosts of one training job meeting as one collective: the seam every built-in that
trains across hosts (``AlgorithmSpec.trains_across_hosts``) uses.

The runner gives every host ``OPENSAGE_COLLECTIVE_ADDRESS`` (algo-1's address and a free
port). algo-1 runs XGBoost's tracker (``xgboost.tracker.RabitTracker``) there and every host
joins XGBoost's collective (Rabit) with its rank, its position in ``hosts``: XGBoost itself
allreduces its histograms through it, and the NumPy built-ins (PCA, k-means, linear
learner) use the allreduce of float64 arrays (SUM) and the broadcast it offers. XGBoost is in
the same ``algorithms`` extra as they are; nothing is imported from it for a single host.

:func:`joined` yields a :class:`Collective`; for one host (or no address) it is
:data:`LOCAL`, whose operations are the identity, so an algorithm's code is the same for one
host and for several.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import PeerFailure, TrainingEnv

__all__ = ["COLLECTIVE_RETRIES", "COLLECTIVE_TIMEOUT_SECONDS", "LOCAL", "Collective",
           "is_sharded", "joined", "own_rows"]

COLLECTIVE_TIMEOUT_SECONDS = 300  # hosts wait this long for each other (start, each step)
COLLECTIVE_RETRIES = 30
ADDRESS_VARIABLE = "OPENSAGE_COLLECTIVE_ADDRESS"


@dataclass(frozen=True)
class Collective:
    """This host's place in the job: ``rank`` of ``size`` hosts, and the collective's
    operations (identities when ``size`` is 1)."""

    rank: int = 0
    size: int = 1
    _ops: Any = None  # xgboost.collective, when size > 1
    _errors: tuple[type[Exception], ...] = ()  # what its operations raise (XGBoostError)

    @property
    def is_root(self) -> bool:
        """algo-1: the host that logs the job's metrics and writes the model."""
        return self.rank == 0

    def sum(self, values: Any) -> NDArray[np.float64]:
        """The element-wise sum of ``values`` over every host (float64, same shape)."""
        array = np.ascontiguousarray(values, dtype=np.float64)
        if self.size == 1:
            return array.copy()
        try:
            total = self._ops.allreduce(array.ravel(), self._ops.Op.SUM)
        except self._errors as e:  # the peer's socket closed: it ended, so did the job
            raise _peer_failure(e) from None
        summed: NDArray[np.float64] = np.asarray(total, dtype=np.float64).reshape(array.shape)
        return summed

    def broadcast(self, value: Any, root: int = 0) -> Any:
        """``root``'s ``value`` (any picklable object) on every host."""
        if self.size == 1:
            return value
        try:
            return self._ops.broadcast(value, root)
        except self._errors as e:  # as in sum
            raise _peer_failure(e) from None

    def gather_rows(self, rows: Any) -> NDArray[np.float64]:
        """Every host's rows (a 2-D array, same column count everywhere) stacked in rank
        order, on every host: a sum of zero-padded blocks, so exact."""
        array = np.asarray(rows, dtype=np.float64)
        if self.size == 1:
            return array.copy()
        counts = np.zeros(self.size)
        counts[self.rank] = len(array)
        counts = self.sum(counts).astype(np.int64)
        start = int(counts[:self.rank].sum())
        out = np.zeros((int(counts.sum()), array.shape[1]))
        out[start:start + len(array)] = array
        return self.sum(out)


LOCAL = Collective()


def _peer_failure(error: Exception) -> PeerFailure:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return PeerFailure("another host of the job ended, breaking the hosts' collective "
                       f"(its log says why): {first[:300]}")


@contextlib.contextmanager
def joined(env: TrainingEnv) -> Iterator[Collective]:
    """Join this job's hosts' collective (see the module docstring); yields :data:`LOCAL`
    for a single host or where the runner gave no address."""
    address = env.environ.get(ADDRESS_VARIABLE)
    hosts = env.hosts
    if len(hosts) < 2 or not address:
        yield LOCAL
        return
    from xgboost import collective
    from xgboost.core import XGBoostError
    from xgboost.tracker import RabitTracker

    host, _, port = address.rpartition(":")
    rank = hosts.index(env.current_host)
    tracker = None
    if rank == 0:
        tracker = RabitTracker(n_workers=len(hosts), host_ip=host, port=int(port),
                               sortby="task", timeout=COLLECTIVE_TIMEOUT_SECONDS)
        tracker.start()
    print(f"Joining the {len(hosts)} hosts' collective at {address} as rank {rank}.",
          file=sys.stderr, flush=True)
    with collective.CommunicatorContext(
            dmlc_communicator="rabit", dmlc_tracker_uri=host, dmlc_tracker_port=int(port),
            dmlc_task_id=str(rank), dmlc_retry=COLLECTIVE_RETRIES,
            dmlc_timeout=COLLECTIVE_TIMEOUT_SECONDS):
        yield Collective(rank, len(hosts), collective, (XGBoostError,))
    if tracker is not None:
        tracker.wait_for(COLLECTIVE_TIMEOUT_SECONDS)


def is_sharded(env: TrainingEnv, channel: str) -> bool:
    """Whether ``channel`` gives each host only its share (ShardedByS3Key)."""
    config = env.input_data_config.get(channel, {})
    return bool(config.get("S3DistributionType", "FullyReplicated") == "ShardedByS3Key")


def own_rows(env: TrainingEnv, channel: str, group: Collective) -> slice:
    """The rows of ``channel`` this host trains on: a FullyReplicated channel gives every
    host all rows, so in a job of several hosts each takes every n-th row from its rank
    (together they see each row once, as one host would); a sharded channel is already this
    host's share."""
    if group.size == 1 or is_sharded(env, channel):
        return slice(None)
    return slice(group.rank, None, group.size)
