"""The declarative hyperparameter specs (opensage.algorithms: spec, params, channels), the
xgboost spec, and the image URI registry. Invalid values are generated from each constraint,
as scikit-learn's ``generate_invalid_param_val`` does, so every xgboost hyperparameter is
probed."""

from __future__ import annotations

import re

import pytest

from opensage.algorithms import registry
from opensage.algorithms.channels import ChannelSpec, channel_configs
from opensage.algorithms.errors import (
    ChannelError,
    HyperparameterError,
    SpecError,
    SpecValidationError,
)
from opensage.algorithms.params import Bool, Choice, Float, Int, IntList, StrList, Text
from opensage.algorithms.spec import AlgorithmSpec, MetricDefinition
from opensage.algorithms.xgboost import spec as xgb_spec

XGB = xgb_spec.SPEC
CSV = {"train": "text/csv"}


def errors_of(excinfo: pytest.ExceptionInfo[SpecValidationError]) -> list[SpecError]:
    return excinfo.value.errors


# ----------------------------------------------------------------------------- constraints


@pytest.mark.parametrize(("param", "raw", "value"), [
    (Int(min=1), "10", 10),
    (Int(min=1), " 7 ", 7),
    (Int(min=1), "10.0", 10),
    (Int(min=1), "1e3", 1000),
    (Int(0, 1), "0", 0),
    (Int(-5, 5, closed="neither"), "-4", -4),
    (Float(0, 1), "0", 0.0),
    (Float(0, 1), "1", 1.0),
    (Float(0, 1), ".25", 0.25),
    (Float(0, 1, closed="right"), "1e-9", 1e-9),
    (Float(), "-3.5", -3.5),
    (Choice({"b", "a"}), "a", "a"),
    (Choice(["X", "y"], case_sensitive=False), "x", "X"),
    (Bool(), "true", True),
    (Bool(), "True", True),
    (Bool(), "TRUE", True),
    (Bool(), "1", True),
    (Bool(), "false", False),
    (Bool(), "False", False),
    (Bool(), "0", False),
    (StrList(), "a, b,c", ("a", "b", "c")),
    (StrList(Choice({"a", "b"})), "a,b", ("a", "b")),
    (IntList(-1, 1), "(1,0,-1)", (1, 0, -1)),
    (IntList(-1, 1), "[1, -1]", (1, -1)),
    (IntList(-1, 1), "1,0", (1, 0)),
    (IntList(min=0, nested=True), "[[0,1],[2,3]]", [[0, 1], [2, 3]]),
    (IntList(min=0, nested=True), "[0, 1]", [[0, 1]]),
    (Text(r"[a-z]+"), "abc", "abc"),
])
def test_parse_accepts(param, raw, value):
    assert param.parse("hp", raw) == value


@pytest.mark.parametrize(("param", "raw"), [
    (Int(min=1), "0"),
    (Int(min=1), "ten"),
    (Int(min=1), "1.5"),
    (Int(min=1), ""),
    (Int(0, 1), "2"),
    (Int(-5, 5, closed="neither"), "5"),
    (Int(-5, 5, closed="neither"), "-5"),
    (Float(0, 1), "1.0001"),
    (Float(0, 1), "-0.1"),
    (Float(0, 1, closed="right"), "0"),
    (Float(0, 1, closed="left"), "1"),
    (Float(1, 2, closed="neither"), "1"),
    (Float(), "nan"),
    (Float(), "inf"),
    (Float(), "1,5"),
    (Choice({"a", "b"}), "c"),
    (Choice({"a", "b"}), "A"),
    (Bool(), "yes please"),
    (Bool(), "2"),
    (StrList(Choice({"a", "b"})), "a,c"),
    (StrList(), "a,,b"),
    (StrList(), ""),
    (IntList(-1, 1), "(2,)"),
    (IntList(-1, 1), "(True,)"),
    (IntList(-1, 1), "(1.5,)"),
    (IntList(-1, 1), "__import__('os').system('true')"),
    (IntList(min=0, nested=True), "[[0,-1]]"),
    (IntList(min=0, nested=True), "[]"),
    (Text(r"[a-z]+"), "ABC"),
])
def test_parse_rejects_with_a_message_naming_what_is_accepted_and_given(param, raw):
    with pytest.raises(HyperparameterError) as excinfo:
        param.parse("my_hp", raw)
    error = excinfo.value
    assert error.name == "my_hp"
    message = str(error)
    assert message.startswith("Hyperparameter 'my_hp' must be ")
    assert param.accepted() in message
    assert f"got {raw!r}" in message


