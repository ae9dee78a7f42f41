"""AddTags / ListTags / DeleteTags, as the SDK and users call them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.api.test_models import make_model
from tests.conftest import ACCOUNT, REGION


def test_add_list_delete_tags(sm):
    arn = make_model(sm, "tagged", Tags=[{"Key": "a", "Value": "1"}])["ModelArn"]
    added = sm.add_tags(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"},
                                               {"Key": "a", "Value": "changed"}])
    assert {t["Key"] for t in added["Tags"]} == {"a", "b"}
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "changed"},
                                                     {"Key": "b", "Value": "2"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["a", "not-there"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_list_tags_paginates(sm):
    arn = make_model(sm, "many")["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i:02d}", "Value": str(i)} for i in range(50)])
    first = sm.list_tags(ResourceArn=arn, MaxResults=50)
    assert len(first["Tags"]) == 50 and "NextToken" not in first
    sm.delete_tags(ResourceArn=arn, TagKeys=["k49"])
    pages = list(sm.get_paginator("list_tags").paginate(ResourceArn=arn,
                                                        PaginationConfig={"PageSize": 50}))
    assert sum(len(p["Tags"]) for p in pages) == 49


def test_more_than_fifty_tags_is_refused_and_changes_nothing(sm):
    arn = make_model(sm, "full")["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    with pytest.raises(ClientError) as exc:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "x", "Value": "1"}, {"Key": "y", "Value": "2"}])
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert len(sm.list_tags(ResourceArn=arn, MaxResults=100)["Tags"]) == 49


def test_reserved_prefix_and_missing_resource(sm):
    arn = make_model(sm, "m")["ModelArn"]
    with pytest.raises(ClientError) as exc:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "aws:owner", "Value": "x"}])
    assert "reserved" in exc.value.response["Error"]["Message"]
    ghost = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/ghost"
    for call in (lambda: sm.list_tags(ResourceArn=ghost),
                 lambda: sm.add_tags(ResourceArn=ghost, Tags=[{"Key": "k", "Value": "v"}])):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []


def test_deleting_a_resource_deletes_its_tags(sm):
    arn = make_model(sm, "gone", Tags=[{"Key": "k", "Value": "v"}])["ModelArn"]
    sm.delete_model(ModelName="gone")
    make_model(sm, "gone")
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []
