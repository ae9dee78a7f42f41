"""``Search`` reads what it filters and sorts on through the database (no whole document per
row, no query per row): the answers are the same as over whole documents."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from opensage.services import search as search_module
from opensage.store.db import Database
from opensage.store.resources import ResourceStore
from opensage.store.schema import resources, tags


class Backend:
    def __init__(self, store: ResourceStore) -> None:
        self.resources = store


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    db = Database(f"sqlite:///{tmp_path / 'search.db'}")
    db.prepare()
    rng = random.Random(3)
    rows, tag_rows = [], []
    for i in range(120):
        name, arn = f"job-{i:03d}", f"arn:training-job/job-{i:03d}"
        metrics = [{"MetricName": "validation:rmse", "Value": round(rng.uniform(0, 2), 3)}]
        if i % 7 == 0:
            metrics = []  # no metric: left out of a search sorted on it
        rows.append({"kind": "training-job", "name": name, "arn": arn, "status": "Completed",
                     "creation_time": float(i), "last_modified_time": float(i), "body": {
                         "TrainingJobName": name, "CreationTime": float(i),
                         "EnableNetworkIsolation": i % 2 == 0,
                         "HyperParameters": {"max_depth": str(i % 5), "eta": "0.1"},
                         "ResourceConfig": {"InstanceType": f"ml.m5.{i % 3}xlarge"},
                         "FinalMetricDataList": metrics}})
        if i % 4 == 0:
            tag_rows.append({"arn": arn, "key": "team", "value": f"t{i % 3}"})
    with db.transaction() as conn:
        conn.execute(insert(resources), rows)
        conn.execute(insert(tags), tag_rows)
    return Backend(ResourceStore(db))


SEARCHES: list[dict[str, Any]] = [
    {"SortBy": "Metrics.validation:rmse", "SortOrder": "Ascending", "SearchExpression": {
        "Filters": [{"Name": "Metrics.validation:rmse", "Operator": "LessThan", "Value": "0.7"}]}},
    {"SortBy": "Metrics.validation:rmse", "SearchExpression": {"Operator": "Or", "Filters": [
        {"Name": "Metrics.validation:rmse", "Operator": "GreaterThan", "Value": "1.8"},
        {"Name": "Tags.team", "Operator": "Equals", "Value": "t1"}]}},
    {"SearchExpression": {"Filters": [
        {"Name": "EnableNetworkIsolation", "Operator": "Equals", "Value": "false"},
        {"Name": "HyperParameters.max_depth", "Operator": "GreaterThanOrEqualTo", "Value": "3"},
        {"Name": "ResourceConfig.InstanceType", "Operator": "Contains", "Value": "1x"}]}},
    {"SortBy": "TrainingJobName", "SortOrder": "Ascending", "SearchExpression": {
        "SubExpressions": [{"Filters": [{"Name": "Tags.team", "Operator": "Exists"}]}]}},
    {"SortBy": "Metrics.validation:rmse", "SearchExpression": {"Filters": [
        {"Name": "Metrics.validation:rmse", "Operator": "Equals", "Value": "0"}]}},
]


def page_through(backend: Backend, params: dict[str, Any]) -> list[str]:
    names, token = [], None
    while True:
        answer = search_module.search(backend, {"Resource": "TrainingJob", "MaxResults": 7,
                                                **params, "NextToken": token})
        names += [r["TrainingJob"]["TrainingJobName"] for r in answer["Results"]]
        token = answer["NextToken"]
        if token is None:
            return names


@pytest.mark.parametrize("params", SEARCHES)
def test_projected_search_answers_as_the_whole_documents_do(backend, monkeypatch, params):
    projected = page_through(backend, params)
    monkeypatch.setattr(search_module, "_property_names", lambda *a: None)
    assert projected == page_through(backend, params)
    assert len(projected) == len(set(projected))


def test_results_carry_their_tags_and_the_queries_do_not_grow_with_the_rows(backend):
    statements: list[str] = []
    event.listen(backend.resources.db.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    answer = search_module.search(backend, {"Resource": "TrainingJob", "MaxResults": 50,
                                            **SEARCHES[0]})
    assert len(answer["Results"]) > 10
    assert len(statements) <= 3  # the candidates, the page's rows, the page's tags
    for record in answer["Results"]:
        job = record["TrainingJob"]
        number = int(job["TrainingJobName"][-3:])
        assert job["Tags"] == ([{"Key": "team", "Value": f"t{number % 3}"}]
                               if number % 4 == 0 else [])