def test_messages_read_well():
    def message(param, raw):
        with pytest.raises(HyperparameterError) as excinfo:
            param.parse("eta", raw)
        return str(excinfo.value)

    assert message(Float(0, 1), "1.5") == (
        "Hyperparameter 'eta' must be a float in the range [0, 1]; got '1.5'.")
    assert message(Int(min=1), "abc") == (
        "Hyperparameter 'eta' must be an integer in the range [1, inf); got 'abc'.")
    assert message(Float(0, 1, closed="neither"), "0") == (
        "Hyperparameter 'eta' must be a float in the range (0, 1); got '0'.")
    assert message(Choice({"gbtree", "dart"}), "x") == (
        "Hyperparameter 'eta' must be one of 'dart', 'gbtree'; got 'x'.")
    assert message(Bool(), "maybe") == "Hyperparameter 'eta' must be true or false; got 'maybe'."
    assert "(unknown metric 'bogus')" in message(StrList(xgb_spec.EvalMetric()), "rmse,bogus")


def test_specification_shapes():
    assert Int(min=1, required=True, tunable=True).specification("num_round") == {
        "Name": "num_round", "Description": "num_round", "Type": "Integer", "IsTunable": True,
        "IsRequired": True,
        "Range": {"IntegerParameterRangeSpecification": {"MinValue": "1",
                                                         "MaxValue": "2147483647"}}}
    eta = Float(0, 1, default=0.3).specification("eta")
    assert eta["Type"] == "Continuous" and eta["DefaultValue"] == "0.3"
    assert eta["Range"] == {"ContinuousParameterRangeSpecification": {"MinValue": "0",
                                                                      "MaxValue": "1"}}
    booster = Choice(["gbtree", "dart"], default="gbtree").specification("booster")
    assert booster["Range"] == {"CategoricalParameterRangeSpecification": {
        "Values": ["gbtree", "dart"]}}
    assert Bool(default=False).specification("b")["DefaultValue"] == "false"


# ------------------------------------------------------------------------------ AlgorithmSpec

TOY = AlgorithmSpec(
    name="toy",
    hyperparameters={"k": Int(min=1, required=True), "rate": Float(0, 1, default=0.5),
                     "mode": Choice({"a", "b"}), "flag": Bool(default=False)},
    channels={"train": ChannelSpec(required=True, content_types={"text/csv": "csv"}),
              "test": ChannelSpec(content_types={"text/csv": "csv", "text/libsvm": "libsvm"},
                                  default_content_type="text/libsvm")},
    metrics=[MetricDefinition("test:loss", r"loss=(\S+)", "Minimize")],
    aliases={"learning_rate": "rate"},
)


def test_validate_returns_typed_values():
    assert TOY.validate({"k": "3", "rate": "0.1", "flag": "True"}, {"train": "text/csv"}) == {
        "k": 3, "rate": 0.1, "flag": True}


def test_validate_fills_defaults_on_request():
    assert TOY.validate({"k": "3"}, fill_defaults=True) == {"k": 3, "rate": 0.5, "flag": False}


def test_validate_reports_every_problem_at_once():
    with pytest.raises(SpecValidationError) as excinfo:
        TOY.validate({"rate": "2", "mode": "c", "colour": "red"},
                     {"train": "application/json", "other": None})
    errors = errors_of(excinfo)
    text = str(excinfo.value)
    assert text.startswith("6 problems: ")
    names = sorted(getattr(e, "name", getattr(e, "channel", "")) for e in errors)
    assert names == ["colour", "k", "mode", "other", "rate", "train"]
    assert "Hyperparameter 'colour' is not accepted by the toy algorithm." in text
    assert "Missing required hyperparameter 'k'" in text
    assert "Channel 'train' does not accept ContentType 'application/json'" in text
    assert "Channel 'other' is not accepted by the toy algorithm" in text


