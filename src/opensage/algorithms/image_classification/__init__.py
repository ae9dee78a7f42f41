"""The SageMaker image classification built-in (``image-classification:1``), run as ``python -m
opensage.algorithms.image_classification train`` in the ``builtin-torch`` environment: a
ResNet in PyTorch trained on MXNet image RecordIO (read without MXNet) or ``.lst`` files and
images. Importing the package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.image_classification.spec import SPEC

MODULE = "opensage.algorithms.image_classification"
REQUIRES = ("torch", "numpy", "safetensors", "PIL")
EXTRA = "algorithms"
ENVIRONMENT = "builtin-torch"

__all__ = ["ENVIRONMENT", "EXTRA", "MODULE", "REQUIRES", "SPEC", "check_image_tag"]
