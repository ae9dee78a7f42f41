"""The SageMaker k-NN built-in (``knn:1``), run as ``python -m opensage.algorithms.knn train``.
Importing the package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.knn.spec import SPEC

MODULE = "opensage.algorithms.knn"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.knn.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
