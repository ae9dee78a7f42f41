"""DeepAR's data, without torch: JSON lines time series (``start``, ``target``, optional
``cat`` and ``dynamic_feat``; gzip files too), the frequency's calendar, its time features
and seasonal lags. Every problem is a UserError naming the file and line."""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import UserError
from opensage.algorithms.deepar.spec import FREQ


@dataclass
class Series:
    start: np.datetime64
    target: NDArray[np.float64]  # NaN where missing
    cat: list[int] = field(default_factory=list)
    dynamic_feat: NDArray[np.float64] | None = None  # (features, length)
    where: str = ""


@dataclass(frozen=True)
class Frequency:
    multiple: int
    unit: str  # min, H, D, W, M

    @classmethod
    def parse(cls, text: str) -> Frequency:
        match = FREQ.match(text)
        if not match:
            raise UserError(f"time_freq {text!r} is not a frequency ([N]min, [N]H, [N]D, [N]W, "
                            f"[N]M).")
        return cls(int(match.group(1) or 1), match.group(2))

    def index(self, start: np.datetime64, length: int) -> NDArray[Any]:
        """The timestamps of ``length`` steps from ``start``."""
        steps = np.arange(length) * self.multiple
        if self.unit == "M":
            months: NDArray[Any] = start.astype("datetime64[M]") + steps.astype("timedelta64[M]")
            return months.astype("datetime64[m]")
        unit = {"min": ("m", 1), "H": ("h", 1), "D": ("D", 1), "W": ("D", 7)}[self.unit]
        delta = (steps * unit[1]).astype(f"timedelta64[{unit[0]}]")
        out: NDArray[Any] = start.astype("datetime64[m]") + delta
        return out

    def lags(self) -> list[int]:
        """Lags of the target fed to the network: recent ones and the season's."""
        seasonal = {"min": [60 // max(1, self.multiple)], "H": [24, 168], "D": [7, 14],
                    "W": [52], "M": [12]}[self.unit]
        if self.unit == "H":
            seasonal = [max(1, s // self.multiple) for s in seasonal]
        return sorted({1, 2, 3, *[s for s in seasonal if s > 3]})

    def season(self) -> int:
        """The season length of the seasonal-naive forecast."""
        return {"min": max(1, 60 // self.multiple), "H": max(1, 24 // self.multiple),
                "D": 7, "W": 52, "M": 12}[self.unit]

    def features(self, stamps: NDArray[Any]) -> NDArray[np.float32]:
        """Calendar features in [-0.5, 0.5] (steps x features), as GluonTS's for the unit."""
        minutes = stamps.astype("datetime64[m]").astype(np.int64)
        days = stamps.astype("datetime64[D]").astype(np.int64)
        hour = (minutes // 60) % 24
        dow = (days + 3) % 7  # 1970-01-01 was a Thursday
        month = stamps.astype("datetime64[M]").astype(np.int64) % 12
        year_start = stamps.astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
        doy = days - year_start
        month_start = stamps.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        dom = days - month_start
        columns: list[NDArray[Any]]
        if self.unit == "min":
            columns = [(minutes % 60) / 59.0, hour / 23.0]
        elif self.unit == "H":
            columns = [hour / 23.0, dow / 6.0]
        elif self.unit == "D":
            columns = [dow / 6.0, dom / 30.0, doy / 365.0]
        elif self.unit == "W":
            columns = [dom / 30.0, (doy // 7) / 51.0]
        else:
            columns = [month / 11.0]
        return (np.stack(columns, axis=1) - 0.5).astype(np.float32)


def _parse_start(text: Any, where: str) -> np.datetime64:
    if not isinstance(text, str):
        raise UserError(f"{where}: 'start' must be a timestamp string like "
                        f"\"2020-01-01 00:00:00\".")
    try:
        return np.datetime64(text.strip().replace(" ", "T"), "m")
    except ValueError:
        raise UserError(f"{where}: 'start' {text!r} is not a timestamp (YYYY-MM-DD "
                        f"HH:MM:SS).") from None


def _numbers(values: Any, where: str, what: str) -> NDArray[np.float64]:
    if not isinstance(values, list):
        raise UserError(f"{where}: '{what}' must be a list of numbers.")
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.lower() == "nan"):
            out[i] = math.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = float(v)
        else:
            raise UserError(f"{where}: '{what}' value {i + 1} ({v!r}) is not a number.")
    return out


def parse_series(document: Any, where: str) -> Series:
    if not isinstance(document, dict):
        raise UserError(f"{where}: a series must be a JSON object with 'start' and 'target'.")
    for key in ("start", "target"):
        if key not in document:
            raise UserError(f"{where}: the series has no '{key}'.")
    target = _numbers(document["target"], where, "target")
    if not len(target):
        raise UserError(f"{where}: 'target' is empty.")
    cat = document.get("cat", [])
    if isinstance(cat, int):
        cat = [cat]
    if not isinstance(cat, list) or not all(isinstance(c, int) and not isinstance(c, bool)
                                            and c >= 0 for c in cat):
        raise UserError(f"{where}: 'cat' must be a list of non-negative integers.")
    dynamic = None
    if document.get("dynamic_feat") is not None:
        rows = document["dynamic_feat"]
        if not isinstance(rows, list):
            raise UserError(f"{where}: 'dynamic_feat' must be a list of lists of numbers.")
        dynamic = np.stack([_numbers(r, where, "dynamic_feat") for r in rows]) if rows else \
            np.zeros((0, len(target)))
        if np.isnan(dynamic).any():
            raise UserError(f"{where}: 'dynamic_feat' has a missing value; dynamic features "
                            f"must be given at every time point.")
    return Series(_parse_start(document["start"], where), target, list(cat), dynamic, where)


def read_series(location: Path, channel: str) -> list[Series]:
    from opensage.data import data_files

    out: list[Series] = []
    for path in data_files(location):
        opener: Any = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    where = f"The {channel} channel's file {path.name}, line {number}"
                    try:
                        document = json.loads(line)
                    except ValueError as e:
                        raise UserError(f"{where} is not JSON ({e}); DeepAR reads JSON lines "
                                        f"with 'start' and 'target'.") from None
                    out.append(parse_series(document, where))
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"The {channel} channel's file {path.name} cannot be read as "
                            f"JSON lines text: {e}.") from None
    if not out:
        raise UserError(f"No series in the {channel} channel (input/data/{channel}).")
    return out


def check_shapes(series: list[Series], *, num_cat: int | None, num_dynamic: int | None,
                 minimum: int, what: str) -> None:
    """Every series has the same number of cat and dynamic features as the first (or as
    declared), dynamic features as long as its target, and ``minimum`` points."""
    for s in series:
        if len(s.target) < minimum:
            raise UserError(f"{s.where}: the series has {len(s.target)} points, fewer than "
                            f"{what} ({minimum}).")
        if num_cat is not None and len(s.cat) != num_cat:
            raise UserError(f"{s.where}: the series has {len(s.cat)} cat values, expected "
                            f"{num_cat}.")
        dyn = 0 if s.dynamic_feat is None else s.dynamic_feat.shape[0]
        if num_dynamic is not None and dyn != num_dynamic:
            raise UserError(f"{s.where}: the series has {dyn} dynamic_feat, expected "
                            f"{num_dynamic}.")
        if s.dynamic_feat is not None and s.dynamic_feat.shape[1] < len(s.target):
            raise UserError(f"{s.where}: each dynamic_feat must be at least as long as the "
                            f"target ({len(s.target)}).")


def weighted_quantile_loss(truth: NDArray[Any], forecasts: NDArray[Any],
                           quantile: float) -> float:
    """2 * sum pinball loss / sum |truth| over every forecast point (SageMaker's wQL)."""
    diff = truth - forecasts
    loss = np.where(diff >= 0, quantile * diff, (quantile - 1) * diff)
    denominator = float(np.abs(truth).sum()) or 1.0
    return 2.0 * float(loss.sum()) / denominator
