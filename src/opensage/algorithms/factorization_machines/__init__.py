"""The SageMaker factorization-machines built-in (``factorization-machines:1``), run as
``python -m opensage.algorithms.factorization_machines train``. Importing the package loads
only the spec."""

from __future__ import annotations

from opensage.algorithms.factorization_machines.spec import SPEC
from opensage.algorithms.firstparty import check_image_tag

MODULE = "opensage.algorithms.factorization_machines"
REQUIRES = ("numpy", "scipy")
EXTRA = "algorithms"
PRELOAD = ("numpy", "scipy.sparse", "opensage.algorithms.factorization_machines.train")

__all__ = ["EXTRA", "MODULE", "PRELOAD", "REQUIRES", "SPEC", "check_image_tag"]
