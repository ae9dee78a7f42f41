"""The SageMaker PCA built-in (``pca:1``), run as ``python -m opensage.algorithms.pca train``.
Importing the package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.pca.spec import SPEC

MODULE = "opensage.algorithms.pca"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.pca.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
