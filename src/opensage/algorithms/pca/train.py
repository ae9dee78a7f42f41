"""Training for the PCA built-in: read the train channel (dense or sparse), fit, save
``model_algo-1``.

The model keeps what ``pca:1`` keeps: the ``mean`` (1 x feature_dim, zeros when
``subtract_mean`` is off), the components ``v`` (feature_dim x num_components) and the
singular values ``s``, ordered as the AWS model orders them: ascending, the principal
component last. A test channel, when given, is checked and projected; PCA reports no metric.

With ``InstanceCount`` > 1 the hosts fit one model together
(:mod:`opensage.algorithms.collective`): each reads its shard of a ShardedByS3Key channel
(or every n-th row of a FullyReplicated one) and the passes' sums are added over the hosts,
in both modes, so the components equal one host's on all the data; algo-1 saves the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opensage.algorithms.collective import joined, own_rows
from opensage.algorithms.contract import TrainingEnv
from opensage.algorithms.firstparty.training import (
    is_sparse,
    read_channel,
    save_model,
)
from opensage.algorithms.pca.decomposition import fit, project
from opensage.algorithms.pca.spec import NAME, SPEC

MIN_BLOCK = 4096  # mini_batch_size is the streaming block, floored for BLAS efficiency


def _matrix(features: Any) -> Any:
    if is_sparse(features):
        return features.tocsr()
    return np.ascontiguousarray(features, dtype=np.float32)


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim = hps["feature_dim"]
    data = read_channel(env, "train", formats["train"], default_label_size=0, feature_dim=dim)
    assert data is not None
    with joined(env) as group:
        x = _matrix(data.features)[own_rows(env, "train", group)]
        k, mode = hps["num_components"], hps["algorithm_mode"]
        kind = "sparse" if is_sparse(x) else "dense"
        print(f"Training PCA ({mode}): {x.shape[0]} {kind} records, feature_dim {dim}, "
              f"num_components {k}, subtract_mean {hps['subtract_mean']}"
              + (f", host {group.rank + 1} of {group.size}" if group.size > 1 else "") + ".",
              flush=True)
        result = fit(x, k, mode=mode, subtract_mean=hps["subtract_mean"],
                     extra_components=hps["extra_components"],
                     block=max(hps["mini_batch_size"], MIN_BLOCK), group=group)
    if group.size > 1:
        print(f"The {group.size} hosts fitted {result.n} records together.", flush=True)
    ratio = result.explained_variance_ratio
    print(f"Explained variance ratio of the {k} components: {float(ratio.sum()):.6f} "
          f"({', '.join(f'{v:.4f}' for v in ratio)}).", flush=True)
    test = read_channel(env, "test", formats.get("test", ""), default_label_size=0,
                        feature_dim=dim, required=False)
    if test is not None:
        tx = _matrix(test.features)
        projected = project(tx, result.mean, result.components)
        print(f"Projected {projected.shape[0]} test records.", flush=True)
    if not group.is_root:
        return  # algo-1 saves the model (the only host's model the runner uploads)
    save_model(env.model_dir, {
        "mean": result.mean[None, :].astype(np.float32),
        "v": result.components[::-1].T.astype(np.float32),
        "s": result.singular_values[::-1].astype(np.float32),
    }, {"algorithm": NAME, "num_components": k, "feature_dim": dim,
        "subtract_mean": bool(hps["subtract_mean"]), "algorithm_mode": mode})
