"""What each page shows, read through the services the API calls (List*, Describe*, Search,
the CloudWatch series, the log streams, the object store): no SQL of the console's own."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote

from starlette.requests import Request

from opensage.console.access import Caller
from opensage.console.kinds import BY_SLUG, PAGES, ResourcePage, settled
from opensage.errors import AwsError, ValidationException
from opensage.services import search as search_service
from opensage.services.metrics import TRAINING_NAMESPACE, aggregate
from opensage.services.wiring import Services
from opensage.store.object_rows import ObjectInfo

Params = dict[str, Any]
Page = tuple[str, dict[str, Any]]
PAGE_SIZE = 50
LEADERBOARD_PAGE = 100  # ListTrainingJobsForHyperParameterTuningJob's MaxResults
PREVIEW_BYTES = 64 * 1024
ENDPOINT_WINDOW = 3 * 3600  # seconds of endpoint metrics charted
LOG_GROUPS = {"training-jobs": "/aws/sagemaker/TrainingJobs",
              "processing-jobs": "/aws/sagemaker/ProcessingJobs",
              "transform-jobs": "/aws/sagemaker/TransformJobs"}


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _kind(slug: str) -> ResourcePage:
    page = BY_SLUG.get(slug)
    if page is None:
        raise ValidationException(f"The console has no page named {slug!r}.")
    return page


# -- home ----------------------------------------------------------------------------------
def home(request: Request, services: Services) -> Page:
    caller = Caller.of(request, services)
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for page in PAGES:
        if not caller.allowed(page.list_action):
            continue  # a kind the caller may not list is not shown
        count = services.context.resources.count(page.kind.name)
        recent, _ = page.summaries(caller, {"MaxResults": 5}) if count else ([], None)
        rows.append({"page": page, "count": count, "recent": recent})
        if count and "Failed" in page.statuses:
            failed, _ = page.summaries(caller, {"MaxResults": 5, "StatusEquals": "Failed"})
            failures += [{"page": page, "item": item} for item in failed]
    failures.sort(key=lambda f: _epoch(f["item"].get("CreationTime")) or 0, reverse=True)
    busy = any(not settled(item.get(r["page"].status_field)) for r in rows
               for item in r["recent"] if r["page"].status_field)
    return "home.html", {"kinds": rows, "failures": failures, "live": busy}


# -- lists ---------------------------------------------------------------------------------
def _date(text: str | None, *, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationException(f"Dates are YYYY-MM-DD; got {text!r}.") from None
    return datetime.fromtimestamp(day.timestamp() + (86400 if end else 0), UTC)


def resource_list(request: Request, services: Services) -> Page:
    page = _kind(request.path_params["slug"])
    caller = Caller.of(request, services)
    q = request.query_params
    filters = {k: q.get(k, "").strip() for k in ("status", "name", "after", "before", "image",
                                                   "tag", "sort", "order")}
    sort = filters["sort"] if filters["sort"] in page.sorts else "CreationTime"
    order = "Ascending" if filters["order"] == "Ascending" else "Descending"
    token = q.get("token") or None
    if page.slug == "training-jobs" and (filters["image"] or filters["tag"]):
        caller.require("sagemaker:Search")
        items, next_token = _search_training(services, filters, sort, order, token)
    else:
        params: Params = {"MaxResults": PAGE_SIZE, "SortBy": sort, "SortOrder": order,
                          "NextToken": token, "NameContains": filters["name"] or None,
                          "StatusEquals": filters["status"] or None,
                          "CreationTimeAfter": _date(filters["after"]),
                          "CreationTimeBefore": _date(filters["before"], end=True)}
        items, next_token = page.summaries(caller, {k: v for k, v in params.items()
                                                      if v is not None})
    busy = page.status_field is not None and any(
        not settled(i.get(page.status_field)) for i in items)
    return "list.html", {"page": page, "items": items, "next_token": next_token,
                         "filters": {**filters, "sort": sort, "order": order},
                         "first_page": token is None, "live": busy}


def _search_training(services: Services, f: dict[str, str], sort: str, order: str,
                     token: str | None) -> tuple[list[Params], str | None]:
    """The training list filtered on image or tags: the ``Search`` operation."""
    filters: list[Params] = []
    if f["name"]:
        filters.append({"Name": "TrainingJobName", "Operator": "Contains", "Value": f["name"]})
    if f["status"]:
        filters.append({"Name": "TrainingJobStatus", "Operator": "Equals",
                        "Value": f["status"]})
    if f["image"]:
        filters.append({"Name": "AlgorithmSpecification.TrainingImage",
                        "Operator": "Contains", "Value": f["image"]})
    if f["tag"]:
        key, _, value = f["tag"].partition("=")
        filters.append({"Name": f"Tags.{key.strip()}", "Operator": "Equals",
                        "Value": value.strip()} if value else
                       {"Name": f"Tags.{key.strip()}", "Operator": "Exists"})
    for bound, op in (("after", "GreaterThanOrEqualTo"), ("before", "LessThan")):
        when = _date(f[bound], end=bound == "before")
        if when is not None:
            filters.append({"Name": "CreationTime", "Operator": op,
                            "Value": str(when.timestamp())})
    sort_by = {"Name": "TrainingJobName", "Status": "TrainingJobStatus"}.get(sort, sort)
    answer = search_service.search(services.context, {
        "Resource": "TrainingJob", "SearchExpression": {"Filters": filters},
        "SortBy": sort_by, "SortOrder": order, "MaxResults": PAGE_SIZE, "NextToken": token})
    return [r["TrainingJob"] for r in answer["Results"]], answer.get("NextToken")


# -- detail pages --------------------------------------------------------------------------
def resource_detail(request: Request, services: Services) -> Page:
    page = _kind(request.path_params["slug"])
    name = request.path_params["name"]
    doc = page.document(Caller.of(request, services), name)
    status = doc.get(page.status_field) if page.status_field else doc.get("Status")
    context: dict[str, Any] = {"page": page, "name": name, "doc": doc, "status": status,
                               "live": not settled(status),
                               "log_group": LOG_GROUPS.get(page.slug)}
    extra = _DETAILS.get(page.slug)
    if extra is not None:
        context.update(extra(request, services, name, doc))
    return page.template, context


def _training(request: Request, services: Services, name: str, doc: Params) -> Params:
    charted = Caller.of(request, services).allowed("cloudwatch:GetMetricData")
    return {"series": training_series(services, name, doc) if charted else {},
            "hyperparameters": sorted((doc.get("HyperParameters") or {}).items()),
            "tuning_job": (doc.get("TuningJobArn") or "").rsplit("/", 1)[-1] or None}


def training_series(services: Services, name: str, doc: Params) -> dict[str, list[list[float]]]:
    """Each metric of the job over time, as CloudWatch holds it ([epoch seconds, value])."""
    names = [m["Name"] for m in (doc.get("AlgorithmSpecification") or {}).get(
        "MetricDefinitions") or []]
    names += [m["MetricName"] for m in doc.get("FinalMetricDataList") or []]
    found: dict[str, list[list[float]]] = {}
    for metric in dict.fromkeys(names):
        points = services.context.metrics.series(TRAINING_NAMESPACE, metric,
                                                 {"TrainingJobName": name}, 0, 1e11)
        if points:
            found[metric] = [[p.timestamp, p.value] for p in points]
    return found


def _tuning(request: Request, services: Services, name: str, doc: Params) -> Params:
    # a List call: its resource is "*", as the API checks it
    Caller.of(request, services).require("sagemaker:ListTrainingJobsForHyperParameterTuningJob")
    children: list[Params] = []
    token = None
    while True:  # every child, a page of the API's MaxResults at a time
        answer = services.tuning.training_jobs({"HyperParameterTuningJobName": name,
                                                "MaxResults": LEADERBOARD_PAGE,
                                                "SortBy": "CreationTime",
                                                "SortOrder": "Ascending", "NextToken": token})
        children += answer["TrainingJobSummaries"]
        token = answer.get("NextToken")
        if not token:
            break
    config = doc.get("HyperParameterTuningJobConfig") or {}
    objective = config.get("HyperParameterTuningJobObjective") or {}
    minimize = objective.get("Type") == "Minimize"
    early = config.get("TrainingJobEarlyStoppingType") == "Auto"
    hp_names = sorted({k for c in children for k in c.get("TunedHyperParameters") or {}})
    rows = []
    for order, child in enumerate(children, 1):
        value = (child.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        rows.append({"order": order, "name": child["TrainingJobName"],
                     "status": child.get("TrainingJobStatus"), "objective": value,
                     "hp": child.get("TunedHyperParameters") or {},
                     "early_stopped": early and child.get("TrainingJobStatus") == "Stopped",
                     "created": child.get("CreationTime"),
                     "failure": child.get("FailureReason")})
    scored = [r for r in rows if isinstance(r["objective"], int | float)]
    best = (min if minimize else max)(scored, key=lambda r: r["objective"]) if scored else None
    sort = request.query_params.get("sort", "objective")
    descending = request.query_params.get("order", "best") == "worst" if sort == "objective" \
        else request.query_params.get("order") == "desc"

    def key(row: Params) -> Any:
        if sort == "objective":
            v = row["objective"]
            missing = not isinstance(v, int | float)
            return (missing, 0.0 if missing else (v if minimize else -v))
        if sort.startswith("hp:"):
            v = row["hp"].get(sort[3:])
            return (v is None, _number_or_text(v))
        return (False, _number_or_text(row.get(sort)))

    ordered = sorted(rows, key=key)
    if descending:  # missing values stay last
        ordered = [r for r in ordered if not key(r)[0]][::-1] + [r for r in ordered if key(r)[0]]
    board_chart = {"order": [[r["order"], r["objective"]] for r in scored],
             "names": {r["order"]: r["name"] for r in rows},
             "minimize": minimize, "metric": objective.get("MetricName"),
             "hp": {h: [[_number_or_text(r["hp"].get(h)), r["objective"]] for r in scored]
                    for h in hp_names}}
    return {"rows": ordered, "best": best, "hp_names": hp_names, "sort": sort,
            "descending": descending, "board_chart": board_chart,
            "objective": objective}


def _number_or_text(value: Any) -> Any:
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value or "")


def _endpoint(request: Request, services: Services, name: str, doc: Params) -> Params:
    ctx = services.context
    caller = Caller.of(request, services)
    variants = [v["VariantName"] for v in doc.get("ProductionVariants") or []]
    config = _safe(lambda: BY_SLUG["endpoint-configs"].document(caller,
                                                                doc["EndpointConfigName"]))
    now = ctx.now()
    start = now - ENDPOINT_WINDOW
    charts: dict[str, dict[str, list[list[float]]]] = {}
    charted = caller.allowed("cloudwatch:GetMetricData")
    for metric, stat in (("Invocations", "Sum"), ("ModelLatency", "Average"),
                         ("Invocation4XXErrors", "Sum"), ("Invocation5XXErrors", "Sum")):
        for variant in variants if charted else ():
            points = ctx.metrics.series("AWS/SageMaker", metric, {
                "EndpointName": name, "VariantName": variant}, start, now + 60)
            rows = aggregate(points, start, 60, [stat], [])
            if rows:
                charts.setdefault(metric, {})[variant] = [
                    [_epoch(r["Timestamp"]) or 0.0, r[stat]] for r in rows]
    resources = [f"endpoint/{name}/variant/{v}" for v in variants]
    scaling: Params = {"targets": [], "policies": [], "activities": []}
    if resources and all(caller.allowed(f"application-autoscaling:{a}") for a in (
            "DescribeScalableTargets", "DescribeScalingPolicies", "DescribeScalingActivities")):
        query = {"ServiceNamespace": "sagemaker", "ResourceIds": resources}
        scaling["targets"] = services.autoscaling.describe_targets(query)["ScalableTargets"]
        for resource in resources:
            one = {"ServiceNamespace": "sagemaker", "ResourceId": resource}
            scaling["policies"] += services.autoscaling.describe_policies(
                one)["ScalingPolicies"]
            scaling["activities"] += services.autoscaling.describe_activities(
                {**one, "MaxResults": 20})["ScalingActivities"]
    return {"config": config, "charts": charts, "scaling": scaling, "variants": variants,
            "may_invoke": caller.allowed("sagemaker:InvokeEndpoint",
                                         caller.sagemaker_arn("endpoint", name))}


def _experiment(request: Request, services: Services, name: str, doc: Params) -> Params:
    caller = Caller.of(request, services)
    caller.require("sagemaker:ListTrialComponents")
    runs: list[Params] = []
    token = None
    while len(runs) < 500:
        answer = services.experiments.list_trial_components({
            "ExperimentName": name, "MaxResults": 100, "NextToken": token,
            "SortBy": "CreationTime", "SortOrder": "Ascending"})
        runs += answer["TrialComponentSummaries"]
        token = answer.get("NextToken")
        if not token:
            break
    described = [BY_SLUG["trial-components"].document(caller, r["TrialComponentName"])
                 for r in runs]
    params = sorted({k for d in described for k in d.get("Parameters") or {}})
    metrics = sorted({m["MetricName"] for d in described for m in d.get("Metrics") or []})
    table = []
    for d in described:
        values = {k: _parameter(v) for k, v in (d.get("Parameters") or {}).items()}
        last = {m["MetricName"]: m.get("Last", m.get("Avg")) for m in d.get("Metrics") or []}
        table.append({"name": d["TrialComponentName"], "display": d.get("DisplayName"),
                      "status": (d.get("Status") or {}).get("PrimaryStatus"),
                      "params": values, "metrics": last,
                      "created": d.get("CreationTime")})
    return {"runs": table, "param_names": params, "metric_names": metrics,
            "live": any(not settled(r["status"]) for r in table)}


def _parameter(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("NumberValue", value.get("StringValue"))
    return value


def _trial_component(request: Request, services: Services, name: str, doc: Params) -> Params:
    series: dict[str, list[list[float]]] = {}
    charted = Caller.of(request, services).allowed("sagemaker:BatchGetMetrics")
    for m in doc.get("Metrics") or [] if charted else []:
        answer = services.experiments.get_metrics([{
            "MetricName": m["MetricName"], "ResourceArn": doc["TrialComponentArn"],
            "MetricStat": "Avg", "Period": "IterationNumber", "XAxisType": "IterationNumber"}])
        result = answer["MetricQueryResults"][0]
        series[m["MetricName"]] = [[x, y] for x, y in zip(result["XAxisValues"],
                                                          result["MetricValues"], strict=False)]
    params = sorted((k, _parameter(v)) for k, v in (doc.get("Parameters") or {}).items())
    return {"series": series, "params": params, "steps": True}


_DETAILS = {"training-jobs": _training, "tuning-jobs": _tuning, "endpoints": _endpoint,
            "experiments": _experiment, "trial-components": _trial_component}


# -- compare -------------------------------------------------------------------------------
def compare(request: Request, services: Services) -> Page:
    names = list(dict.fromkeys(n for n in request.query_params.getlist("job") if n))
    if len(names) < 2:
        raise ValidationException("Pick two or more training jobs to compare.")
    caller = Caller.of(request, services)
    docs = [BY_SLUG["training-jobs"].document(caller, n) for n in names]
    charted = caller.allowed("cloudwatch:GetMetricData")
    hp_keys = sorted({k for d in docs for k in d.get("HyperParameters") or {}})
    metric_keys = sorted({m["MetricName"] for d in docs for m in d.get("FinalMetricDataList")
                          or []})
    hps = [(k, [(d.get("HyperParameters") or {}).get(k) for d in docs]) for k in hp_keys]
    finals = [(k, [next((m["Value"] for m in d.get("FinalMetricDataList") or []
                         if m["MetricName"] == k), None) for d in docs]) for k in metric_keys]
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for name, doc in zip(names, docs, strict=True) if charted else ():
        start = _epoch(doc.get("TrainingStartTime")) or _epoch(doc.get("CreationTime")) or 0.0
        for metric, points in training_series(services, name, doc).items():
            curves.setdefault(metric, {})[name] = [[t - start, v] for t, v in points]
    return "compare.html", {"names": names, "docs": docs, "hps": hps, "finals": finals,
                            "curves": curves,
                            "live": any(not settled(d.get("TrainingJobStatus")) for d in docs)}


# -- objects -------------------------------------------------------------------------------
def buckets(request: Request, services: Services) -> Page:
    Caller.of(request, services).require("s3:ListAllMyBuckets")
    return "buckets.html", {"buckets": services.context.objects.list_buckets()}


def bucket(request: Request, services: Services) -> Page:
    name = request.path_params["bucket"]
    prefix = request.query_params.get("prefix", "")
    after = request.query_params.get("after", "")
    Caller.of(request, services).require("s3:ListBucket", f"arn:aws:s3:::{name}")
    listing = services.context.objects.list_objects(name, prefix, "/", after, 200)
    crumbs = []
    parts = prefix.split("/")[:-1]
    for i, part in enumerate(parts):
        crumbs.append((part, "/".join(parts[:i + 1]) + "/"))
    return "bucket.html", {"bucket": name, "key_prefix": prefix, "listing": listing,
                           "crumbs": crumbs}


def preview(request: Request, services: Services) -> Page:
    name = request.path_params["bucket"]
    key = request.query_params.get("key", "")
    Caller.of(request, services).require("s3:GetObject", f"arn:aws:s3:::{name}/{key}")
    info = services.context.objects.head_object(name, key)
    data = services.context.objects.read_object(name, key, (0, PREVIEW_BYTES - 1))
    truncated = info.size > len(data)
    kind, body = _preview(key, info.meta.get("ContentType") or "", data, truncated)
    return "preview.html", {"bucket": name, "key": key, "info": info, "kind": kind,
                            "body": body, "truncated": truncated}


def open_object(request: Request, services: Services) -> tuple[ObjectInfo, IO[bytes]]:
    """The object a download names, and its bytes (the caller closes them)."""
    name = request.path_params["bucket"]
    key = request.query_params.get("key", "")
    Caller.of(request, services).require("s3:GetObject", f"arn:aws:s3:::{name}/{key}")
    return services.context.objects.open_object(name, key)


def _preview(key: str, content_type: str, data: bytes, truncated: bool) -> tuple[str, Any]:
    """What a preview shows: a CSV table, JSON lines, text, or nothing (binary)."""
    if b"\0" in data[:4096]:
        return "binary", None
    text = data.decode("utf-8", errors="replace")
    if truncated and "\n" in text:
        text = text[:text.rindex("\n")]  # no half line at the end
    lower = key.lower()
    if lower.endswith((".csv", ".csv.out")) or "csv" in content_type:
        return "csv", list(csv.reader(io.StringIO(text)))[:200]
    if lower.endswith((".jsonl", ".jsonlines", ".json.out")) or "jsonlines" in content_type:
        lines = []
        for line in text.splitlines()[:200]:
            try:
                lines.append(json.dumps(json.loads(line), indent=1))
            except ValueError:
                lines.append(line)
        return "jsonl", lines
    if lower.endswith(".json") or "json" in content_type:
        try:
            return "text", json.dumps(json.loads(text), indent=2)
        except ValueError:
            return "text", text
    return "text", text


def s3_location(uri: Any) -> dict[str, str] | None:
    """An ``s3://bucket/key`` URI as links: the console's browser and the S3 facade's
    download (an unsigned GET of ``/<bucket>/<key>``, as on S3's path style)."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    bucket_name, _, key = uri[5:].partition("/")
    if not bucket_name:
        return None
    folder = key.endswith("/") or not key
    parent = key if folder else key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    browse = f"/objects/{quote(bucket_name)}" + (f"?prefix={quote(parent, safe='')}"
                                                 if parent else "")
    return {"bucket": bucket_name, "key": key, "browse": browse,
            "preview": "" if folder else
            f"/objects/{quote(bucket_name)}/preview?key={quote(key, safe='')}",
            "download": "" if folder else f"/{quote(bucket_name)}/{quote(key)}"}


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except AwsError:  # the page shows what it can: a config deleted meanwhile is left out
        return None


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return None
