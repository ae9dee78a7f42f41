"""Application Auto Scaling for SageMaker endpoint variants.

Scalable targets (``endpoint/<name>/variant/<variant>``, dimension
``sagemaker:variant:DesiredInstanceCount``), target-tracking scaling policies and scaling
activities are rows in the resource store. A scaler thread wakes every ``interval`` seconds
(``OPENSAGE_AUTOSCALING_INTERVAL``, default 5), reads each policy's metric over the last
``window`` seconds (``OPENSAGE_AUTOSCALING_WINDOW``, default 60) from the metric store,
computes ``ceil(current * metric / target)`` within the target's min/max, respecting the
cooldowns and ``DisableScaleIn``, applies it through the endpoint service (workers started
or drained) and records a scaling activity: InProgress while the endpoint changes, then
Successful or Failed (``states``). Activities are kept six weeks, as AWS keeps them
(``purge_activities``, run by housekeeping).

Several servers may share one database: only the one holding the scaler lease
(``store.leases``, renewed while it lives) scales, so one metric reading is never acted on
twice; another server takes the lease over once its holder closes or dies.

A target's row holds the API document; which endpoint variant it scales and when it last
scaled out and in are opensage's own state, in the row's ``internal`` column (under the
names they had in the document before Alembic revision 0004 moved them there).
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from opensage.errors import AwsError, ValidationException
from opensage.services.autoscaling.states import ActivityStatus, check_transition, sources_of
from opensage.services.context import Context
from opensage.services.endpoints import EndpointService
from opensage.services.endpoints.states import EndpointStatus
from opensage.services.metrics import Datapoint, dimension_key
from opensage.store import pagination
from opensage.store.leases import LeaseKeeper, Leases, server_owner
from opensage.store.resources import AlreadyExists, Resource, StatusConflict

__all__ = ["AutoscalingService", "ObjectNotFoundException"]

TARGET_KIND = "autoscaling-scalable-target"
POLICY_KIND = "autoscaling-scaling-policy"
ACTIVITY_KIND = "autoscaling-scaling-activity"
NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
PREDEFINED = {"SageMakerVariantInvocationsPerInstance": "InvocationsPerInstance"}
ACTIVITY_RETENTION_SECONDS = 42 * 86_400.0  # six weeks
DEFAULT_COOLDOWN = 300.0
APPLY_TIMEOUT = 120.0
RESOURCE_ID = re.compile(r"^endpoint/([^/]+)/variant/([^/]+)$")
# A target's internal state (``Resource.internal``): the variant it scales, and when it last
# scaled each way (the cooldowns count from there).
ENDPOINT, VARIANT = "_Endpoint", "_Variant"
LAST_SCALE_OUT, LAST_SCALE_IN = "_LastScaleOut", "_LastScaleIn"
# The lease of the one server that scales (see the module's docstring).
SCALER_LEASE = "autoscaling/scaler"
SCALER_LEASE_TTL = 60.0
log = logging.getLogger(__name__)


class ObjectNotFoundException(AwsError):
    code = "ObjectNotFoundException"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class AutoscalingService:
    def __init__(self, ctx: Context, endpoints: EndpointService, interval: float | None = None,
                 window: float | None = None) -> None:
        self.ctx = ctx
        self.endpoints = endpoints  # scaling sets their variants' capacities
        self.interval = interval if interval is not None else _env_float(
            "OPENSAGE_AUTOSCALING_INTERVAL", 5.0)
        self.window = window if window is not None else _env_float(
            "OPENSAGE_AUTOSCALING_WINDOW", 60.0)
        # One scaling pass at a time in this process (``reset`` waits for the one going on);
        # one server scaling at a time: the scaler lease.
        self._lock = threading.RLock()
        self._scaler = LeaseKeeper(Leases(ctx.db), server_owner(ctx.settings.data_dir),
                                   SCALER_LEASE_TTL)
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # -- scalable targets ------------------------------------------------------------------
    def register(self, params: dict[str, Any]) -> str:
        """RegisterScalableTarget: create the target, or change the one registered (one
        compare-and-set of its row: a concurrent change is never lost)."""
        ns, resource_id, dimension = self._key(params)
        endpoint, variant = self._variant(resource_id)
        name = _name(ns, resource_id, dimension)
        now = self.ctx.now()
        arn = self.ctx.arn(f"scalable-target/{uuid.uuid4().hex}",
                           service="application-autoscaling")
        role = self.ctx.arn(
            "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            service="iam").replace(f":{self.ctx.settings.region}:", "::")

        def change(body: dict[str, Any]) -> None:
            _registered(body, params, ns=ns, resource_id=resource_id, dimension=dimension,
                        arn=arn, role=role, now=now)

        def scales(internal: dict[str, Any]) -> None:
            internal.update({ENDPOINT: endpoint, VARIANT: variant})

        if self.ctx.resources.get(TARGET_KIND, name) is None:
            body: dict[str, Any] = {}
            change(body)
            try:
                self.ctx.resources.create(TARGET_KIND, name, arn, body, now=now,
                                          internal={ENDPOINT: endpoint, VARIANT: variant})
                self._wake.set()
                return arn
            except AlreadyExists:
                pass  # registered meanwhile: change that one
        try:
            row = self.ctx.resources.edit(TARGET_KIND, name, [None], change, now=now,
                                          change_internal=scales)
        except StatusConflict:  # deregistered meanwhile
            raise AwsError("Concurrent update of the scalable target.",
                           code="ConcurrentUpdateException") from None
        self._wake.set()
        return str(row.body["ScalableTargetARN"])

    def describe_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        ns = self._namespace(params)
        ids = params.get("ResourceIds") or None
        dimension = params.get("ScalableDimension")
        rows = [r for r in self._rows(TARGET_KIND)
                if r.body["ServiceNamespace"] == ns
                and (ids is None or r.body["ResourceId"] in ids)
                and (dimension is None or r.body["ScalableDimension"] == dimension)]
        page, token = _page(rows, params, "ScalableTargets")
        return {"ScalableTargets": page, **token}

    def deregister(self, params: dict[str, Any]) -> None:
        ns, resource_id, dimension = self._key(params)
        with self._lock:
            if self.ctx.resources.delete(TARGET_KIND,
                                         _name(ns, resource_id, dimension)) is None:
                raise ObjectNotFoundException(_no_target(ns, resource_id, dimension))
            for row in self._rows(POLICY_KIND):
                if _same_target(row.body, ns, resource_id, dimension):
                    self.ctx.resources.delete(POLICY_KIND, row.name)

    # -- scaling policies ------------------------------------------------------------------
    def put_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        ns, resource_id, dimension = self._key(params)
        name = params["PolicyName"]
        kind = params.get("PolicyType") or "StepScaling"
        if kind != "TargetTrackingScaling":
            raise ValidationException(f"opensage supports only the TargetTrackingScaling policy "
                                      f"type, not {kind}.")
        config = params.get("TargetTrackingScalingPolicyConfiguration")
        if not config:
            raise ValidationException("TargetTrackingScalingPolicyConfiguration is required "
                                      "for a TargetTrackingScaling policy.")
        predefined = config.get("PredefinedMetricSpecification")
        custom = config.get("CustomizedMetricSpecification")
        if bool(predefined) == bool(custom):
            raise ValidationException("Exactly one of PredefinedMetricSpecification and "
                                      "CustomizedMetricSpecification must be specified.")
        if predefined and predefined.get("PredefinedMetricType") not in PREDEFINED:
            raise ValidationException(f"Unsupported predefined metric type "
                                      f"{predefined.get('PredefinedMetricType')} for "
                                      f"{dimension}.")
        if custom and (custom.get("Metrics") or not custom.get("MetricName")
                       or not custom.get("Namespace") or not custom.get("Statistic")):
            raise ValidationException("CustomizedMetricSpecification needs MetricName, "
                                      "Namespace and Statistic (metric math is not supported).")
        if not config.get("TargetValue") or config["TargetValue"] <= 0:
            raise ValidationException("TargetValue must be greater than 0.")
        with self._lock:
            if self.ctx.resources.get(TARGET_KIND,
                                      _name(ns, resource_id, dimension)) is None:
                raise ObjectNotFoundException(_no_target(ns, resource_id, dimension))
            key = _name(ns, resource_id, dimension, name)
            row = self.ctx.resources.get(POLICY_KIND, key)
            now = self.ctx.now()
            if row is not None:
                arn, created = row.body["PolicyARN"], row.body["CreationTime"]
            else:
                arn = self.ctx.arn(
                    f"scalingPolicy:{uuid.uuid4()}:resource/{ns}/{resource_id}:"
                    f"policyName/{name}", service="autoscaling")
                created = now
            alarms = [{"AlarmName": f"TargetTracking-{resource_id}-Alarm{side}-{uuid.uuid4()}",
                       "AlarmARN": self.ctx.arn(f"alarm:TargetTracking-{resource_id}-"
                                                    f"Alarm{side}", service="cloudwatch")}
                      for side in ("High", "Low")]
            body = {"PolicyARN": arn, "PolicyName": name, "ServiceNamespace": ns,
                    "ResourceId": resource_id, "ScalableDimension": dimension,
                    "PolicyType": kind, "TargetTrackingScalingPolicyConfiguration": config,
                    "Alarms": alarms, "CreationTime": created}
            if row is None:
                try:
                    self.ctx.resources.create(POLICY_KIND, key, arn, body, now=now)
                except AlreadyExists:
                    raise AwsError("Concurrent update of the scaling policy.",
                                   code="ConcurrentUpdateException") from None
            else:
                self.ctx.resources.update(POLICY_KIND, key, body, now=now)
        self._wake.set()
        return {"PolicyARN": arn, "Alarms": alarms}

    def describe_policies(self, params: dict[str, Any]) -> dict[str, Any]:
        ns = self._namespace(params)
        names = params.get("PolicyNames") or None
        rows = [r for r in self._rows(POLICY_KIND)
                if r.body["ServiceNamespace"] == ns
                and (names is None or r.body["PolicyName"] in names)
                and params.get("ResourceId") in (None, r.body["ResourceId"])
                and params.get("ScalableDimension") in (None, r.body["ScalableDimension"])]
        page, token = _page(rows, params, "ScalingPolicies")
        return {"ScalingPolicies": page, **token}

    def delete_policy(self, params: dict[str, Any]) -> None:
        ns, resource_id, dimension = self._key(params)
        with self._lock:
            key = _name(ns, resource_id, dimension, params["PolicyName"])
            if self.ctx.resources.delete(POLICY_KIND, key) is None:
                raise ObjectNotFoundException(
                    f"No scaling policy found for service namespace: {ns}, resource ID: "
                    f"{resource_id}, scalable dimension: {dimension}, policy name: "
                    f"{params['PolicyName']}")

    # -- scaling activities ----------------------------------------------------------------
    def describe_activities(self, params: dict[str, Any]) -> dict[str, Any]:
        ns = self._namespace(params)
        rows = [r for r in self._rows(ACTIVITY_KIND)
                if r.body["ServiceNamespace"] == ns
                and params.get("ResourceId") in (None, r.body["ResourceId"])
                and params.get("ScalableDimension") in (None, r.body["ScalableDimension"])]
        page, token = _page(rows, params, "ScalingActivities", newest_first=True)
        return {"ScalingActivities": page, **token}

    def purge_activities(self, now: float) -> int:
        """Delete the activities that started more than six weeks before ``now``."""
        return self.ctx.resources.delete_created_before(
            ACTIVITY_KIND, now - ACTIVITY_RETENTION_SECONDS)

    def _begin(self, target: dict[str, Any], desired: int, cause: str, start: float) -> str:
        """Record a scaling activity InProgress (setting ``desired``); its id."""
        activity = uuid.uuid4().hex
        body = {"ActivityId": activity, "ServiceNamespace": target["ServiceNamespace"],
                "ResourceId": target["ResourceId"],
                "ScalableDimension": target["ScalableDimension"],
                "Description": f"Setting desired instance count to {desired}.",
                "Cause": cause, "StartTime": start,
                "StatusCode": str(ActivityStatus.IN_PROGRESS),
                "StatusMessage": f"Setting desired instance count to {desired}."}
        self.ctx.resources.create(
            ACTIVITY_KIND, activity,
            self.ctx.arn(f"scaling-activity/{activity}", service="application-autoscaling"),
            body, now=start, status=ActivityStatus.IN_PROGRESS)
        return activity

    def _end(self, activity: str, failure: str | None, desired: int | None = None) -> None:
        """Move the activity to Successful (``desired`` reached), or to Failed with
        ``failure`` as its message."""
        target = ActivityStatus.FAILED if failure else ActivityStatus.SUCCESSFUL
        now = self.ctx.now()

        def ended(body: dict[str, Any]) -> None:
            check_transition(ActivityStatus(body["StatusCode"]), target)
            body.update(EndTime=now, StatusCode=str(target), StatusMessage=failure or (
                f"Successfully set desired instance count to {desired}. Change successfully "
                "fulfilled by sagemaker."))

        self.ctx.resources.transition(ACTIVITY_KIND, activity, sources_of(target), target,
                                      ended, now=now)

    def _fail_abandoned(self) -> None:
        """An activity left InProgress by a server that stopped while applying it (longer
        ago than an apply may take) ends Failed instead of staying InProgress for ever."""
        cutoff = self.ctx.now() - APPLY_TIMEOUT
        for row in self.ctx.resources.scan(ACTIVITY_KIND,
                                           statuses=[ActivityStatus.IN_PROGRESS]):
            if row.creation_time < cutoff:
                try:
                    self._end(row.name, "opensage stopped before the change was confirmed.")
                except StatusConflict:
                    pass  # ended meanwhile

    # -- the scaler ------------------------------------------------------------------------
    def start(self) -> None:
        self._fail_abandoned()
        self._closing.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="autoscaler")
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=APPLY_TIMEOUT)
        self._scaler.close()
        self._scaler.release(SCALER_LEASE)  # another server scales from its next pass

    def reset(self) -> None:
        with self._lock:  # wait for a scaling step in progress
            pass

    def set_interval(self, seconds: float, window: float | None = None) -> None:
        """How often the scaler looks (and over how many seconds of metrics); wakes it."""
        self.interval = seconds
        if window is not None:
            self.window = window
        self._wake.set()

    def _loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                self.tick()
            except Exception:
                log.exception("autoscaling step failed")

    def tick(self) -> None:
        """One pass over every scalable target: scale the ones whose metric says so; only
        by the server holding the scaler lease (claimed before anything is read)."""
        with self._lock:
            if not self._scaler.claim(SCALER_LEASE):
                return  # another server scales
            policies: dict[str, list[dict[str, Any]]] = {}
            for row in self._rows(POLICY_KIND):
                b = row.body
                policies.setdefault(_name(b["ServiceNamespace"], b["ResourceId"],
                                          b["ScalableDimension"]), []).append(b)
            # Every endpoint and every metric series of the pass is read up front, in one
            # query per kind of row and per metric: not one per target.
            targets = self._rows(TARGET_KIND)
            endpoints = self.ctx.resources.get_many(
                "endpoint", [row.internal[ENDPOINT] for row in targets])
            readings = self._readings(targets, policies, self.ctx.now())
            for row in targets:
                if self._closing.is_set() or not self._scaler.claim(SCALER_LEASE):
                    return  # closing, or the lease was lost (this server stalled past it)
                try:
                    self._scale(row, policies.get(row.name, []),
                                endpoints.get(row.internal[ENDPOINT]), readings)
                except AwsError:
                    continue  # the endpoint is gone or busy: try again next time

    def _readings(self, targets: Sequence[Resource], policies: dict[str, list[dict[str, Any]]],
                  now: float) -> dict[tuple[str, str, str], list[Datapoint]]:
        """The last ``window`` seconds of every series the policies of ``targets`` watch,
        by (namespace, metric, dimension key): one query per metric."""
        wanted: dict[tuple[str, str], list[dict[str, str]]] = {}
        for row in targets:
            for policy in policies.get(row.name, []):
                namespace, metric, dims = _watched(policy, row.internal[ENDPOINT],
                                                   row.internal[VARIANT])
                wanted.setdefault((namespace, metric), []).append(dims)
        window = max(self.window, 1e-3)
        readings: dict[tuple[str, str, str], list[Datapoint]] = {}
        for (namespace, metric), dimension_sets in wanted.items():
            found = self.ctx.metrics.series_of(namespace, metric, dimension_sets,
                                               now - window, now + 1)
            readings.update({(namespace, metric, key): points for key, points in found.items()})
        return readings

    def _scale(self, row: Resource, policies: list[dict[str, Any]], found: Resource | None,
               readings: dict[tuple[str, str, str], list[Datapoint]]) -> None:
        target = row.body
        endpoint, variant = row.internal[ENDPOINT], row.internal[VARIANT]
        last_out = float(row.internal.get(LAST_SCALE_OUT, 0))
        last_in = float(row.internal.get(LAST_SCALE_IN, 0))
        if found is None or found.status != EndpointStatus.IN_SERVICE:
            return
        view = next((v for v in found.body.get("ProductionVariants") or []
                     if v["VariantName"] == variant), None)
        if view is None or view.get("CurrentInstanceCount") is None:
            return
        current = int(view["CurrentInstanceCount"])
        lo, hi = target["MinCapacity"], target["MaxCapacity"]
        now = self.ctx.now()
        desired, cause = current, ""
        if current < lo:
            desired, cause = lo, f"minimum capacity was set to {lo}"
        elif current > hi:
            desired, cause = hi, f"maximum capacity was set to {hi}"
        else:
            suspended = target.get("SuspendedState") or {}
            outs: list[tuple[int, str]] = []
            ins: list[tuple[int, str]] = []
            for policy in policies:
                proposed = self._proposal(policy, endpoint, variant, current, readings)
                if proposed is None:
                    ins.append((current, ""))  # no data: this policy does not agree to scale in
                    continue
                config = policy["TargetTrackingScalingPolicyConfiguration"]
                alarm = (f"monitor alarm TargetTracking-{target['ResourceId']}-Alarm"
                         f"{'High' if proposed > current else 'Low'} in state ALARM triggered "
                         f"policy {policy['PolicyName']}")
                if proposed > current:
                    cooldown = config.get("ScaleOutCooldown", DEFAULT_COOLDOWN)
                    if (not suspended.get("DynamicScalingOutSuspended")
                            and now - last_out >= cooldown):
                        outs.append((proposed, alarm))
                    ins.append((current, ""))
                elif proposed < current and not config.get("DisableScaleIn"):
                    cooldown = config.get("ScaleInCooldown", DEFAULT_COOLDOWN)
                    if (not suspended.get("DynamicScalingInSuspended")
                            and now - last_out >= cooldown
                            and now - last_in >= cooldown):
                        ins.append((proposed, alarm))
                    else:
                        ins.append((current, ""))
                else:
                    ins.append((current, ""))
            if outs:
                desired, cause = max(outs)
            elif ins:
                desired, cause = max(ins)
            desired = min(max(desired, lo), hi)
        if desired == current:
            return
        # Refused (the endpoint is gone or busy): no activity, try again at the next pass.
        _, thread = self.endpoints.set_capacities(
            endpoint, [{"VariantName": variant, "DesiredInstanceCount": desired}])
        activity = self._begin(target, desired, cause, now)
        thread.join(APPLY_TIMEOUT)
        after = self.ctx.resources.get("endpoint", endpoint)
        failure = after.body.get("FailureReason") if after is not None else "Endpoint deleted."
        self._end(activity, failure, desired)
        if not failure:
            scaled = LAST_SCALE_OUT if desired > current else LAST_SCALE_IN
            try:
                self.ctx.resources.edit(
                    TARGET_KIND, row.name, [None], now=self.ctx.now(),
                    change_internal=lambda internal: internal.update({scaled: self.ctx.now()}))
            except StatusConflict:
                pass  # deregistered meanwhile

    def _proposal(self, policy: dict[str, Any], endpoint: str, variant: str, current: int,
                  readings: dict[tuple[str, str, str], list[Datapoint]]) -> int | None:
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        window = max(self.window, 1e-3)
        namespace, metric, dims = _watched(policy, endpoint, variant)
        points = readings.get((namespace, metric, dimension_key(dims)), [])
        if config.get("PredefinedMetricSpecification"):
            value = sum(p.value for p in points) * 60.0 / window  # per minute, as AWS's Sum
        else:
            if not points:
                return None
            values = [p.value for p in points]
            value = {"Sum": sum(values), "Minimum": min(values), "Maximum": max(values),
                     "SampleCount": float(len(values))}.get(
                config["CustomizedMetricSpecification"]["Statistic"], sum(values) / len(values))
        return math.ceil(round(current * value / float(config["TargetValue"]), 9))

    # -- helpers ---------------------------------------------------------------------------
    def _namespace(self, params: dict[str, Any]) -> str:
        ns = str(params["ServiceNamespace"])
        if ns != NAMESPACE:
            raise ValidationException(f"Unsupported service namespace {ns}: opensage scales "
                                      f"only {NAMESPACE}.")
        return ns

    def _key(self, params: dict[str, Any]) -> tuple[str, str, str]:
        ns = self._namespace(params)
        resource_id, dimension = params["ResourceId"], params["ScalableDimension"]
        if dimension != DIMENSION:
            raise ValidationException(f"Unsupported scalable dimension {dimension} for "
                                      f"service namespace {ns}.")
        if not RESOURCE_ID.match(resource_id):
            raise ValidationException(f"Unsupported resource ID {resource_id}: expected "
                                      "endpoint/<endpoint-name>/variant/<variant-name>.")
        return ns, resource_id, dimension

    def _variant(self, resource_id: str) -> tuple[str, str]:
        match = RESOURCE_ID.match(resource_id)
        assert match is not None
        endpoint, variant = match.groups()
        row = self.ctx.resources.get("endpoint", endpoint)
        variants = {v["VariantName"] for v in (row.body.get("ProductionVariants") or [])
                    } if row else set()
        if variant not in variants:
            raise ValidationException(f"The endpoint variant {resource_id} does not exist: "
                                      f"endpoint {endpoint} has no variant {variant}.")
        return row.name if row else endpoint, variant

    def _rows(self, kind: str) -> list[Resource]:
        return list(self.ctx.resources.scan(kind))


def _name(*parts: str) -> str:
    return "|".join(parts)


def _same_target(body: dict[str, Any], ns: str, resource_id: str, dimension: str) -> bool:
    return (body["ServiceNamespace"], body["ResourceId"], body["ScalableDimension"]) == (
        ns, resource_id, dimension)


def _no_target(ns: str, resource_id: str, dimension: str) -> str:
    return (f"No scalable target registered for service namespace: {ns}, resource ID: "
            f"{resource_id}, scalable dimension: {dimension}")


def _registered(body: dict[str, Any], params: dict[str, Any], *, ns: str, resource_id: str,
                dimension: str, arn: str, role: str, now: float) -> None:
    """A target's document as RegisterScalableTarget leaves it: what the request gives,
    over what was registered before (``body``, empty for a new target)."""
    lo = params.get("MinCapacity", body.get("MinCapacity"))
    hi = params.get("MaxCapacity", body.get("MaxCapacity"))
    if lo is None or hi is None:
        raise ValidationException("MinCapacity and MaxCapacity are required when "
                                  "registering a new scalable target.")
    if lo < 0 or hi < 0 or lo > hi:
        raise ValidationException(f"Minimum capacity {lo} must be between 0 and the "
                                  f"maximum capacity {hi}.")
    body.update(ServiceNamespace=ns, ResourceId=resource_id, ScalableDimension=dimension,
                MinCapacity=int(lo), MaxCapacity=int(hi),
                ScalableTargetARN=body.get("ScalableTargetARN") or arn,
                RoleARN=params.get("RoleARN") or body.get("RoleARN") or role)
    body.setdefault("CreationTime", now)
    suspended = params.get("SuspendedState")
    if suspended is not None:
        body["SuspendedState"] = {**body.get("SuspendedState", {}), **suspended}
    body.setdefault("SuspendedState", {"DynamicScalingInSuspended": False,
                                       "DynamicScalingOutSuspended": False,
                                       "ScheduledScalingSuspended": False})


def _watched(policy: dict[str, Any], endpoint: str,
             variant: str) -> tuple[str, str, dict[str, str]]:
    """The (namespace, metric, dimensions) of the series a target-tracking policy follows."""
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    spec = config.get("PredefinedMetricSpecification")
    if spec:
        return ("AWS/SageMaker", PREDEFINED[spec["PredefinedMetricType"]],
                {"EndpointName": endpoint, "VariantName": variant})
    custom = config["CustomizedMetricSpecification"]
    return (custom["Namespace"], custom["MetricName"],
            {d["Name"]: d["Value"] for d in custom.get("Dimensions") or []})


def _invalid_token(message: str) -> AwsError:
    return AwsError("Invalid NextToken.", code="InvalidNextTokenException")


def _page(rows: list[Resource], params: dict[str, Any], member: str, *,
          newest_first: bool = False) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A keyset page of ``rows`` (creation order, or newest ``StartTime`` first)."""
    size = params.get("MaxResults") or 50
    if not 1 <= size <= 100:
        raise ValidationException("MaxResults must be between 1 and 100.")

    def key(row: Resource) -> tuple[Any, ...]:
        return (row.body["StartTime"], row.row_id) if newest_first else (row.row_id,)

    ordered = sorted(rows, key=key, reverse=newest_first)
    query = (member, {k: v for k, v in params.items() if k not in ("NextToken", "MaxResults")})
    page, token = pagination.page(ordered, key, query=query, token=params.get("NextToken"),
                                  limit=size, descending=newest_first, invalid=_invalid_token)
    return [r.body for r in page], {"NextToken": token} if token else {}
