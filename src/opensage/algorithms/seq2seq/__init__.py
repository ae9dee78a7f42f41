"""The SageMaker sequence-to-sequence built-in (``seq2seq:1``), run as ``python -m
opensage.algorithms.seq2seq train`` in the ``builtin-torch`` environment. Importing the package
loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.seq2seq.spec import SPEC

MODULE = "opensage.algorithms.seq2seq"
REQUIRES = ("torch", "numpy", "safetensors")
EXTRA = "algorithms"
ENVIRONMENT = "builtin-torch"

__all__ = ["ENVIRONMENT", "EXTRA", "MODULE", "REQUIRES", "SPEC", "check_image_tag"]
