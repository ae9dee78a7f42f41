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

__all__ = ["EXTRA", "MODEL_FILENAME", "MODULE", "REQUIRES", "SPEC", "SUPPORTED_VERSIONS",
           "check_image_tag"]
