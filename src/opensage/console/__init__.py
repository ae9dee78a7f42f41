"""The web console: server-rendered pages over the same services the API calls.

Mounted by ``api/app.py`` under :data:`PREFIX` (``/_console``): no S3 bucket name can hold an
underscore or begin a path there, and no AWS request is routed by that path.
"""

from opensage.console.app import PREFIX, create_console

__all__ = ["PREFIX", "create_console"]
