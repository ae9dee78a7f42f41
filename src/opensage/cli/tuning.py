"""``opensage tuning show``: a tuning job's leaderboard, read through the SageMaker API."""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

app = typer.Typer(no_args_is_help=True, help="Hyperparameter tuning jobs.")
_ACTIVE = ("InProgress", "Stopping")
_STATUS_STYLE = {"Completed": "green", "InProgress": "cyan", "Stopping": "yellow",
                 "Stopped": "yellow", "Failed": "red"}


def _client(endpoint_url: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker", endpoint_url=endpoint_url, region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "test",
        config=Config(retries={"max_attempts": 2}))


def _children(sm: Any, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=100,
            **({"NextToken": token} if token else {}))
        found += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token or not page["TrainingJobSummaries"]:
            return found


def _seconds(child: dict[str, Any], now: datetime) -> str:
    start, end = child.get("TrainingStartTime"), child.get("TrainingEndTime")
    if start is None:
        return "-"
    return f"{((end or now.astimezone(start.tzinfo)) - start).total_seconds():.1f}s"


def render(job: dict[str, Any], children: list[dict[str, Any]]) -> Group:
    """The job's header line and its children ranked best first (unscored last)."""
    objective = (job["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective")
                 or job["TrainingJobDefinitions"][0]["TuningObjective"])  # definitions' own
    sign = -1.0 if objective["Type"] == "Maximize" else 1.0

    def value(child: dict[str, Any]) -> float | None:
        metric = child.get("FinalHyperParameterTuningJobObjectiveMetric")
        return None if metric is None else float(metric["Value"])

    ranked = sorted(children, key=lambda c: (value(c) is None, sign * (value(c) or 0.0),
                                             c["TrainingJobName"]))
    names = sorted({k for c in children for k in c.get("TunedHyperParameters") or {}})
    status = job["HyperParameterTuningJobStatus"]
    counters = job.get("TrainingJobStatusCounters") or {}
    limits = job["HyperParameterTuningJobConfig"].get("ResourceLimits") or {}
    header = Text.assemble(
        (job["HyperParameterTuningJobName"], "bold"), "  ",
        (status, _STATUS_STYLE.get(status, "")), "  ",
        f"{job['HyperParameterTuningJobConfig'].get('Strategy', 'Bayesian')}  "
        f"{objective['Type']} {objective['MetricName']}  "
        f"jobs {len(children)}/{limits.get('MaxNumberOfTrainingJobs', '?')} "
        f"(completed {counters.get('Completed', 0)}, running {counters.get('InProgress', 0)}, "
        f"stopped {counters.get('Stopped', 0)}, failed {counters.get('NonRetryableError', 0)})")
    table = Table(show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("training job")
    table.add_column("status")
    table.add_column(objective["MetricName"], justify="right")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("time", justify="right")
    now = datetime.now().astimezone()
    best = (job.get("BestTrainingJob") or {}).get("TrainingJobName")
    for rank, child in enumerate(ranked, start=1):
        v = value(child)
        table.add_row(
            str(rank), child["TrainingJobName"],
            Text(child["TrainingJobStatus"], _STATUS_STYLE.get(child["TrainingJobStatus"], "")),
            "-" if v is None else f"{v:.6g}",
            *[(child.get("TunedHyperParameters") or {}).get(n, "") for n in names],
            _seconds(child, now),
            style="bold" if child["TrainingJobName"] == best else None)
    parts: list[Any] = [header, table]
    overall = job.get("OverallBestTrainingJob")
    if overall and overall.get("TrainingJobName") != best:
        metric = overall.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        parts.append(Text(f"overall best (warm start): {overall['TrainingJobName']} of "
                          f"{overall.get('TuningJobName')}: {metric.get('Value')}"))
    if job.get("FailureReason"):
        parts.append(Text(f"failure: {job['FailureReason']}", "red"))
    return Group(*parts)


@app.command()
def show(name: Annotated[str, typer.Argument(help="The tuning job's name.")],
         endpoint_url: Annotated[str, typer.Option(
             envvar="AWS_ENDPOINT_URL", help="The opensage server.")] = "http://127.0.0.1:8484",
         region: Annotated[str, typer.Option(envvar="AWS_DEFAULT_REGION",
                                             help="Region.")] = "us-east-1",
         watch: Annotated[bool, typer.Option(
             "--watch", help="Refresh while the search runs.")] = False,
         interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
         ) -> None:
    """Print a tuning job's leaderboard: its child jobs, best first."""
    from botocore.exceptions import BotoCoreError, ClientError

    console = Console()
    sm = _client(endpoint_url, region)

    def fetch() -> tuple[dict[str, Any], Group]:
        job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        return job, render(job, _children(sm, name))

    try:
        job, view = fetch()
        if not watch or job["HyperParameterTuningJobStatus"] not in _ACTIVE:
            console.print(view)
            return
        with Live(view, console=console, auto_refresh=False) as live:
            while job["HyperParameterTuningJobStatus"] in _ACTIVE:
                time.sleep(interval)
                job, view = fetch()
                live.update(view, refresh=True)
    except ClientError as err:
        console.print(f"[red]{err.response['Error'].get('Message') or err}[/]")
        raise typer.Exit(1) from None
    except BotoCoreError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from None