def test_missing_required_channel():
    with pytest.raises(SpecValidationError) as excinfo:
        TOY.validate({"k": "1"}, {"test": None})
    [error] = errors_of(excinfo)
    assert isinstance(error, ChannelError) and error.channel == "train"
    assert str(excinfo.value) == "Missing required channel 'train' for the toy algorithm."


def test_channel_checks_are_skipped_when_no_channels_are_given():
    assert TOY.validate({"k": "1"}) == {"k": 1}


def test_unknown_name_suggests_a_close_one():
    with pytest.raises(SpecValidationError, match="Did you mean 'rate'"):
        TOY.validate({"k": "1", "rat": "0.1"})


def test_aliases():
    assert TOY.validate({"k": "1", "learning_rate": "0.2"}) == {"k": 1, "rate": 0.2}
    with pytest.raises(SpecValidationError, match="same hyperparameter"):
        TOY.validate({"k": "1", "learning_rate": "0.2", "rate": "0.3"})


def test_channel_configs_may_be_inputdataconfig_entries():
    formats = TOY.data_formats({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"},
                                "test": {}})
    assert formats == {"train": "csv", "test": "libsvm"}
    with pytest.raises(SpecValidationError, match="does not support input mode 'Pipe'"):
        TOY.validate({"k": "1"}, {"train": {"ContentType": "text/csv",
                                            "TrainingInputMode": "Pipe"}})


def test_channel_configs_from_a_create_training_job_request():
    request = [{"ChannelName": "train", "ContentType": "text/csv", "CompressionType": "Gzip",
                "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train"}}},
               {"ChannelName": "test", "InputMode": "Pipe"}]
    configs = channel_configs(request, "File")
    assert configs == {"train": {"ContentType": "text/csv", "TrainingInputMode": "File",
                                 "CompressionType": "Gzip"},
                       "test": {"TrainingInputMode": "Pipe"}}
    with pytest.raises(SpecValidationError) as excinfo:
        TOY.validate({"k": "1"}, configs)
    assert str(excinfo.value) == (
        "Channel 'test' does not support input mode 'Pipe'; supported: File.")
    with pytest.raises(SpecValidationError, match="CompressionType 'Zip'"):
        TOY.validate({"k": "1"}, {"train": {"ContentType": "text/csv",
                                            "CompressionType": "Zip"}})


def test_training_specification():
    spec = TOY.training_specification()
    assert [h["Name"] for h in spec["SupportedHyperParameters"]] == ["k", "rate", "mode", "flag"]
    assert spec["TrainingChannels"][0] == {
        "Name": "train", "Description": "train", "IsRequired": True,
        "SupportedContentTypes": ["text/csv"], "SupportedCompressionTypes": ["None", "Gzip"],
        "SupportedInputModes": ["File"]}
    assert spec["MetricDefinitions"] == [{"Name": "test:loss", "Regex": r"loss=(\S+)"}]
    assert spec["SupportedTuningJobObjectiveMetrics"] == [{"Type": "Minimize",
                                                           "MetricName": "test:loss"}]


# --------------------------------------------------------------------------------- xgboost


@pytest.mark.parametrize("name", sorted(xgb_spec.HYPERPARAMETERS))
def test_every_xgboost_hyperparameter_rejects_generated_invalid_values(name):
    param = xgb_spec.HYPERPARAMETERS[name]
    invalid = param.invalid_examples()
    assert invalid, f"{name} has no invalid examples"
    for raw in invalid:
        hps = {"num_round": "10", name: raw}
        with pytest.raises(SpecValidationError) as excinfo:
            XGB.validate(hps, CSV)
        named = [e for e in errors_of(excinfo) if getattr(e, "name", None) == name]
        assert named, f"{name}={raw!r} was not blamed: {excinfo.value}"
        assert f"'{name}'" in str(named[0]) and repr(raw) in str(named[0])


@pytest.mark.parametrize("name", sorted(xgb_spec.HYPERPARAMETERS))
def test_every_xgboost_hyperparameter_accepts_its_example(name):
    param = xgb_spec.HYPERPARAMETERS[name]
    param.parse(name, param.valid_example())


def test_xgboost_num_round_is_required():
    with pytest.raises(SpecValidationError, match="Missing required hyperparameter 'num_round'"):
        XGB.validate({}, CSV)


