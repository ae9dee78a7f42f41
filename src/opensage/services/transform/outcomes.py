"""How a transform job's run ends early."""

from __future__ import annotations


class JobFailed(Exception):
    """The job cannot go on; the message is its FailureReason."""


class JobStopped(Exception):
    """StopTransformJob (or a server shutdown) ended the run."""
