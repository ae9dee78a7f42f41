"""CloudTrail: the record of every API call, and the ``cloudtrail`` service over it.

``record`` turns one finished call (``Call``: what the API layer saw of the request and of
the answer) into a CloudTrail record and appends it, committed before it returns.
``record_async`` is what the API layer awaits before the answer's first byte is sent: the
call goes to one writer thread, which owns a connection and commits everything queued since
its last commit in one transaction (one executemany: a group commit), then resolves each
waiting call's future on its event loop. Under concurrency many calls share one commit. Request parameters are kept
without secrets (any member named like a secret, a password or a token), object bodies (S3
and InvokeEndpoint bodies are never read) or huge values (strings cut at ``MAX_STRING``);
response elements are kept for ``Create*`` calls and only their ARNs.

Management events are always recorded. Data events (S3 object-level calls, InvokeEndpoint)
are recorded only where a trail's event selectors ask for them (``PutEventSelectors``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import cbor2

from opensage.errors import AwsError, ValidationException
from opensage.services.iam import Principal
from opensage.settings import Settings
from opensage.store import pagination
from opensage.store.audit import ATTRIBUTES, AuditStore, EventWriter

log = logging.getLogger(__name__)

MAX_STRING = 1024  # longer request values are cut
MAX_ITEMS = 100  # longer lists are cut
MAX_DEPTH = 10
MAX_LOOKUP = 50
EVENT_VERSION = "1.09"
_SECRET = re.compile(r"secret|password|passwd|token|privatekey|credential|body$", re.IGNORECASE)
_KEEP = frozenset({"nextToken", "NextToken", "maxResults"})  # paging members, not secrets
_READ_ONLY = ("Describe", "List", "Get", "Search", "Head", "Lookup", "Query", "BatchGet",
              "Select")
_ARN = re.compile(r"<(\w*Arn)>([^<]{1,2048})</\1>")
_XML_CODE = re.compile(r"<Code>([^<]{1,256})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,2048})</Message>")

SOURCES = {
    "sagemaker": "sagemaker.amazonaws.com", "sagemaker-runtime": "sagemaker.amazonaws.com",
    "sagemaker-metrics": "sagemaker.amazonaws.com", "s3": "s3.amazonaws.com",
    "sts": "sts.amazonaws.com", "iam": "iam.amazonaws.com", "logs": "logs.amazonaws.com",
    "cloudwatch": "monitoring.amazonaws.com", "cloudwatch-json": "monitoring.amazonaws.com",
    "application-autoscaling": "application-autoscaling.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
}
S3_OBJECT = "AWS::S3::Object"
ENDPOINT = "AWS::SageMaker::Endpoint"


@dataclass
class Call:
    """One API call as the API layer saw it."""

    service: str  # the router's service key
    operation: str  # "" when only the body names it (the query protocol)
    method: str
    path: str
    query: str
    source_ip: str
    user_agent: str
    principal: Principal | None
    claimed_key: str  # the access key the request names (unverified under --auth none)
    body: bytes | None  # None: not read (S3, InvokeEndpoint)
    status: int = 0
    response_headers: Mapping[str, str] = field(default_factory=dict)
    response_body: bytes | None = None  # None: not kept
    bucket: str = ""
    key: str = ""
    time: float = 0.0


@dataclass(frozen=True)
class DataSelectors:
    """Which data events trails ask for: per resource type, read and/or write, and for S3
    the ARN prefixes."""

    s3: tuple[tuple[str, bool, bool], ...] = ()  # (arn prefix, read, write)
    endpoints: tuple[bool, bool] = (False, False)  # (read, write)

    def wants_s3(self, bucket: str, key: str, read_only: bool) -> bool:
        arn = f"arn:aws:s3:::{bucket}/{key}"
        return any(arn.startswith(prefix) and (read if read_only else write)
                   for prefix, read, write in self.s3)

    @property
    def any_endpoint(self) -> bool:
        return self.endpoints[0] or self.endpoints[1]


def s3_operation(method: str, bucket: str, key: str, query: Mapping[str, str],
                 copy_source: bool) -> str:
    """The S3 operation a request is (as ``api.s3`` routes it)."""
    if not bucket:
        return "ListBuckets"
    if not key:
        table = {("GET", "location"): "GetBucketLocation", ("GET", "uploads"):
                 "ListMultipartUploads", ("GET", "versioning"): "GetBucketVersioning",
                 ("POST", "delete"): "DeleteObjects", ("GET", ""): "ListObjects",
                 ("PUT", ""): "CreateBucket", ("HEAD", ""): "HeadBucket",
                 ("DELETE", ""): "DeleteBucket", ("PUT", "policy"): "PutBucketPolicy",
                 ("GET", "policy"): "GetBucketPolicy",
                 ("DELETE", "policy"): "DeleteBucketPolicy",
                 ("GET", "policyStatus"): "GetBucketPolicyStatus"}
    else:
        table = {("PUT", "uploadId"): "UploadPartCopy" if copy_source else "UploadPart",
                 ("GET", "uploadId"): "ListParts", ("DELETE", "uploadId"):
                 "AbortMultipartUpload", ("POST", "uploadId"): "CompleteMultipartUpload",
                 ("POST", "uploads"): "CreateMultipartUpload",
                 ("PUT", ""): "CopyObject" if copy_source else "PutObject",
                 ("GET", ""): "GetObject", ("HEAD", ""): "HeadObject",
                 ("DELETE", ""): "DeleteObject"}
    sub = next((s for s in ("uploadId", "uploads", "location", "delete", "versioning",
                            "policy", "policyStatus") if s in query), "")
    name = table.get((method, sub), f"{method.title()}Object" if key else "")
    if name == "ListObjects" and query.get("list-type") == "2":
        return "ListObjectsV2"
    return name or f"{method.title()}Bucket"


def is_s3_data_event(operation: str, key: str) -> bool:
    return bool(key) or operation in ("ListObjects", "ListObjectsV2", "DeleteObjects",
                                      "ListMultipartUploads")


def read_only(operation: str) -> bool:
    return operation.startswith(_READ_ONLY)


def scrub(value: Any, depth: int = 0) -> Any:
    """``value`` without secrets, cut to bounded size."""
    if depth > MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {_camel(str(k)): scrub(v, depth + 1) for k, v in value.items()
                if str(k) in _KEEP or not _SECRET.search(str(k))}
    if isinstance(value, list | tuple):
        items = [scrub(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"...({len(value) - MAX_ITEMS} more)")
        return items
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + f"...({len(value) - MAX_STRING} more characters)"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)[:MAX_STRING]


def _camel(name: str) -> str:
    """CloudTrail's member names: ``ModelName`` -> ``modelName`` (``MY_VAR`` stays)."""
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _settle(future: asyncio.Future[bool], outcome: bool | Exception) -> None:
    if future.done():  # the waiting request was cancelled
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _rows_of(outcomes: list[bool | Exception],
             rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """``rows`` lined up with ``outcomes`` (None where an outcome has no row)."""
    it = iter(rows)
    return [next(it) if o is True else None for o in outcomes]


def _invalid_token(message: str) -> Exception:
    return AwsError(message, code="InvalidNextTokenException")


class AuditService:
    def __init__(self, settings: Settings, store: AuditStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.enabled = settings.audit
        self.selectors = DataSelectors()
        self._lock = threading.Lock()
        # the group commit: calls waiting for the writer thread, with their loop and future
        self._queued: list[tuple[Call, asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []
        self._wake = threading.Condition()
        self._closing = False
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        self._reload_selectors()
        if self.enabled and self._writer is None:
            self._closing = False
            self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                            name="audit-writer")
            self._writer.start()

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._writer is not None:
            self._writer.join(timeout=30)
            self._writer = None

    # -- recording -------------------------------------------------------------------------

    def record(self, call: Call) -> bool:
        """Append ``call``'s event (False: a data event no trail selects)."""
        row = self.event_row(call)
        if row is None:
            return False
        self.store.append(row)
        return True

    async def record_async(self, call: Call) -> bool:
        """``record``, through the writer thread's next group commit: returns once the
        event is committed (raises what the commit raised)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._wake:
            running = self._writer is not None and not self._closing
            if running:
                self._queued.append((call, loop, future))
                self._wake.notify()
        if not running:  # not started, or shutting down: a transaction of its own
            return await asyncio.to_thread(self.record, call)
        return await future

    def _write_loop(self) -> None:
        writer = self.store.writer()
        try:
            while True:
                with self._wake:
                    while not self._queued and not self._closing:
                        self._wake.wait()
                    batch, self._queued = self._queued, []
                if not batch:
                    return  # closing, and all committed
                self._commit(writer, batch)
        finally:
            writer.close()

    def _commit(self, writer: EventWriter,
                batch: list[tuple[Call, asyncio.AbstractEventLoop, asyncio.Future[bool]]]
                ) -> None:
        outcomes: list[bool | Exception] = []
        rows: list[dict[str, Any]] = []
        for call, _loop, _future in batch:
            try:
                row = self.event_row(call)
            except Exception as exc:  # noqa: BLE001 - handed to this call's waiter only
                outcomes.append(exc)
                continue
            outcomes.append(row is not None)
            if row is not None:
                rows.append(row)
        try:
            if rows:
                writer.append(rows)
        except Exception as exc:  # noqa: BLE001 - handed to the waiters
            if len(rows) == 1:
                outcomes = [exc if o is True else o for o in outcomes]
            else:  # one bad row must not lose the others: each in a transaction of its own
                outcomes = [o if o is not True else self._append_one(writer, row)
                            for o, row in zip(outcomes, _rows_of(outcomes, rows), strict=True)]
        for (_call, loop, future), outcome in zip(batch, outcomes, strict=True):
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # its loop is closed: nobody waits for this answer
                pass

    @staticmethod
    def _append_one(writer: EventWriter, row: dict[str, Any] | None) -> bool | Exception:
        try:
            writer.append([row or {}])
        except Exception as exc:  # noqa: BLE001 - handed to this row's waiter
            return exc
        return True

    def event_row(self, call: Call) -> dict[str, Any] | None:
        params = self._request_parameters(call)
        operation = call.operation or str(params.pop("Action", "") or "Unknown")
        params.pop("Version", None)
        ro = read_only(operation)
        category = "Management"
        if call.service == "s3" and is_s3_data_event(operation, call.key):
            if not self.selectors.wants_s3(call.bucket, call.key, ro):
                return None
            category = "Data"
        elif call.service == "sagemaker-runtime":
            if not self.selectors.endpoints[0 if ro else 1]:
                return None
            category = "Data"
        error_code, error_message = self._error(call)
        principal = call.principal
        event_id = str(uuid.uuid4())
        identity: dict[str, Any]
        if principal is not None:
            username = principal.name.rsplit("/", 1)[-1]
            identity = {"type": principal.type, "principalId": principal.principal_id,
                        "arn": principal.arn, "accountId": principal.account,
                        "accessKeyId": principal.access_key_id}
            if principal.type != "AssumedRole":
                identity["userName"] = username
            access_key = principal.access_key_id
        else:  # --auth none: nobody was verified
            username = "anonymous"
            identity = {"type": "AnonymousPrincipal", "principalId": "anonymous",
                        "accountId": self.settings.account_id, "userName": username}
            access_key = ""
        resources = self._resources(call, params)
        record: dict[str, Any] = {
            "eventVersion": EVENT_VERSION, "userIdentity": identity,
            "eventTime": _iso(call.time), "eventSource": SOURCES.get(call.service,
                                                                     f"{call.service}.amazonaws.com"),
            "eventName": operation, "awsRegion": self.settings.region,
            "sourceIPAddress": call.source_ip, "userAgent": call.user_agent[:MAX_STRING],
            "requestParameters": scrub(params) or None,
            "responseElements": self._response_elements(call, operation),
            "requestID": (call.response_headers.get("x-amzn-requestid")
                          or call.response_headers.get("x-amz-request-id") or ""),
            "eventID": event_id, "readOnly": ro, "eventType": "AwsApiCall",
            "managementEvent": category == "Management",
            "recipientAccountId": self.settings.account_id, "eventCategory": category,
        }
        if error_code:
            record["errorCode"], record["errorMessage"] = error_code, error_message
        if resources:
            record["resources"] = [{"type": r["ResourceType"], "ARN": r["ResourceName"]}
                                   for r in resources]
        first = resources[0] if resources else {}
        return {"event_id": event_id, "event_time": call.time, "event_name": operation,
                "event_source": record["eventSource"], "username": username,
                "resource_type": first.get("ResourceType"),
                "resource_name": first.get("ResourceName"), "read_only": ro,
                "access_key_id": access_key or None, "resources": resources,
                "record": json.dumps(record, separators=(",", ":"))}

    def record_console_login(self, principal: Principal | None, access_key_id: str,
                             source_ip: str, user_agent: str, failure: str = "") -> None:
        """A console sign-in, as AWS records one (``ConsoleLogin`` from
        ``signin.amazonaws.com``, an ``AwsConsoleSignIn`` event): who, from where, and
        whether it succeeded (``failure``: why not). The secret is never seen here."""
        if not self.enabled:
            return
        now, event_id = self.clock(), str(uuid.uuid4())
        if principal is not None:
            username = principal.name.rsplit("/", 1)[-1]
            identity: dict[str, Any] = {
                "type": principal.type, "principalId": principal.principal_id,
                "arn": principal.arn, "accountId": principal.account,
                "accessKeyId": access_key_id}
            if principal.type != "AssumedRole":
                identity["userName"] = username
        else:  # an unknown key: AWS hides the name it was tried with
            username = "HIDDEN_DUE_TO_SECURITY_REASONS"
            identity = {"type": "IAMUser", "accountId": self.settings.account_id,
                        "accessKeyId": "", "userName": username}
        record: dict[str, Any] = {
            "eventVersion": EVENT_VERSION, "userIdentity": identity,
            "eventTime": _iso(now), "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin", "awsRegion": self.settings.region,
            "sourceIPAddress": source_ip, "userAgent": user_agent[:MAX_STRING],
            "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Failure" if failure else "Success"},
            "additionalEventData": {"LoginTo": "opensage console", "MobileVersion": "No",
                                    "MFAUsed": "No"},
            "eventID": event_id, "readOnly": False, "eventType": "AwsConsoleSignIn",
            "managementEvent": True, "recipientAccountId": self.settings.account_id,
            "eventCategory": "Management"}
        if failure:
            record["errorMessage"] = failure
        self.store.append({
            "event_id": event_id, "event_time": now, "event_name": "ConsoleLogin",
            "event_source": "signin.amazonaws.com", "username": username,
            "resource_type": None, "resource_name": None, "read_only": False,
            "access_key_id": access_key_id if principal is not None else None,
            "resources": [], "record": json.dumps(record, separators=(",", ":"))})

    @staticmethod
    def _request_parameters(call: Call) -> dict[str, Any]:
        if call.service == "s3":
            params: dict[str, Any] = {"bucketName": call.bucket} if call.bucket else {}
            if call.key:
                params["key"] = call.key
            params.update((k, v) for k, v in parse_qsl(call.query, keep_blank_values=True)
                          if not k.startswith("X-Amz-") and k not in ("AWSAccessKeyId",
                                                                      "Signature"))
            return params
        if call.service == "sagemaker-runtime":
            return {"endpointName": call.path.split("/")[2]} if call.path.count("/") >= 2 \
                else {}
        body = call.body or b""
        if not body.strip():
            return {}
        try:
            if call.service in ("sts", "iam"):
                return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            if call.service == "cloudwatch":
                doc = cbor2.loads(body)
            else:
                doc = json.loads(body)
        except (ValueError, cbor2.CBORDecodeError, RecursionError):  # malformed: not kept
            return {}
        return dict(doc) if isinstance(doc, dict) else {}

    @staticmethod
    def _error(call: Call) -> tuple[str, str]:
        if call.status < 400:
            return "", ""
        headers = call.response_headers
        body = call.response_body or b""
        code, message = "", ""
        query_error = headers.get("x-amzn-query-error", "")
        if query_error:
            code = query_error.split(";", 1)[0]
        if body:
            doc: Any = None
            try:
                doc = cbor2.loads(body) if headers.get("content-type") == "application/cbor" \
                    else json.loads(body)
            except (ValueError, cbor2.CBORDecodeError, RecursionError):
                text = body[:8192].decode("utf-8", "replace")
                found = _XML_CODE.search(text)
                code = code or (found.group(1) if found else "")
                found = _XML_MESSAGE.search(text)
                message = found.group(1) if found else ""
            if isinstance(doc, dict):
                kind = str(doc.get("__type") or doc.get("code") or "")
                code = code or kind.rsplit("#", 1)[-1].rsplit(":", 1)[-1]
                message = str(doc.get("message") or doc.get("Message") or "")
        code = code or headers.get("x-amzn-errortype", "").split(":", 1)[0]
        if not code:
            code = {403: "AccessDenied", 404: "NotFound"}.get(call.status, str(call.status))
        return code, message[:MAX_STRING]

    @staticmethod
    def _response_elements(call: Call, operation: str) -> dict[str, Any] | None:
        if not operation.startswith("Create") or call.status >= 400 or not call.response_body:
            return None
        body = call.response_body
        if call.service in ("sts", "iam"):
            found = dict(_ARN.findall(body[:65536].decode("utf-8", "replace")))
            return {_camel(k): v for k, v in found.items()} or None
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        arns = {_camel(k): v for k, v in doc.items()
                if k.endswith(("Arn", "ARN")) and isinstance(v, str)}
        return arns or None

    def _resources(self, call: Call, params: Mapping[str, Any]) -> list[dict[str, str]]:
        if call.service == "s3":
            out = []
            if call.key:
                out.append({"ResourceType": S3_OBJECT,
                            "ResourceName": f"arn:aws:s3:::{call.bucket}/{call.key}"[:1024]})
            if call.bucket:
                out.append({"ResourceType": "AWS::S3::Bucket", "ResourceName": call.bucket})
            return out
        if call.service == "sagemaker-runtime":
            name = params.get("endpointName")
            return [{"ResourceType": ENDPOINT, "ResourceName": name}] if name else []
        for k, v in params.items():
            if k.endswith("Name") and isinstance(v, str) and v and not _SECRET.search(k):
                kind = k[:-4] or "Resource"
                prefix = {"sagemaker": "SageMaker", "iam": "IAM", "logs": "Logs",
                          "cloudtrail": "CloudTrail"}.get(call.service, call.service.title())
                return [{"ResourceType": f"AWS::{prefix}::{kind}", "ResourceName": v[:1024]}]
        return []

    # -- LookupEvents ----------------------------------------------------------------------

    def lookup_events(self, params: Mapping[str, Any]) -> dict[str, Any]:
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise AwsError("You cannot specify more than one lookup attribute.",
                           code="InvalidLookupAttributesException")
        attribute: tuple[str, Any] | None = None
        if attributes:
            key, value = attributes[0]["AttributeKey"], attributes[0]["AttributeValue"]
            if key not in ATTRIBUTES:
                raise AwsError(f"Lookup attribute key {key} is not supported.",
                               code="InvalidLookupAttributesException")
            if key == "ReadOnly":
                if value.lower() not in ("true", "false"):
                    raise AwsError("ReadOnly must be true or false.",
                                   code="InvalidLookupAttributesException")
                attribute = (key, value.lower() == "true")
            else:
                attribute = (key, value)
        start, end = (_seconds(params.get("StartTime")), _seconds(params.get("EndTime")))
        if start is not None and end is not None and start > end:
            raise AwsError("Start time must be before end time.", code="InvalidTimeRangeException")
        # Event times are stored to the microsecond, answered rounded to the millisecond and
        # sent back by botocore cut to the millisecond (or the second): a bound equal to an
        # event's EventTime as the client saw it includes that event.
        if start is not None and start != int(start):
            start -= 0.002
        if end is not None:
            end += 0.999999 if end == int(end) else 0.002
        limit = int(params.get("MaxResults") or MAX_LOOKUP)
        if not 1 <= limit <= MAX_LOOKUP:
            raise AwsError(f"MaxResults must be between 1 and {MAX_LOOKUP}.",
                           code="InvalidMaxResultsException")
        query = ["LookupEvents", attribute, start, end]
        after: tuple[float, int] | None = None
        token = params.get("NextToken")
        if token:
            position = pagination.decode(token, query, 2, invalid=_invalid_token)
            after = (float(position[0]), int(position[1]))
        rows = self.store.lookup(attribute, start, end, after, limit + 1)
        events = [{
            "EventId": r["event_id"], "EventName": r["event_name"],
            "ReadOnly": "true" if r["read_only"] else "false",
            "AccessKeyId": r["access_key_id"] or "",
            "EventTime": dt.datetime.fromtimestamp(r["event_time"], dt.UTC),
            "EventSource": r["event_source"], "Username": r["username"] or "",
            "Resources": r["resources"], "CloudTrailEvent": r["record"]} for r in rows[:limit]]
        answer: dict[str, Any] = {"Events": events}
        if len(rows) > limit:
            last = rows[limit - 1]
            answer["NextToken"] = pagination.encode(query, [last["event_time"], last["seq"]])
        return answer

    def purge_expired(self, now: float) -> int:
        days = self.settings.audit_retention_days
        return self.store.purge_before(now - days * 86_400.0) if days > 0 else 0

    # -- trails (what selects data events) ---------------------------------------------------

    def _arn(self, name: str) -> str:
        return (f"arn:aws:cloudtrail:{self.settings.region}:{self.settings.account_id}:"
                f"trail/{name}")

    def _find(self, name: str) -> dict[str, Any]:
        short = name.rsplit("/", 1)[-1]
        for row in self.store.trails():
            if row["name"] == short:
                return dict(row["body"])
        raise AwsError(f"Unknown trail: {self._arn(short)} for the user: "
                       f"{self.settings.account_id}", code="TrailNotFoundException")

    def create_trail(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{2,127}", name):
            raise AwsError(f"Trail name {name} is not valid.", code="InvalidTrailNameException")
        body = {"Name": name, "S3BucketName": params["S3BucketName"],
                "TrailARN": self._arn(name), "HomeRegion": self.settings.region,
                "IsMultiRegionTrail": bool(params.get("IsMultiRegionTrail", False)),
                "IncludeGlobalServiceEvents": bool(params.get("IncludeGlobalServiceEvents",
                                                              True)),
                "LogFileValidationEnabled": bool(params.get("EnableLogFileValidation",
                                                            False)),
                "IsOrganizationTrail": False,
                "EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True,
                                    "DataResources": [], "ExcludeManagementEventSources": []}]}
        if params.get("S3KeyPrefix"):
            body["S3KeyPrefix"] = params["S3KeyPrefix"]
        if not self.store.add_trail(name, self.clock(), body):
            raise AwsError(f"Trail {name} already exists for customer: "
                           f"{self.settings.account_id}", code="TrailAlreadyExistsException")
        return {k: v for k, v in body.items() if k not in ("EventSelectors", "HomeRegion")}

    def describe_trails(self, params: Mapping[str, Any]) -> dict[str, Any]:
        wanted = {n.rsplit("/", 1)[-1] for n in params.get("trailNameList") or []}
        trails = [{k: v for k, v in dict(r["body"]).items() if k not in (
            "EventSelectors", "AdvancedEventSelectors")} | {"HasCustomEventSelectors": True}
            for r in self.store.trails() if not wanted or r["name"] in wanted]
        return {"trailList": trails}

    def delete_trail(self, params: Mapping[str, Any]) -> None:
        name = self._find(params["Name"])["Name"]
        self.store.delete_trails([name])
        self._reload_selectors()

    def put_event_selectors(self, params: Mapping[str, Any]) -> dict[str, Any]:
        body = self._find(params["TrailName"])
        classic, advanced = params.get("EventSelectors"), params.get("AdvancedEventSelectors")
        if (classic is None) == (advanced is None):
            raise AwsError("Specify either EventSelectors or AdvancedEventSelectors.",
                           code="InvalidEventSelectorsException")
        body.pop("EventSelectors", None)
        body.pop("AdvancedEventSelectors", None)
        if classic is not None:
            for selector in classic:
                for resource in selector.get("DataResources") or []:
                    if resource.get("Type") not in (S3_OBJECT, ENDPOINT):
                        raise AwsError(f"Data resource type {resource.get('Type')} is not "
                                       "supported.", code="InvalidEventSelectorsException")
            body["EventSelectors"] = [dict(s) for s in classic]
        else:
            body["AdvancedEventSelectors"] = [dict(s) for s in advanced or []]
        self.store.put_trail(body["Name"], body)
        self._reload_selectors()
        return {"TrailARN": body["TrailARN"],
                **{k: body[k] for k in ("EventSelectors", "AdvancedEventSelectors")
                   if k in body}}

    def get_event_selectors(self, params: Mapping[str, Any]) -> dict[str, Any]:
        body = self._find(params["TrailName"])
        return {"TrailARN": body["TrailARN"],
                **{k: body[k] for k in ("EventSelectors", "AdvancedEventSelectors")
                   if k in body}}

    def _reload_selectors(self) -> None:
        s3: list[tuple[str, bool, bool]] = []
        endpoint = [False, False]
        for row in self.store.trails():
            body = row["body"]
            for selector in body.get("EventSelectors") or []:
                rw = selector.get("ReadWriteType", "All")
                read, write = rw in ("All", "ReadOnly"), rw in ("All", "WriteOnly")
                for resource in selector.get("DataResources") or []:
                    values = resource.get("Values") or []
                    if resource.get("Type") == S3_OBJECT:
                        s3.extend(("arn:aws:s3:::" if v in ("arn:aws:s3", "arn:aws:s3:::")
                                   else v, read, write) for v in values)
                    elif resource.get("Type") == ENDPOINT:
                        endpoint = [endpoint[0] or read, endpoint[1] or write]
            for selector in body.get("AdvancedEventSelectors") or []:
                fields = {f["Field"]: f for f in selector.get("FieldSelectors") or []}
                if "Data" not in (fields.get("eventCategory") or {}).get("Equals", []):
                    continue
                types = (fields.get("resources.type") or {}).get("Equals", [])
                ro = (fields.get("readOnly") or {}).get("Equals", [])
                read, write = (not ro or "true" in ro), (not ro or "false" in ro)
                prefixes = (fields.get("resources.ARN") or {}).get("StartsWith") or [
                    "arn:aws:s3:::"]
                if S3_OBJECT in types:
                    s3.extend((p, read, write) for p in prefixes)
                if ENDPOINT in types:
                    endpoint = [endpoint[0] or read, endpoint[1] or write]
        with self._lock:
            self.selectors = DataSelectors(tuple(s3), (endpoint[0], endpoint[1]))


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValidationException(f"Invalid time {value!r}") from None
