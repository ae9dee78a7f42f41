"""Script-mode framework environments: which image needs which packages, and the uv-built
environments that hold them (see ``catalog`` and ``builder``)."""

from opensage.runner.environments.builder import (
    BuildCancelled,
    EnvironmentBuildError,
    Environments,
)
from opensage.runner.environments.catalog import (
    Framework,
    UnsupportedFramework,
    builtin_environment,
    catalogue,
    framework_for_image,
    resolve,
    supported,
)

__all__ = ["BuildCancelled", "EnvironmentBuildError", "Environments", "Framework",
           "UnsupportedFramework", "builtin_environment", "catalogue", "framework_for_image",
           "resolve", "supported"]
