"""The Random Cut Forest math (Guha et al. 2016, as AWS's RCF computes it), on NumPy arrays.

Building: every tree gets a uniform random sample of ``num_samples_per_tree`` training
records (the result of reservoir sampling over the stream: a sample without replacement).
A node's records are split by a random cut: its dimension is drawn with probability
proportional to that dimension's range in the node's bounding box, its value uniformly inside
that range (one uniform draw over the summed ranges gives both); records with
``x[dim] <= value`` go left. A node whose records are all equal is a leaf (its mass counts the
duplicates). All trees grow together, level by level, as flat arrays.

Scoring (AWS's anomaly score visitor, a point inserted *virtually*, trees unchanged): walk the
point down from the root. At the leaf the score is ``1 / (depth + 1)`` (a point unseen), or
``damp * 1 / (depth + log2(mass + 1))`` when the point equals the leaf's point (seen; ``damp =
1 - mass / (2 * tree mass)``). Going back up, at each node of depth ``k`` the probability ``p``
that a random cut of the node's box grown to hold the point separates the point
(``sum of the growth / sum of the grown ranges``) mixes in the unseen score of that level:
``score = p / (k + 1) + (1 - p) * score``. The tree's score is normalised by ``log2(1 + tree
mass)`` and the forest's is the mean over trees; about 1 for typical points, higher for
anomalies. The recursion is unrolled top-down so that a batch of points walks each tree
together (vectorised over points; the loops are over trees and depth).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

CHUNK = 8192  # points walked together (fewer for wide data): their arrays stay in cache


@dataclass
class Forest:
    """Trees as flat arrays over all nodes (node ``t`` is the root of tree ``t``).

    ``left``/``right`` are -1 at leaves; ``lo``/``hi`` the nodes' bounding boxes (a leaf's
    box is its point)."""

    lo: NDArray[Any]  # (nodes, d) float32
    hi: NDArray[Any]  # (nodes, d) float32
    left: NDArray[Any]  # (nodes,) int32
    right: NDArray[Any]  # (nodes,) int32
    cut_dim: NDArray[Any]  # (nodes,) int32
    cut_value: NDArray[Any]  # (nodes,) float32
    mass: NDArray[Any]  # (nodes,) int32
    depth: NDArray[Any]  # (nodes,) int32
    tree_mass: NDArray[Any]  # (trees,) int32

    @property
    def num_trees(self) -> int:
        return len(self.tree_mass)

    @property
    def feature_dim(self) -> int:
        return int(self.lo.shape[1])

    def __post_init__(self) -> None:
        self.range_sum = (self.hi.astype(np.float64) - self.lo).sum(axis=1)
        self.inv_depth = 1.0 / (self.depth + 1.0)
        leaf = self.left < 0
        tree_of = np.zeros(len(self.left), dtype=np.int64)
        # a leaf's score when the point is its point: damp * scoreSeen
        seen = np.zeros(len(self.left))
        if leaf.any():
            tree_of[leaf] = self._tree_of_nodes()[leaf]
            m = self.mass[leaf].astype(np.float64)
            damp = 1.0 - m / (2.0 * self.tree_mass[tree_of[leaf]])
            seen[leaf] = damp / (self.depth[leaf] + np.log2(m + 1.0))
        self.seen_score = seen
        self._walker: _Walker | None = None

    def walker(self) -> _Walker:
        """The layout :func:`score` walks (built once)."""
        if self._walker is None:
            self._walker = _Walker(self)
        return self._walker

    def _tree_of_nodes(self) -> NDArray[Any]:
        """Each node's tree (roots are 0..T-1; a child inherits its parent's tree)."""
        tree = np.full(len(self.left), -1, dtype=np.int64)
        tree[: self.num_trees] = np.arange(self.num_trees)
        internal = np.flatnonzero(self.left >= 0)
        # children have larger ids than parents: sweep parents in id order, by depth level
        for level in range(int(self.depth.max()) + 1):
            parents = internal[self.depth[internal] == level]
            tree[self.left[parents]] = tree[parents]
            tree[self.right[parents]] = tree[parents]
        return tree

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The model's arrays: tree structure, cuts and leaf points (boxes are recomputed)."""
        leaf = self.left < 0
        return {"left": self.left, "right": self.right, "cut_dim": self.cut_dim,
                "cut_value": self.cut_value, "mass": self.mass, "depth": self.depth,
                "tree_mass": self.tree_mass, "leaf_nodes": np.flatnonzero(leaf).astype(np.int32),
                "leaf_points": self.lo[leaf]}

    @classmethod
    def from_arrays(cls, a: dict[str, NDArray[Any]]) -> Forest:
        """Rebuild the boxes bottom-up from the leaf points (a node's box is its children's
        union)."""
        left, right, depth = (a["left"].astype(np.int32), a["right"].astype(np.int32),
                              a["depth"].astype(np.int32))
        points = a["leaf_points"].astype(np.float32)
        lo = np.empty((len(left), points.shape[1]), dtype=np.float32)
        hi = np.empty_like(lo)
        lo[a["leaf_nodes"]] = points
        hi[a["leaf_nodes"]] = points
        internal = np.flatnonzero(left >= 0)
        for level in range(int(depth.max()), -1, -1):
            nodes = internal[depth[internal] == level]
            if len(nodes):
                lo[nodes] = np.minimum(lo[left[nodes]], lo[right[nodes]])
                hi[nodes] = np.maximum(hi[left[nodes]], hi[right[nodes]])
        return cls(lo=lo, hi=hi, left=left, right=right,
                   cut_dim=a["cut_dim"].astype(np.int32),
                   cut_value=a["cut_value"].astype(np.float32),
                   mass=a["mass"].astype(np.int32), depth=depth,
                   tree_mass=a["tree_mass"].astype(np.int32))


