"""The SageMaker linear-learner built-in (``linear-learner:1``), run as
``python -m opensage.algorithms.linear_learner train``. Importing the package loads only the
spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.linear_learner.spec import SPEC

MODULE = "opensage.algorithms.linear_learner"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.linear_learner.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
