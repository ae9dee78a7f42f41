"""The SDK's first-party estimators, unchanged: ``record_set()`` uploads RecordIO-protobuf and a
manifest, ``fit`` trains the built-in, ``deploy`` serves it and the estimator's own predictor
(RecordIO-protobuf both ways) gets answers computed by the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from opensage.sdk import fast_polling
from tests.integration.conftest import ROLE, NetworkGuard

RNG = np.random.default_rng(7)
X = np.vstack([RNG.normal(0, 1, (150, 4)), RNG.normal(4, 1, (150, 4))]).astype(np.float32)
Y = np.repeat([0.0, 1.0], 150).astype(np.float32)


def _label(record: Any, key: str) -> list[float]:
    return list(record.label[key].float32_tensor.values)


CASES = {
    "LinearLearner": ({"predictor_type": "binary_classifier", "epochs": 5}, True,
                      lambda records: [_label(r, "predicted_label")[0] for r in records]),
    "KMeans": ({"k": 2}, False, lambda records: [_label(r, "closest_cluster")[0]
                                                  for r in records]),
    "PCA": ({"num_components": 2}, False, lambda records: [len(_label(r, "projection"))
                                                           for r in records]),
    "KNN": ({"k": 3, "sample_size": 300, "predictor_type": "classifier"}, True,
            lambda records: [_label(r, "predicted_label")[0] for r in records]),
    "FactorizationMachines": ({"num_factors": 2, "predictor_type": "binary_classifier",
                               "epochs": 20, "linear_lr": 0.05, "factors_lr": 0.01,
                               "bias_lr": 0.05},
                              True, lambda records: [_label(r, "predicted_label")[0]
                                                     for r in records]),
    "RandomCutForest": ({"num_samples_per_tree": 64, "num_trees": 50}, False,
                        lambda records: [_label(r, "score")[0] for r in records]),
}


@pytest.mark.parametrize("estimator_name", sorted(CASES))
def test_first_party_estimator_fits_deploys_and_predicts(sdk_env: NetworkGuard,
                                                          estimator_name: str):
    import sagemaker

    hyperparameters, labelled, read = CASES[estimator_name]
    session = sagemaker.Session()
    cls = getattr(sagemaker, estimator_name)
    estimator = cls(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                    sagemaker_session=session, **hyperparameters)
    records = estimator.record_set(X, labels=Y if labelled else None)
    with fast_polling(factor=20):
        estimator.fit(records, logs=False)
        predictor = estimator.deploy(1, "ml.m5.large")
    try:
        probe = np.vstack([X[:3], X[-3:]])
        answers = read(predictor.predict(probe))
    finally:
        with fast_polling(factor=20):
            predictor.delete_endpoint()
    if estimator_name in ("LinearLearner", "KNN", "FactorizationMachines"):
        assert answers == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    elif estimator_name == "KMeans":
        assert len(set(answers[:3])) == 1 and len(set(answers[3:])) == 1
        assert answers[0] != answers[-1]
    elif estimator_name == "PCA":
        assert answers == [2] * 6
    else:
        assert all(np.isfinite(answers)) and len(answers) == 6
