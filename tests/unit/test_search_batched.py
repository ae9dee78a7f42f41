"""``Search`` reads what it filters and sorts on through the database (no whole document per
row, no query per row): the answers are the same as over whole documents."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from opensage.services import search as search_module
from opensage.store import search_index
from opensage.store.db import Database
from opensage.store.resources import ResourceStore
from opensage.store.schema import resource_metrics, resources


class Backend:
    def __init__(self, store: ResourceStore) -> None:
        self.resources = store


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    db = Database(f"sqlite:///{tmp_path / 'search.db'}")
    db.prepare()
    return seeded(ResourceStore(db))


def seeded(store: ResourceStore) -> Backend:
    """120 training jobs: one or two metrics (every 7th none), a quarter tagged."""
    rng = random.Random(3)
    for i in range(120):
        name, arn = f"job-{i:03d}", f"arn:training-job/job-{i:03d}"
        metrics: list[dict[str, Any]] = [
            {"MetricName": "validation:rmse", "Value": round(rng.uniform(0, 2), 3)}]
        if i % 3 == 0:
            metrics.append({"MetricName": "train:rmse", "Value": rng.randint(0, 4)})
        if i % 7 == 0:
            metrics = []  # no metric: left out of a search sorted on it
        store.create("training-job", name, arn, {
            "TrainingJobName": name, "CreationTime": float(i),
            "EnableNetworkIsolation": i % 2 == 0,
            "HyperParameters": {"max_depth": str(i % 5), "eta": "0.1"},
            "ResourceConfig": {"InstanceType": f"ml.m5.{i % 3}xlarge"},
            "FinalMetricDataList": metrics}, now=float(i), status="Completed",
            tag_list=[{"Key": "team", "Value": f"t{i % 3}"}] if i % 4 == 0 else [])
    return Backend(store)


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
    # Answered through the search index: a metric sort alone, both orders
    {"SortBy": "Metrics.validation:rmse"},
    {"SortBy": "Metrics.validation:rmse", "SortOrder": "Ascending"},
    # a metric bound with the default sort, and bounds on two metrics sorted on a third
    {"SearchExpression": {"Filters": [
        {"Name": "Metrics.validation:rmse", "Operator": "GreaterThanOrEqualTo", "Value": "1"}]}},
    {"SortBy": "Metrics.train:rmse", "SortOrder": "Ascending", "SearchExpression": {
        "Filters": [
            {"Name": "Metrics.validation:rmse", "Operator": "LessThanOrEqualTo", "Value": "1.5"},
            {"Name": "Metrics.train:rmse", "Operator": "GreaterThan", "Value": "0"}]}},
    # equal values (train:rmse is an integer 0-4): the row id breaks ties, across pages
    {"SortBy": "Metrics.train:rmse", "SearchExpression": {"Filters": [
        {"Name": "Tags.team", "Operator": "NotEquals", "Value": "t0"}]}},
    {"SortBy": "TrainingJobName", "SearchExpression": {"Filters": [
        {"Name": "Metrics.train:rmse", "Operator": "NotExists"}]}},
    {"SortBy": "Metrics.validation:rmse", "SearchExpression": {"Filters": [
        {"Name": "Metrics.train:rmse", "Operator": "In", "Value": "1,3"},
        {"Name": "HyperParameters.max_depth", "Operator": "LessThan", "Value": "3"}]}},
    {"SortBy": "Metrics.no-such-metric"},
    # a tag equal to a text, with a metric bound (the index's ranking checks tags in SQL)
    {"SortBy": "Metrics.validation:rmse", "SortOrder": "Ascending", "SearchExpression": {
        "Filters": [{"Name": "Tags.team", "Operator": "Equals", "Value": "t1"},
                    {"Name": "Metrics.validation:rmse", "Operator": "GreaterThan",
                     "Value": "0.2"}]}},
    {"SortBy": "Metrics.train:rmse", "SearchExpression": {"Filters": [
        {"Name": "Tags.team", "Value": "t2"}]}},
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
    assert projected == whole_document_search(backend, monkeypatch, params)
    assert len(projected) == len(set(projected))
    with monkeypatch.context() as patched:  # not the search index's ranking: its projection
        patched.setattr(search_module, "_metric_ranking", lambda *a: None)
        assert projected == page_through(backend, params)


def test_results_carry_their_tags_and_the_queries_do_not_grow_with_the_rows(backend):
    statements: list[str] = []
    event.listen(backend.resources.db.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    answer = search_module.search(backend, {"Resource": "TrainingJob", "MaxResults": 50,
                                            **SEARCHES[0]})
    assert len(answer["Results"]) > 10
    assert len(statements) <= 3  # the candidates, the page's rows, the page's tags
    # a metric filter and sort is found through the search index: no body is parsed
    assert "resource_metrics" in statements[0] and "json_" not in statements[0]
    for record in answer["Results"]:
        job = record["TrainingJob"]
        number = int(job["TrainingJobName"][-3:])
        assert job["Tags"] == ([{"Key": "team", "Value": f"t{number % 3}"}]
                               if number % 4 == 0 else [])


def whole_document_search(backend: Backend, monkeypatch: pytest.MonkeyPatch,
                          params: dict[str, Any]) -> list[str]:
    with monkeypatch.context() as patched:
        patched.setattr(search_module, "_property_names", lambda *a: None)
        patched.setattr(search_module, "_metric_ranking", lambda *a: None)
        return page_through(backend, params)


def test_the_index_follows_every_write_of_a_document(backend, monkeypatch):
    store: ResourceStore = backend.resources
    by_rmse = {"SortBy": "Metrics.validation:rmse", "SortOrder": "Ascending",
               "SearchExpression": {"Filters": [
                   {"Name": "Metrics.validation:rmse", "Operator": "LessThan", "Value": "0.5"}]}}
    before = page_through(backend, by_rmse)
    assert "job-007" not in before  # no metric at all
    job = store.get("training-job", "job-007")
    assert job is not None
    store.update("training-job", "job-007", {**job.body, "FinalMetricDataList": [
        {"MetricName": "validation:rmse", "Value": -1.0}]}, now=200.0)  # now the best
    first = before[0]
    store.transition("training-job", first, ["Completed"], "Stopped", now=201.0,
                     change=lambda body: body.update(FinalMetricDataList=[
                         {"MetricName": "validation:rmse", "Value": 9.0}]))  # now out
    store.delete("training-job", before[1])
    store.edit("training-job", before[3], ["Completed"], now=203.0,  # an edit keeps the status
               change=lambda body: body.update(FinalMetricDataList=[
                   {"MetricName": "validation:rmse", "Value": 0.4999}]))  # now last
    assert not store.update("training-job", before[2], {"FinalMetricDataList": []},
                            now=202.0, expected_status="InProgress")  # a lost race: no change
    after = page_through(backend, by_rmse)
    assert after == ["job-007", before[2], *before[4:], before[3]]
    assert after == whole_document_search(backend, monkeypatch, by_rmse)
    with store.db.engine.connect() as conn:
        ids = {r.resource_id for r in conn.execute(select(resource_metrics.c.resource_id))}
        assert ids <= {r.id for r in conn.execute(select(resources.c.id))}  # none orphaned


def test_only_finite_numbers_are_indexed_and_the_first_entry_of_a_name_wins():
    assert search_index.final_metrics({"FinalMetricDataList": [
        {"MetricName": "a", "Value": 1}, {"MetricName": "a", "Value": 2.0},
        {"MetricName": "b", "Value": "0.5"}, {"MetricName": "b", "Value": 0.5},
        {"MetricName": "c", "Value": True}, {"MetricName": "d", "Value": float("inf")},
        {"MetricName": "e", "Value": -0.25}, {"Value": 3}, "junk"]}) == {"a": 1.0, "e": -0.25}
    assert search_index.final_metrics({"FinalMetricDataList": None}) == {}


def test_retention_deletes_the_index_entries_with_the_rows(backend):
    store: ResourceStore = backend.resources
    assert store.delete_created_before("training-job", 60.0) == 60
    with store.db.engine.connect() as conn:
        indexed = {r.resource_id for r in conn.execute(select(resource_metrics.c.resource_id))}
        kept = {r.id: r.name for r in conn.execute(select(resources.c.id, resources.c.name))}
    assert indexed <= set(kept)
    assert len(indexed) == sum(1 for name in kept.values() if int(name[-3:]) % 7)
