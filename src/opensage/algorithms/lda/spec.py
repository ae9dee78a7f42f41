"""The LDA built-in's hyperparameters, channels and metrics, as ``lda:1`` declares them.

``mini_batch_size`` is, in SageMaker's words, "the total number of documents in the input
training data"; opensage runs each variational E-step over blocks of that many documents.
Tunable, as SageMaker's LDA tuning page lists them: ``alpha0`` and ``num_topics``; objective
``test:pwll`` (maximise).
"""

from __future__ import annotations

from opensage.algorithms.firstparty import data_channel, feature_dim, quality_metric
from opensage.algorithms.params import Choice, Float, Int
from opensage.algorithms.spec import AlgorithmSpec

NAME = "lda"

HYPERPARAMETERS = {
    "num_topics": Int(min=1, required=True, tunable=True,
                      description="The number of topics for LDA to find within the data"),
    "feature_dim": feature_dim(),
    "mini_batch_size": Int(min=1, required=True,
                           description="The total number of documents in the input training "
                                       "data"),
    "alpha0": Float(0, None, closed="neither", default=1.0, tunable=True,
                    description="Initial guess for the concentration parameter: the sum of "
                                "the elements of the Dirichlet prior"),
    "max_restarts": Int(min=1, default=10,
                        description="The number of restarts of the spectral decomposition"),
    "max_iterations": Int(min=1, default=1000,
                          description="The maximum number of iterations of the spectral "
                                      "decomposition"),
    "tol": Float(0, None, closed="neither", default=1e-8,
                 description="Target error tolerance of the spectral decomposition"),
    "_tuning_objective_metric": Choice(["test:pwll"]),
}

CHANNELS = {
    "train": data_channel(required=True, label_sizes=("0",),
                          description="Documents as word counts, one record per document"),
    "test": data_channel(required=False, label_sizes=("0",),
                         description="Held-out documents scored by per-word log-likelihood"),
}

METRICS = (
    quality_metric("test", "pwll", "Maximize"),
    quality_metric("train", "pwll", "Maximize"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "FastFile", "Pipe"),
                     supports_distributed_training=False)
