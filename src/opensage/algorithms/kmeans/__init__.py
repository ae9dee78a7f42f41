"""The SageMaker k-means built-in (``kmeans:1``), run as ``python -m opensage.algorithms.kmeans
train``. Importing the package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.kmeans.spec import SPEC

MODULE = "opensage.algorithms.kmeans"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.kmeans.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
