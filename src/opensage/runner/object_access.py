"""What the runner needs of an object store: ``ObjectAccess``, and ``RemoteObjects`` (the same
calls over S3's HTTP API, for hosts on other machines). They live in
``opensage.store.remote_objects`` (model workers on Ray nodes use them too); the runner's
modules import them from here."""

from opensage.store.remote_objects import ObjectAccess, RemoteObjects, S3Endpoint

__all__ = ["ObjectAccess", "RemoteObjects", "S3Endpoint"]
