"""The SageMaker LDA built-in (``lda:1``), run as ``python -m opensage.algorithms.lda train``.
Importing the package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.lda.spec import SPEC

MODULE = "opensage.algorithms.lda"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.lda.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
