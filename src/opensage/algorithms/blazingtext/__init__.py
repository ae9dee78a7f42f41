"""The SageMaker BlazingText built-in (``blazingtext:1``): Word2Vec (``cbow``, ``skipgram``,
``batch_skipgram``) and fastText-style text classification (``supervised``), in NumPy; run as
``python -m opensage.algorithms.blazingtext train``. Importing the package loads only the
spec."""

from __future__ import annotations

from opensage.algorithms.blazingtext.spec import SPEC
from opensage.algorithms.firstparty import check_image_tag

MODULE = "opensage.algorithms.blazingtext"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "opensage.algorithms.blazingtext.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
