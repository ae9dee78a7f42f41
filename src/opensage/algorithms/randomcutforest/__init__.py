"""The SageMaker Random Cut Forest built-in (``randomcutforest:1``), run as ``python -m
opensage.algorithms.randomcutforest train``. Importing the package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.randomcutforest.spec import SPEC

MODULE = "opensage.algorithms.randomcutforest"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.randomcutforest.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
