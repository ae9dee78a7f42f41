"""The SageMaker XGBoost built-in (``sagemaker-xgboost``), run as
``python -m opensage.algorithms.xgboost train`` inside a job directory.

Importing this package is cheap: it loads the spec only; XGBoost itself is imported by the
training module when a job runs.
"""

from __future__ import annotations

from opensage.algorithms.xgboost.spec import (
    MODEL_FILENAME,
    SPEC,
    SUPPORTED_VERSIONS,
    check_image_tag,
)

MODULE = "opensage.algorithms.xgboost"  # python -m MODULE train
REQUIRES = ("xgboost", "numpy", "scipy", "pyarrow")  # import names the job needs
EXTRA = "algorithms"  # pip install 'opensage[algorithms]'
# What a warm fork server imports once so that jobs start without paying for it.
PRELOAD = ("xgboost", "opensage.algorithms.xgboost.train", "pyarrow.csv")

__all__ = ["EXTRA", "MODEL_FILENAME", "MODULE", "REQUIRES", "SPEC", "SUPPORTED_VERSIONS",
           "check_image_tag"]
