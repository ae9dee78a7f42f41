"""Training for the LDA built-in: read word-count documents, fit topics, score, save.

Logs ``#quality_metric: host=algo-1, train pwll <score>=...`` and, with a test channel,
``test pwll`` (the per-word log-likelihood bound of the held-out documents). The model is
``model_algo-1`` (npz, no pickle): ``alpha`` (k), ``beta`` (k x V topic-word distributions)
and ``topic_word`` (the variational parameter).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty.training import is_sparse, log_metric, read_channel, save_model
from opensage.algorithms.lda.spec import NAME, SPEC
from opensage.algorithms.lda.topics import fit, per_word_bound


def documents(features: Any, channel: str) -> sp.csr_matrix:
    """The channel's records as a sparse document-word count matrix; a UserError names the
    first record with a negative count or no words."""
    x = sp.csr_matrix(features if is_sparse(features) else np.asarray(features),
                      dtype=np.float64)
    x.eliminate_zeros()
    if x.nnz and x.data.min() < 0:
        at = int(np.flatnonzero(x.data < 0)[0])
        row = int(np.searchsorted(x.indptr, at, side="right"))
        raise UserError(f"The {channel} channel's record {row} has a negative word count "
                        f"({x.data[at]:g} for word {int(x.indices[at])}); LDA takes "
                        f"non-negative word counts.")
    lengths = np.diff(x.indptr)
    if not lengths.any():
        raise UserError(f"The {channel} channel's documents have no words (every count is 0).")
    return x


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim, k = hps["feature_dim"], hps["num_topics"]
    data = read_channel(env, "train", formats["train"], default_label_size=0, feature_dim=dim)
    assert data is not None
    x = documents(data.features, "train")
    if k > dim:
        raise UserError(f"num_topics ({k}) must not be greater than feature_dim ({dim}).")
    print(f"Training LDA: {x.shape[0]} documents, {int(x.sum())} words, vocabulary {dim}, "
          f"{k} topics, alpha0 {hps['alpha0']}.", flush=True)
    if x.shape[0] != hps["mini_batch_size"]:
        print(f"mini_batch_size is {hps['mini_batch_size']} but the train channel has "
              f"{x.shape[0]} documents.", flush=True)
    model = fit(x, k, alpha0=hps["alpha0"], restarts=hps["max_restarts"],
                iterations=hps["max_iterations"], tol=hps["tol"],
                batch=max(hps["mini_batch_size"], 1),
                log=lambda line: print(line, flush=True))
    log_metric("train", "pwll", per_word_bound(x, model), loss=False)
    test = read_channel(env, "test", formats.get("test", ""), default_label_size=0,
                        feature_dim=dim, required=False)
    if test is not None:
        log_metric("test", "pwll", per_word_bound(documents(test.features, "test"), model),
                   loss=False)
    assert model.topic_word is not None
    save_model(env.model_dir, {"alpha": model.alpha, "beta": model.beta,
                               "topic_word": model.topic_word},
               {"algorithm": NAME, "num_topics": k, "feature_dim": dim})
