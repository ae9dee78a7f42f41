"""The filters, sort and pagination every SageMaker ``List*`` request shares."""

from __future__ import annotations

from typing import Any

from opensage.store.resources import ListQuery

DEFAULT_MAX_RESULTS = 10


def list_query(params: dict[str, Any], *, default_sort: str = "CreationTime") -> ListQuery:
    return ListQuery(
        name_contains=params.get("NameContains"),
        created_after=params.get("CreationTimeAfter"),
        created_before=params.get("CreationTimeBefore"),
        modified_after=params.get("LastModifiedTimeAfter"),
        modified_before=params.get("LastModifiedTimeBefore"),
        status=params.get("StatusEquals"),
        sort_by=params.get("SortBy") or default_sort,
        sort_order=params.get("SortOrder") or "Descending",
        max_results=params.get("MaxResults") or DEFAULT_MAX_RESULTS,
        next_token=params.get("NextToken"),
    )