def test_xgboost_accepts_a_typical_request():
    hps = {"num_round": "100", "max_depth": "5", "eta": "0.2", "gamma": "4",
           "min_child_weight": "6", "subsample": "0.7", "objective": "binary:logistic",
           "eval_metric": "auc,error@0.6,accuracy", "early_stopping_rounds": "10",
           "scale_pos_weight": "2.5", "tree_method": "hist", "monotone_constraints": "(1,0)",
           "save_model_on_termination": "true", "learning_rate": "0.1"}
    with pytest.raises(SpecValidationError, match="same hyperparameter"):
        XGB.validate(hps, CSV)
    del hps["learning_rate"]
    values = XGB.validate(hps, {"train": "text/csv", "validation": "text/csv"})
    assert values["num_round"] == 100 and values["eta"] == 0.2
    assert values["eval_metric"] == ("auc", "error@0.6", "accuracy")
    assert values["monotone_constraints"] == (1, 0)
    assert values["save_model_on_termination"] is True


@pytest.mark.parametrize(("hps", "message"), [
    ({"objective": "multi:softmax"}, "'num_class' is required with objective 'multi:softmax'"),
    ({"eval_metric": "auc"}, "Metric 'auc' can only be used"),
    ({"objective": "multi:softprob", "num_class": "3", "eval_metric": "auc"}, "'auc'"),
    ({"eval_metric": "aft-nloglik"}, "'survival:aft'"),
    ({"booster": "gblinear", "updater": "grow_colmaker"}, "gblinear"),
    ({"updater": "grow_colmaker,grow_histmaker"}, "Only one tree grow updater"),
    ({"process_type": "update", "updater": "grow_colmaker"}, "process_type 'update'"),
    ({"tree_method": "auto", "monotone_constraints": "(1,0)"}, "monotone_constraints"),
    ({"_kfold": "5"}, "Cross-validation"),
    ({"use_dask_gpu_training": "true"}, "use_dask_gpu_training"),
])
def test_xgboost_cross_checks(hps, message):
    with pytest.raises(SpecValidationError, match=re.escape(message)):
        XGB.validate({"num_round": "10", **hps}, CSV)


@pytest.mark.parametrize("metric", ["rmse", "error@0.7", "ndcg@5", "map@3-", "ndcg-", "f1",
                                    "balanced_accuracy", "tweedie-nloglik"])
def test_xgboost_eval_metrics(metric):
    objective = "rank:ndcg" if metric.startswith(("ndcg", "map")) else "reg:squarederror"
    XGB.validate({"num_round": "1", "objective": objective, "eval_metric": metric}, CSV)


@pytest.mark.parametrize(("content_type", "data_format"), [
    ("text/csv", "csv"), ("csv", "csv"), ("text/csv; label_size=1", "csv"),
    ("Text/CSV", "csv"), ("text/csv;charset=utf-8", "csv"), ("text/libsvm", "libsvm"),
    ("libsvm", "libsvm"), ("text/x-libsvm", "libsvm"), (None, "libsvm"),
    ("application/x-parquet", "parquet"),
    ("application/x-recordio-protobuf", "recordio-protobuf"),
])
def test_xgboost_content_types(content_type, data_format):
    assert XGB.data_formats({"train": content_type}) == {"train": data_format}


@pytest.mark.parametrize("content_type", ["text/csv; label_size=2", "application/json",
                                          "application/jsonlines", "image/png"])
def test_xgboost_rejects_content_types(content_type):
    with pytest.raises(SpecValidationError, match="Channel 'train'"):
        XGB.validate({"num_round": "1"}, {"train": content_type})


def test_xgboost_channels():
    with pytest.raises(SpecValidationError, match="Missing required channel 'train'"):
        XGB.validate({"num_round": "1"}, {"validation": "text/csv"})
    with pytest.raises(SpecValidationError, match="Channel 'test' is not accepted"):
        XGB.validate({"num_round": "1"}, {"train": "text/csv", "test": "text/csv"})


