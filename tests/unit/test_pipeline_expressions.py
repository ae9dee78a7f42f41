"""The pipeline expression language, evaluated without a server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from opensage.errors import ValidationException
from opensage.services.pipelines import definition as definitions
from opensage.services.pipelines.engine import child_name
from opensage.services.pipelines.expressions import (
    ExpressionError,
    Scope,
    condition,
    evaluate,
    lookup,
    tokens,
)

TRAIN = {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"},
         "FinalMetricDataList": [{"MetricName": "validation:rmse", "Value": 0.25},
                                 {"MetricName": "accuracy", "Value": 0.9}],
         "HyperParameters": {"num_round": "5"}}
PROCESS = {"ProcessingOutputConfig": {"Outputs": [
    {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
    {"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://b/eval"}}]}}
FILES = {"s3://b/eval/evaluation.json": {"metrics": {"mse": {"value": 0.5}},
                                         "list": [{"v": 1}, {"v": 2}]}}


def scope() -> Scope:
    props = {"Train": TRAIN, "Process.Step": PROCESS}
    return Scope(parameters={"Threshold": 0.7, "Name": "x", "Count": 3, "Flag": True},
                 execution={"PipelineExecutionId": "abc123", "PipelineName": "p"},
                 properties=props.get,
                 property_file=lambda step, name: FILES["s3://b/eval/evaluation.json"],
                 read_json=lambda uri: FILES[uri], step_names=frozenset(props))


@pytest.mark.parametrize("expression,expected", [
    ({"Get": "Parameters.Threshold"}, 0.7),
    ({"Get": "Execution.PipelineExecutionId"}, "abc123"),
    ({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "s3://b/model.tar.gz"),
    ({"Get": "Steps.Train.FinalMetricDataList['accuracy'].Value"}, 0.9),
    ({"Get": "Steps.Train.FinalMetricDataList[0].MetricName"}, "validation:rmse"),
    ({"Get": "Steps.Train.HyperParameters['num_round']"}, "5"),
    ({"Get": "Steps.Process.Step.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
     "s3://b/train"),
    ({"Std:Join": {"On": "/", "Values": ["s3:/", "b", {"Get": "Execution.PipelineName"},
                                         {"Get": "Parameters.Count"}]}}, "s3://b/p/3"),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Process.Step.PropertyFiles.Report"},
                      "Path": "metrics.mse.value"}}, 0.5),
    ({"Std:JsonGet": {"S3Uri": "s3://b/eval/evaluation.json", "Path": "$.list[1].v"}}, 2),
    ({"A": [{"Get": "Parameters.Name"}, 1, None]}, {"A": ["x", 1, None]}),
])
def test_expressions_evaluate(expression: Any, expected: Any):
    assert evaluate(expression, scope()) == expected


@pytest.mark.parametrize("expression,problem", [
    ({"Get": "Parameters.Nope"}, "Parameter 'Nope' is undefined"),
    ({"Get": "Steps.Missing.X"}, "did not succeed"),
    ({"Get": "Steps.Train.FinalMetricDataList['loss'].Value"}, "no element ['loss']"),
    ({"Get": "Steps.Train.Nope"}, "'Nope'"),
    ({"Get": "Steps.Train.FinalMetricDataList[7]"}, "no element [7]"),
    ({"Get": "Nowhere.X"}, "Unknown reference"),
])
def test_unresolvable_references_raise_naming_them(expression: Any, problem: str):
    with pytest.raises(ExpressionError, match=None) as err:
        evaluate(expression, scope())
    assert problem in str(err.value)


@pytest.mark.parametrize("spec,expected", [
    ({"Type": "Equals", "LeftValue": {"Get": "Parameters.Count"}, "RightValue": 3.0}, True),
    ({"Type": "GreaterThan", "LeftValue": 2, "RightValue": 1}, True),
    ({"Type": "GreaterThanOrEqualTo", "LeftValue": 1, "RightValue": 1}, True),
    ({"Type": "LessThan", "LeftValue": {"Get": "Parameters.Threshold"}, "RightValue": 0.5},
     False),
    ({"Type": "LessThanOrEqualTo", "LeftValue": "a", "RightValue": "b"}, True),
    ({"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["y", "x"]}, True),
    ({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 1}},
     False),
    ({"Type": "Or", "Conditions": [
        {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
        {"Type": "Equals", "LeftValue": {"Get": "Parameters.Flag"}, "RightValue": "True"}]},
     True),
])
def test_conditions(spec: dict[str, Any], expected: bool):
    assert condition(spec, scope()) is expected


def test_an_ordering_of_a_string_and_a_number_is_an_error():
    with pytest.raises(ExpressionError, match="cannot compare"):
        condition({"Type": "GreaterThan", "LeftValue": "1", "RightValue": 0}, scope())


def test_paths_tokenise_and_look_up():
    assert tokens("Outputs['a.b'][0].X") == ["Outputs", "'a.b", 0, "X"]
    assert lookup({"A": [{"OutputName": "a.b", "X": 1}]}, "A['a.b'].X", what="t") == 1


def test_parameters_are_coerced_to_their_type():
    definition = definitions.parse(
        '{"Parameters": [{"Name": "I", "Type": "Integer", "DefaultValue": 1},'
        '{"Name": "F", "Type": "Float"}, {"Name": "B", "Type": "Boolean",'
        '"DefaultValue": false}], "Steps": []}')
    values = definitions.resolve_parameters(definition, [{"Name": "F", "Value": "2.5"},
                                                         {"Name": "B", "Value": "True"}])
    assert values == {"I": 1, "F": 2.5, "B": True}
    with pytest.raises(ValidationException, match="'F' is undefined"):
        definitions.resolve_parameters(definition, [])


def test_dependencies_come_from_depends_on_references_and_branches():
    definition = definitions.parse("""{"Steps": [
        {"Name": "A", "Type": "Fail", "Arguments": {}},
        {"Name": "B", "Type": "Fail", "Arguments": {"ErrorMessage": {"Get": "Steps.A.X"}}},
        {"Name": "C", "Type": "Condition", "DependsOn": ["B"], "Arguments": {
            "Conditions": [], "IfSteps": [{"Name": "D", "Type": "Fail", "Arguments": {}}],
            "ElseSteps": []}}]}""")
    assert definition.steps["B"].depends_on == {"A"}
    assert definition.steps["C"].depends_on == {"B"}
    assert definition.steps["D"].depends_on == {"C"}
    assert definition.steps["D"].branch == ("C", True)
    assert definitions.duration_seconds("P1DT2H3M4S", where="x") == 93784


def test_child_names_are_stable_bounded_and_distinct_per_attempt():
    name = child_name("abcdef123456", "A_Very_Long.Step Name " * 4, 1, 0)
    assert name == child_name("abcdef123456", "A_Very_Long.Step Name " * 4, 1, 0)
    assert len(name) <= 63 and name.startswith("pipelines-abcdef123456-a-very-long-step")
    assert name != child_name("abcdef123456", "A_Very_Long.Step Name " * 4, 2, 0)
    assert child_name("abcdef123456", "s", 1, 0) != child_name("abcdef123456", "s", 1, 1)


def test_a_tuning_steps_child_name_fits_a_tuning_jobs_32_characters():
    name = child_name("abcdef123456", "Tune-The-Model", 1, 0, limit=32)
    assert len(name) == 32 and name.startswith("abcdef123456-tune-the-")
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", name)
    assert name != child_name("abcdef123456", "Tune-The-Model", 2, 0, limit=32)
