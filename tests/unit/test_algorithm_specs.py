"""Every registered built-in's declaration, checked generically (as scikit-learn's common
estimator checks do): each hyperparameter refuses generated invalid values naming itself and
accepts its example, the metric regexes find the lines the algorithm prints, tuning
objectives are declared metrics, and the generated docs are current."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from opensage.algorithms.errors import SpecError, SpecValidationError
from opensage.algorithms.registry import KNOWN, lookup

PACKAGES = sorted(set(KNOWN.values()))
PARAMS = [(package, name) for package in PACKAGES
          for name in importlib.import_module(package).SPEC.hyperparameters]


def spec_of(package: str):
    return importlib.import_module(package).SPEC


def required_example(spec) -> dict[str, str]:
    return {name: param.valid_example() for name, param in spec.hyperparameters.items()
            if param.required}


@pytest.mark.parametrize(("package", "name"), PARAMS)
def test_every_hyperparameter_refuses_invalid_values_naming_itself(package, name):
    spec = spec_of(package)
    param = spec.hyperparameters[name]
    for raw in param.invalid_examples():
        with pytest.raises(SpecValidationError) as excinfo:
            spec.validate({**required_example(spec), name: raw})
        blamed = [e for e in excinfo.value.errors if getattr(e, "name", None) == name]
        assert blamed, f"{package}: {name}={raw!r} was not blamed: {excinfo.value}"


@pytest.mark.parametrize(("package", "name"), PARAMS)
def test_every_hyperparameter_accepts_its_example(package, name):
    param = spec_of(package).hyperparameters[name]
    param.parse(name, param.valid_example())


@pytest.mark.parametrize("package", PACKAGES)
def test_unknown_hyperparameters_and_missing_required_ones_are_named(package):
    spec = spec_of(package)
    with pytest.raises(SpecValidationError, match="'no_such_hyperparameter'"):
        spec.validate({**required_example(spec), "no_such_hyperparameter": "1"})
    for name, param in spec.hyperparameters.items():
        if param.required:
            hps = required_example(spec)
            del hps[name]
            with pytest.raises(SpecValidationError, match=f"'{name}'"):
                spec.validate(hps)


@pytest.mark.parametrize("package", PACKAGES)
def test_metric_definitions_find_first_party_quality_lines(package):
    spec = spec_of(package)
    for metric in spec.metrics:
        pattern = re.compile(metric.regex)
        assert pattern.groups == 1
        if metric.regex.startswith("#quality_metric"):
            # The line the regex describes, with a known value.
            line = (metric.regex.replace(r"(\S+)", "0.125").replace(r"\S+", "algo-1")
                    .replace("\\", ""))
            channel, name = metric.name.split(":", 1)
            assert f"{channel} " in line and name.split("_")[0] in line, (metric, line)
            match = pattern.search(line)
            assert match and float(match.group(1)) == 0.125, (metric, line)


@pytest.mark.parametrize("package", PACKAGES)
def test_tuning_objectives_are_declared_metrics(package):
    spec = spec_of(package)
    declared = {m.name for m in spec.metrics}
    objectives = {m["MetricName"] for m in spec.objective_metrics()}
    assert objectives <= declared
    tuning = spec.hyperparameters.get("_tuning_objective_metric")
    if tuning is not None and hasattr(tuning, "values"):
        assert set(tuning.values) <= declared
    described = spec.training_specification()
    assert described["TrainingChannels"] and described["SupportedHyperParameters"]


@pytest.mark.parametrize("repository", sorted(KNOWN))
def test_image_uris_find_their_algorithm(repository):
    tag = "1.7-1" if "xgboost" in repository else "1"
    algorithm = lookup(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}:{tag}")
    assert algorithm is not None and algorithm.module == KNOWN[repository]
    with pytest.raises(SpecError):
        lookup(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}:0.1-1")


def test_generated_docs_are_current():
    from opensage.algorithms.docs import markdown

    path = Path(__file__).parents[2] / "docs" / "algorithms.md"
    assert path.read_text() == markdown(), (
        "docs/algorithms.md is stale: run python -m opensage.algorithms.docs > docs/algorithms.md")


TUNABLE = [(package, name) for package, name in PARAMS
           if spec_of(package).hyperparameters[name].tunable]


@pytest.mark.parametrize(("package", "name"), TUNABLE)
def test_every_tunable_hyperparameter_takes_a_tuning_range(package, name):
    """CreateHyperParameterTuningJob's range checks accept a range built from the
    hyperparameter's own example (``auto``-or-number ones included)."""
    from opensage.services.tuning.validation import _check_ranges

    spec = spec_of(package)
    param = spec.hyperparameters[name]
    inner = getattr(param, "inner", param)
    example = inner.valid_example()
    if param.type_name in ("Integer", "Continuous"):
        key = ("IntegerParameterRanges" if param.type_name == "Integer"
               else "ContinuousParameterRanges")
        ranges = {key: [{"Name": name, "MinValue": example, "MaxValue": example,
                         "ScalingType": "Linear"}]}
    else:
        ranges = {"CategoricalParameterRanges": [{"Name": name, "Values": [example]}]}
    assert [r.name for r in _check_ranges(spec, ranges, {})] == [name]


# What a package may load on import: its spec and the declaration modules (firstparty: the
# shared channels and metrics of the first-party built-ins); no math, no numpy.
DECLARATIONS = {"opensage", "opensage.algorithms", "opensage.algorithms.channels",
                "opensage.algorithms.errors", "opensage.algorithms.params",
                "opensage.algorithms.spec", "opensage.algorithms.firstparty"}


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_loads_only_its_spec(package):
    code = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
            "print(' '.join(m for m in sys.modules if m.split('.')[0] in "
            "('opensage', 'numpy', 'scipy', 'sklearn', 'xgboost')))")
    loaded = set(subprocess.run([sys.executable, "-c", code, package], capture_output=True,
                                text=True, check=True).stdout.split())
    assert {package, f"{package}.spec"} <= loaded
    assert loaded <= DECLARATIONS | {package, f"{package}.spec"}