def test_xgboost_metric_definitions_match_the_log_lines():
    definitions = {m.name: m for m in XGB.metrics}
    assert {"train:rmse", "validation:rmse", "validation:auc", "validation:accuracy",
            "validation:f1", "validation:mlogloss", "train:gamma-deviance"} <= set(definitions)
    # The job prints a tab; CloudWatch shows it as #011, which the regexes match.
    line = "[12]\ttrain-rmse:0.12345\tvalidation-rmse:0.23456\tvalidation-auc:0.91000"
    shown = line.replace("\t", "#011")
    for name, value in [("train:rmse", "0.12345"), ("validation:rmse", "0.23456"),
                        ("validation:auc", "0.91000")]:
        match = re.match(definitions[name].regex, shown)
        assert match and match.group(1) == value, name
    assert re.match(definitions["validation:mae"].regex, shown) is None
    assert re.match(definitions["train:rmse"].regex,
                    "[0]#011train-rmse:1.5e-05").group(1) == "1.5e-05"
    assert definitions["validation:auc"].direction == "Maximize"
    assert definitions["validation:rmse"].direction == "Minimize"
    objectives = {m["MetricName"] for m in XGB.objective_metrics()}
    assert "validation:auc" in objectives and "train:rmse" not in objectives


def test_xgboost_tuning_objective_metric():
    values = XGB.validate({"num_round": "5", "_tuning_objective_metric": "validation:rmse"}, CSV)
    assert values["_tuning_objective_metric"] == "validation:rmse"
    with pytest.raises(SpecValidationError, match="_tuning_objective_metric"):
        XGB.validate({"num_round": "5", "_tuning_objective_metric": "validation:nope"}, CSV)


def test_xgboost_tunable_hyperparameters():
    tunable = {n for n, p in xgb_spec.HYPERPARAMETERS.items() if p.tunable}
    assert {"num_round", "eta", "max_depth", "subsample", "alpha", "lambda"} <= tunable
    assert "objective" not in tunable


# -------------------------------------------------------------------------------- registry

ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(("uri", "repository", "tag"), [
    (f"{ECR}/sagemaker-xgboost:1.7-1", "sagemaker-xgboost", "1.7-1"),
    ("sagemaker-xgboost:1.5-1", "sagemaker-xgboost", "1.5-1"),
    ("localhost:5000/team/sagemaker-xgboost:1.7-1-cpu-py3", "sagemaker-xgboost",
     "1.7-1-cpu-py3"),
    (f"{ECR}/sagemaker-xgboost@sha256:" + "a" * 64, "sagemaker-xgboost", None),
    ("my-image", "my-image", None),
])
def test_parse_image_uri(uri, repository, tag):
    image = registry.parse_image_uri(uri)
    assert (image.repository, image.tag) == (repository, tag)


@pytest.mark.parametrize("uri", [
    f"{ECR}/sagemaker-xgboost:1.7-1", "sagemaker-xgboost:0.90-1", "sagemaker-xgboost:0.90-2",
    "sagemaker-xgboost:1.0-1", "sagemaker-xgboost:1.2-1", "sagemaker-xgboost:1.3-1",
    "sagemaker-xgboost:1.5-1", "sagemaker-xgboost:1.7-1-cpu-py3", "sagemaker-xgboost:2.0-1",
    "sagemaker-xgboost:3.0-5", f"{ECR}/xgboost:1", "xgboost:latest",
])
def test_lookup_finds_xgboost(uri):
    algorithm = registry.lookup(uri)
    assert algorithm is not None and algorithm.name == "xgboost"
    assert algorithm.spec is XGB
    assert algorithm.module == "opensage.algorithms.xgboost"
    assert algorithm.command("python") == ["python", "-m", "opensage.algorithms.xgboost",
                                           "train"]


@pytest.mark.parametrize("uri", ["sagemaker-xgboost:0.72-1", "sagemaker-xgboost:1.1-1",
                                 "sagemaker-xgboost:latest", "sagemaker-xgboost"])
def test_lookup_rejects_unsupported_versions(uri):
    with pytest.raises(registry.UnsupportedImage, match="supported: 0.90-1") as excinfo:
        registry.lookup(uri)
    assert isinstance(excinfo.value, SpecError)


def test_lookup_of_a_users_own_image_is_none():
    assert registry.lookup("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:v3") is None


def test_lookup_names_the_extra_when_packages_are_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "xgboost" else real(name, *a))
    with pytest.raises(registry.AlgorithmUnavailable, match=r"opensage\[algorithms\]"):
        registry.lookup("sagemaker-xgboost:1.7-1")


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        registry.KNOWN["x"] = "y"  # type: ignore[index]
