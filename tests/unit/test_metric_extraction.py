"""Metric extraction from log lines: the literal-text prefilter never changes what the
definitions' regexes find, it only skips searches that cannot match."""

from __future__ import annotations

import importlib

import pytest
import regex

from opensage.algorithms.registry import KNOWN
from opensage.runner.metrics import MetricPattern, compile_definitions, extract, required_texts


@pytest.mark.parametrize("source, expected", [
    (r".*\[[0-9]+\].*#011train-rmse:([-+]?[0-9]*\.?[0-9]+)", ("#011train-rmse:",)),
    (r"#quality_metric: host=\S+, test mse <loss>=(\S+)",
     (", test mse <loss>=", "#quality_metric: host=")),
    (r"Epoch \d+ (?:train|val) loss=(\S+)", (" loss=", "Epoch ")),
    (r"loss: ([0-9.]+)", ("loss: ",)),
    (r"(?i)Loss=(\S+)", ()),  # case-insensitive: the literal's case may differ
    (r"loss=(\S+)|acc=(\S+)", ()),  # top-level alternation: nothing is required
    (r"acc=(\S+)|accuracy=(\S+)", ("acc",)),  # ... but a prefix both branches share is
    (r"\p{L}+ x=(\d)", ()),  # the regex module's syntax: not told, always searched
    (r"x(\d)", ()),  # single characters are not worth a check
    (r"(?:loss){e<=1}=(\S+)", ()),  # a fuzzy match of the regex module, text to re
    (r"val loss={(\S+)}", ()),  # literal braces are given up too, safely
])
def test_required_texts(source, expected):
    assert required_texts(source) == expected


LINES = [
    "[57]#011train-rmse:0.72345#011validation-rmse:0.80123",
    "[0]#011train-auc:0.91#011validation-auc:0.9#011validation-logloss:0.4",
    "[3]#011train-merror:0.1#011validation-mlogloss:1e-3",
    "#quality_metric: host=algo-1, test mse <loss>=0.125",
    "#quality_metric: host=algo-1, validation binary_classification_accuracy <score>=0.9",
    "#quality_metric: host=algo-1, train msd <loss>=2.5",
    "Epoch 3 train loss=0.5 val loss=nan",
    "an unrelated line with loss: 0.3 and #011 in it",
    "lass=0.75 (one error away from loss=)",
    "",
]


@pytest.mark.parametrize("package", sorted(set(KNOWN.values())))
def test_the_prefilter_finds_what_every_search_finds(package):
    spec = importlib.import_module(f"{package}.spec").SPEC
    definitions = [*spec.metric_definitions(),
                   {"Name": "user:loss", "Regex": r"loss: ([0-9.]+)"},
                   {"Name": "user:epoch", "Regex": r"Epoch \d+ (?:train|val) loss=(\S+)"},
                   {"Name": "user:fuzzy", "Regex": r"(?:loss){e<=1}=(\S+)"}]
    filtered = compile_definitions(definitions)
    searched = [MetricPattern(d["Name"], regex.compile(d["Regex"])) for d in definitions]
    assert any(p.required for p in filtered)
    found_any = False
    for line in LINES:
        assert extract(filtered, line) == extract(searched, line), line
        found_any |= bool(extract(filtered, line))
    assert found_any
