"""The SageMaker IP Insights built-in (``ipinsights:1``), run as ``python -m
opensage.algorithms.ipinsights train``. Importing the package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.ipinsights.spec import SPEC

MODULE = "opensage.algorithms.ipinsights"
REQUIRES = ("numpy", "scipy", "pyarrow")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.ipinsights.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
