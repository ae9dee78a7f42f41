"""The SageMaker Object2Vec built-in (``object2vec:1``), run as ``python -m
opensage.algorithms.object2vec train`` in the ``builtin-torch`` environment. Importing the
package loads only the spec."""

from __future__ import annotations

from opensage.algorithms.firstparty import check_image_tag
from opensage.algorithms.object2vec.spec import SPEC

MODULE = "opensage.algorithms.object2vec"
REQUIRES = ("torch", "numpy", "safetensors")
EXTRA = "algorithms"
ENVIRONMENT = "builtin-torch"

__all__ = ["ENVIRONMENT", "EXTRA", "MODULE", "REQUIRES", "SPEC", "check_image_tag"]
