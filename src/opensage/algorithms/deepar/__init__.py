"""The SageMaker DeepAR forecasting built-in (``forecasting-deepar:1``), run as ``python -m
opensage.algorithms.deepar train`` in the ``builtin-torch`` environment. Importing the package
loads only the spec."""

from __future__ import annotations

from opensage.algorithms.deepar.spec import SPEC
from opensage.algorithms.firstparty import check_image_tag

MODULE = "opensage.algorithms.deepar"
REQUIRES = ("torch", "numpy", "safetensors")
EXTRA = "algorithms"
ENVIRONMENT = "builtin-torch"

__all__ = ["ENVIRONMENT", "EXTRA", "MODULE", "REQUIRES", "SPEC", "check_image_tag"]
