"""What the first-party built-ins (the ``aialgs`` containers: linear-learner, kmeans, pca, knn,
factorization-machines, randomcutforest, ipinsights) share: the image tag rule, channels that
take RecordIO-protobuf or CSV, the ``#quality_metric`` log lines and their metric definitions.

Training I/O (reading channels, logging metrics, saving the model) is in
:mod:`opensage.algorithms.firstparty.training`; inference in :mod:`opensage.algorithms.inference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.errors import SpecError
from opensage.algorithms.params import Int
from opensage.algorithms.spec import MetricDefinition

__all__ = ["CSV_FORMAT", "INPUT_MODES", "RECORDIO_FORMAT", "check_image_tag", "data_channel",
           "feature_dim", "mini_batch_size", "quality_metric"]

RECORDIO_FORMAT = "recordio-protobuf"
CSV_FORMAT = "csv"
INPUT_MODES = ("File", "FastFile", "Pipe")
TAGS = ("1", "latest")


def check_image_tag(repository: str, tag: str | None) -> str:
    """The first-party images have one version: tag ``1`` (``latest`` and no tag mean it)."""
    if tag is None or tag in TAGS:
        return "1"
    raise SpecError(f"Image tag '{tag}' of {repository} is not supported; use {repository}:1.")


def data_channel(*, required: bool, csv: bool = True, label_sizes: tuple[str, ...] = ("0", "1"),
                 input_modes: tuple[str, ...] = INPUT_MODES,
                 description: str = "") -> ChannelSpec:
    """A channel of RecordIO-protobuf (the default when ContentType is absent, as with the
    SDK's ``record_set()``) and, unless ``csv=False``, ``text/csv[;label_size=N]``."""
    types: Mapping[str, str] = {"application/x-recordio-protobuf": RECORDIO_FORMAT}
    if csv:
        types = {**types, "text/csv": CSV_FORMAT}
    return ChannelSpec(required=required, content_types=types,
                       default_content_type="application/x-recordio-protobuf",
                       parameters={"label_size": label_sizes}, input_modes=input_modes,
                       description=description)


def quality_metric(channel: str, metric: str, direction: Literal["Maximize", "Minimize"],
                   *, loss: bool | None = None, epoch: bool = False) -> MetricDefinition:
    """``<channel>:<metric>`` found in ``#quality_metric: host=algo-1, <channel> <metric>
    <loss|score>=<value>`` lines (with ``epoch=N,`` before the channel for per-epoch ones)."""
    kind = ("loss" if direction == "Minimize" else "score") if loss is None else (
        "loss" if loss else "score")
    prefix = r"epoch=\S+, " if epoch else ""
    regex = rf"#quality_metric: host=\S+, {prefix}{channel} {metric} <{kind}>=(\S+)"
    return MetricDefinition(f"{channel}:{metric}", regex, direction)


def feature_dim(*, required: bool = True, max: int | None = None) -> Int:
    return Int(min=1, max=max, required=required,
               description="Number of features in the input data")


def mini_batch_size(default: int | None = None, *, required: bool = False,
                    max: int | None = None, tunable: bool = False) -> Int:
    return Int(min=1, max=max, default=default, required=required, tunable=tunable,
               description="Number of observations per mini-batch")
