"""The SageMaker Neural Topic Model built-in (``ntm:1``), run as ``python -m
opensage.algorithms.ntm train`` in the ``builtin-torch`` environment. Importing the package
loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.ntm.spec import SPEC

MODULE = "opensage.algorithms.ntm"
REQUIRES = ("torch", "numpy", "safetensors")
EXTRA = "algorithms"
ENVIRONMENT = "builtin-torch"

__all__ = ["ENVIRONMENT", "EXTRA", "MODULE", "REQUIRES", "SPEC", "check_image_tag"]
