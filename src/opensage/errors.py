"""One error hierarchy that mirrors AWS error codes.

Services raise these; ``api/error_encoding.py`` serialises them, one way per protocol family.
Nothing below ``api/`` knows HTTP beyond the status code carried here.
"""

from __future__ import annotations


class AwsError(Exception):
    """An error AWS would answer: a code, a message and an HTTP status."""

    code: str = "InternalFailure"
    status: int = 400

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None,
                 **fields: str | int) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        # Extra members some protocols put in the error body (S3's BucketName, Key, ...;
        # InvokeEndpoint's OriginalStatusCode, an integer).
        self.fields: dict[str, str | int] = fields

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ValidationException(AwsError):
    code = "ValidationException"


class ResourceNotFound(AwsError):
    code = "ResourceNotFound"


class ResourceInUse(AwsError):
    code = "ResourceInUse"


class ResourceLimitExceeded(AwsError):
    code = "ResourceLimitExceeded"


class ConflictException(AwsError):
    code = "ConflictException"


class SerializationException(AwsError):
    code = "SerializationException"


class UnknownOperationException(AwsError):
    code = "UnknownOperationException"


class NotImplementedOperation(AwsError):
    """An operation the model knows but opensage has no handler for yet.

    501 is not retried by botocore's standard retry mode, unlike 500/502/503/504.
    """

    code = "NotImplementedException"
    status = 501


class InternalFailure(AwsError):
    code = "InternalFailure"
    status = 500


class RequestEntityTooLarge(AwsError):
    code = "RequestEntityTooLargeException"
    status = 413


# CloudWatch Logs uses its own names for the same ideas.
class LogsResourceNotFound(AwsError):
    code = "ResourceNotFoundException"


class LogsResourceAlreadyExists(AwsError):
    code = "ResourceAlreadyExistsException"


class InvalidParameterException(AwsError):
    code = "InvalidParameterException"


# S3's codes (answered as XML by the S3 facade).
class S3Error(AwsError):
    code = "InvalidRequest"


class NoSuchBucket(S3Error):
    code = "NoSuchBucket"
    status = 404


class NoSuchKey(S3Error):
    code = "NoSuchKey"
    status = 404


class NoSuchUpload(S3Error):
    code = "NoSuchUpload"
    status = 404


class BucketAlreadyOwnedByYou(S3Error):
    code = "BucketAlreadyOwnedByYou"
    status = 409


class BucketNotEmpty(S3Error):
    code = "BucketNotEmpty"
    status = 409


class InvalidBucketName(S3Error):
    code = "InvalidBucketName"


class InvalidRange(S3Error):
    code = "InvalidRange"
    status = 416


class InvalidPart(S3Error):
    code = "InvalidPart"


class InvalidPartOrder(S3Error):
    code = "InvalidPartOrder"


class BadDigest(S3Error):
    code = "BadDigest"


class MalformedXML(S3Error):
    code = "MalformedXML"


class AccessDenied(S3Error):
    code = "AccessDenied"
    status = 403


class EntityTooSmall(S3Error):
    code = "EntityTooSmall"


class EntityTooLarge(S3Error):
    code = "EntityTooLarge"


class InvalidArgument(S3Error):
    code = "InvalidArgument"


class InvalidDigest(S3Error):
    code = "InvalidDigest"


class IncompleteBody(S3Error):
    code = "IncompleteBody"


class KeyTooLongError(S3Error):
    code = "KeyTooLongError"


class PreconditionFailed(S3Error):
    code = "PreconditionFailed"
    status = 412


class NotModified(S3Error):
    """Not a failure: a conditional GET/HEAD whose object did not change (bodiless 304)."""

    code = "NotModified"
    status = 304


class MethodNotAllowed(S3Error):
    code = "MethodNotAllowed"
    status = 405


class S3NotImplemented(S3Error):
    """A header or subresource opensage's S3 does not implement (501: not retried)."""

    code = "NotImplemented"
    status = 501


# CloudWatch's codes.
class InvalidParameterCombination(AwsError):
    code = "InvalidParameterCombination"


class InvalidParameterValue(AwsError):
    code = "InvalidParameterValue"


# sagemaker-runtime's codes (InvokeEndpoint): REST-JSON, the code in X-Amzn-ErrorType.
class ValidationError(AwsError):
    code = "ValidationError"


class ModelError(AwsError):
    """The model answered non-2xx; fields: OriginalStatusCode, OriginalMessage, LogStreamArn."""

    code = "ModelError"
    status = 424


# IAM's codes (the query protocol).
class NoSuchEntity(AwsError):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(AwsError):
    code = "EntityAlreadyExists"
    status = 409


class LimitExceeded(AwsError):
    code = "LimitExceeded"
    status = 409


class DeleteConflict(AwsError):
    code = "DeleteConflict"
    status = 409


class AuthFailure(AwsError):
    """A request that failed authentication: the code and status each protocol answers are
    chosen by ``api/auth.py``; this carries the default (awsJson's)."""

    code = "UnrecognizedClientException"
    status = 403