def sample(n: int, num_trees: int, samples_per_tree: int,
           rng: np.random.Generator) -> NDArray[Any]:
    """Each tree's sample of record indices (trees x s): uniform without replacement, what a
    reservoir of ``s`` holds after streaming ``n`` records (all of them when ``n <= s``)."""
    s = min(samples_per_tree, n)
    if s == n:
        return np.tile(np.arange(n), (num_trees, 1))
    return np.stack([rng.choice(n, s, replace=False) for _ in range(num_trees)])


def fit(x: NDArray[Any], *, num_trees: int = 100, num_samples_per_tree: int = 256,
        seed: int = 0) -> Forest:
    """Build the forest on the rows of ``x`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(x, dtype=np.float32)
    indices = sample(len(x), num_trees, num_samples_per_tree, rng)
    s = indices.shape[1]
    return build(x[indices.ravel()], num_trees, s, rng)


def build(points: NDArray[Any], num_trees: int, s: int, rng: np.random.Generator) -> Forest:
    """Grow ``num_trees`` trees on ``points`` (tree ``t`` holds rows ``t*s .. t*s+s-1``)."""
    d = points.shape[1]
    capacity = num_trees * (2 * s - 1)
    lo = np.empty((capacity, d), dtype=np.float32)
    hi = np.empty((capacity, d), dtype=np.float32)
    left = np.full(capacity, -1, dtype=np.int32)
    right = np.full(capacity, -1, dtype=np.int32)
    cut_dim = np.full(capacity, -1, dtype=np.int32)
    cut_value = np.zeros(capacity, dtype=np.float32)
    mass = np.zeros(capacity, dtype=np.int32)
    depth = np.zeros(capacity, dtype=np.int32)
    n_nodes = num_trees

    # The active segments: contiguous runs of `active` rows, one per node still to split.
    active = points
    starts = np.arange(num_trees, dtype=np.int64) * s
    nodes = np.arange(num_trees, dtype=np.int64)
    while len(nodes):
        sizes = np.diff(np.append(starts, len(active)))
        seg_lo = np.minimum.reduceat(active, starts, axis=0)
        seg_hi = np.maximum.reduceat(active, starts, axis=0)
        lo[nodes], hi[nodes], mass[nodes] = seg_lo, seg_hi, sizes
        ranges = seg_hi.astype(np.float64) - seg_lo
        cumulative = np.cumsum(ranges, axis=1)
        total = cumulative[:, -1]
        leaf = (sizes == 1) | (total <= 0)
        # one uniform draw over the summed ranges picks the dimension and the cut in it
        u = rng.random(len(nodes)) * total
        dims = np.minimum((cumulative <= u[:, None]).sum(axis=1), d - 1)
        below = np.where(dims > 0, cumulative[np.arange(len(nodes)), dims - 1], 0.0)
        values = (seg_lo[np.arange(len(nodes)), dims] + (u - below)).astype(np.float32)
        segment = np.repeat(np.arange(len(nodes)), sizes)
        goes_left = active[np.arange(len(active)), dims[segment]] <= values[segment]
        n_left = np.bincount(segment, weights=goes_left, minlength=len(nodes))
        split = ~leaf & (n_left > 0) & (n_left < sizes)
        retry = ~leaf & ~split  # the cut fell on the box's edge (rounding): draw again
        # children of the nodes that split
        parents = nodes[split]
        k = len(parents)
        left[parents] = n_nodes + 2 * np.arange(k)
        right[parents] = n_nodes + 2 * np.arange(k) + 1
        cut_dim[parents] = dims[split]
        cut_value[parents] = values[split]
        depth[left[parents]] = depth[parents] + 1
        depth[right[parents]] = depth[parents] + 1
        n_nodes += 2 * k
        # next level: the split nodes' two parts and the retried nodes, rows kept in order
        keep = ~leaf[segment]
        seg_keep = segment[keep]
        side = np.where(split[seg_keep], ~goes_left[keep], False)
        order = np.argsort(seg_keep * 2 + side, kind="stable")
        active = active[keep][order]
        next_nodes = np.full((len(nodes), 2), -1, dtype=np.int64)
        next_sizes = np.zeros((len(nodes), 2), dtype=np.int64)
        next_nodes[split, 0], next_nodes[split, 1] = left[parents], right[parents]
        next_sizes[split, 0] = n_left[split]
        next_sizes[split, 1] = sizes[split] - n_left[split]
        next_nodes[retry, 0], next_sizes[retry, 0] = nodes[retry], sizes[retry]
        flat_nodes, flat_sizes = next_nodes.ravel(), next_sizes.ravel()
        present = flat_sizes > 0
        nodes = flat_nodes[present]
        starts = np.concatenate([[0], np.cumsum(flat_sizes[present])[:-1]]).astype(np.int64)
    return Forest(lo=lo[:n_nodes], hi=hi[:n_nodes], left=left[:n_nodes],
                  right=right[:n_nodes], cut_dim=cut_dim[:n_nodes],
                  cut_value=cut_value[:n_nodes], mass=mass[:n_nodes], depth=depth[:n_nodes],
                  tree_mass=np.full(num_trees, s, dtype=np.int32))


class _Walker:
    """The forest laid out for walking.

    Each node's box is one row ``[lo, -hi]``: minus ``[x, -x]`` it is ``v = [lo - x, x -
    hi]``, whose positive part sums to the point's distance outside the box (the box's growth
    to hold it). As ``sum(v) = -range_sum``, that is ``(sum |v| - range_sum) / 2``: one
    absolute value and a matrix-vector product instead of a maximum. The last node is a
    sentinel that leaves lead to: an infinite box that adds nothing and leads to itself, so
    finished points need no bookkeeping until they are dropped."""

    def __init__(self, f: Forest) -> None:
        n, d = len(f.left), f.feature_dim
        sentinel = n
        leaf = f.left < 0
        self.box = np.empty((n + 1, 2 * d), dtype=np.float32)
        self.box[:n, :d] = f.lo
        self.box[:n, d:] = -f.hi
        self.box[n] = -np.inf  # the sentinel: growth inf - inf (NaN) makes its c 0
        # sum |v| has a float32 rounding error of about 2d ulps of the sum: inside a box,
        # where the growth is 0, it must not count as growth
        self.range_sum = np.append(f.range_sum * (1 + 2.4e-7 * d), np.inf).astype(np.float32)
        # a seen point's leaf score over 1 / (depth + 1) (the walk multiplies that back)
        self.seen = np.append(f.seen_score / f.inv_depth, 0.0).astype(np.float32)
        child = np.empty((n + 1, 2), dtype=np.intp)
        child[:n, 0] = np.where(leaf, sentinel, f.left)
        child[:n, 1] = np.where(leaf, sentinel, f.right)
        child[n] = sentinel
        self.child = child.ravel()  # node 2k + (go right)
        self.cut_dim = np.append(np.where(leaf, 0, f.cut_dim), 0).astype(np.intp)
        self.cut_value = np.append(f.cut_value, 0.0).astype(np.float32)
        self.sentinel = sentinel
        self.ones = np.ones(2 * d, dtype=np.float32)


def score(forest: Forest, x: NDArray[Any], *, threads: int | None = None) -> NDArray[Any]:
    """The anomaly score of every row of ``x`` (higher is more anomalous). Trees are walked
    in ``threads`` threads (NumPy releases the GIL in its loops); default: the CPU count."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    walker = forest.walker()
    norm = np.log2(1.0 + forest.tree_mass.astype(np.float64))
    threads = max(1, min(threads or os.cpu_count() or 1, forest.num_trees))
    groups = np.array_split(np.arange(forest.num_trees), threads)

    def run(trees: NDArray[Any], part: NDArray[Any]) -> NDArray[Any]:
        both = np.hstack([part, -part])
        total = np.zeros(len(part))
        for tree in trees:
            total += _score_tree(walker, int(tree), part, both) * norm[tree]
        return total

    out = np.zeros(len(x))
    chunk = max(256, min(CHUNK, (1 << 19) // max(1, x.shape[1])))
    if threads == 1:
        for start in range(0, len(x), chunk):
            out[start:start + chunk] = run(groups[0], x[start:start + chunk])
        return out / forest.num_trees
    with ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(x), chunk):
            part = x[start:start + chunk]
            for total in pool.map(run, groups, [part] * len(groups)):
                out[start:start + len(part)] += total
    return out / forest.num_trees


def _score_tree(w: _Walker, tree: int, x: NDArray[Any], both: NDArray[Any]) -> NDArray[Any]:
    """One tree's unnormalised scores, walking all points down together. Unrolled from the
    bottom-up recursion: ``score = sum over path nodes k of weight_k * c_k / (k + 1)`` where
    ``c_k`` is the separation probability ``p_k`` inside the tree, and at the leaf 1 for an
    unseen point or ``seen score * (k + 1)`` for a point equal to the leaf's; ``weight_k`` is
    the product of ``1 - c`` over the nodes above."""
    n, d = x.shape
    out = np.zeros(n, dtype=np.float32)
    rows = np.arange(n)
    node = np.full(n, tree, dtype=np.intp)
    weight = np.ones(n, dtype=np.float32)
    acc = np.zeros(n, dtype=np.float32)
    flat = x.ravel()
    base = rows * d
    buf = np.empty((n, 2 * d), dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        for level in itertools.count():  # every point still walking is at this depth
            m = len(node)
            v = buf[:m]
            np.take(w.box, node, axis=0, out=v)
            v -= both
            np.abs(v, out=v)
            total = v @ w.ones  # sum |v| = 2 * growth + range_sum
            range_sum = w.range_sum.take(node)
            # p = growth / (range_sum + growth); 0 / 0 (NaN) at a leaf equal to the point
            p = np.subtract(total, range_sum)
            total += range_sum
            p /= total
            # inside: p <= 0 (rounding) -> 0; leaf: 1 (unseen) or the seen score (NaN or 0);
            # the sentinel: NaN -> 0, so that it changes nothing
            c = np.fmax(p, w.seen.take(node), out=p)
            c *= weight
            weight -= c
            c *= np.float32(1.0 / (level + 1))
            acc += c
            dims = w.cut_dim.take(node)
            dims += base
            right = flat.take(dims) > w.cut_value.take(node)
            node *= 2
            node += right
            node = w.child.take(node)
            live = node != w.sentinel
            alive = int(np.count_nonzero(live))
            if alive < m * 3 // 4 or not alive:
                out[rows[~live]] = acc[~live]
                if not alive:
                    return out
                rows, node, weight, base, acc = (rows[live], node[live], weight[live],
                                                 base[live], acc[live])
                both = both[live]
    raise AssertionError("unreachable")
