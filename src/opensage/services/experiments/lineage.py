"""ML lineage: artifacts, actions and contexts (resource rows), the associations between
them and any other SageMaker entity (``store.lineage`` edges), and ``QueryLineage``, a
breadth-first walk over those edges.

An artifact has no unique name on AWS: it is known by its ARN, ``artifact/<hash>``, the hash
of its source (URI and source types), so one data set or model file is one artifact however
often a job names it (a second ``CreateArtifact`` of a source is refused "already exists",
which the SDK tolerates; the job lineage reuses it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from opensage.errors import ResourceNotFound, ValidationException
from opensage.services import crud, kinds
from opensage.services.context import Context
from opensage.store import pagination
from opensage.store.lineage import Edge, EdgeExists, EdgeQuery, LineageStore
from opensage.store.resources import AlreadyExists, BodyPath, ListQuery, Resource

Body = dict[str, Any]
DEFAULT_MAX_DEPTH = 10

# kind -> (noun in ARNs and answers, the name member, its LineageType)
_ENTITIES = {
    kinds.ARTIFACT.name: ("Artifact", "ArtifactName", "Artifact"),
    kinds.ACTION.name: ("Action", "ActionName", "Action"),
    kinds.CONTEXT.name: ("Context", "ContextName", "Context"),
    kinds.TRIAL_COMPONENT.name: ("TrialComponent", "TrialComponentName", "TrialComponent"),
}


def artifact_id(source_uri: str, source_types: Sequence[Body] = ()) -> str:
    key = source_uri + "".join(sorted(f"|{t.get('SourceIdType')}={t.get('Value')}"
                                      for t in source_types))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _seconds(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return None if value is None else float(value)


class LineageService:
    def __init__(self, ctx: Context, store: LineageStore) -> None:
        self.ctx = ctx
        self.store = store

    # -- artifacts -------------------------------------------------------------------------
    def create_artifact(self, params: Body, *, exist_ok: bool = False) -> str:
        source = params["Source"]
        name = artifact_id(source["SourceUri"], source.get("SourceTypes") or ())
        arn = crud.arn_of(self.ctx, kinds.ARTIFACT, name)
        now = self.ctx.now()
        body: Body = {"ArtifactArn": arn, "Source": source, "CreationTime": now,
                      "CreatedBy": {}, "LastModifiedTime": now, "LastModifiedBy": {},
                      "Properties": dict(params.get("Properties") or {})}
        for key in ("ArtifactName", "ArtifactType", "MetadataProperties"):
            if params.get(key) is not None:
                body[key] = params[key]
        return self._create(kinds.ARTIFACT, name, body, params, exist_ok=exist_ok).arn

    def describe_artifact(self, arn: str) -> Body:
        return self._by_arn(kinds.ARTIFACT, arn).body

    def update_artifact(self, params: Body) -> str:
        row = self._by_arn(kinds.ARTIFACT, params["ArtifactArn"])
        return self._update(row, params, ("ArtifactName",)).arn

    def delete_artifact(self, params: Body) -> str:
        if params.get("ArtifactArn"):
            row = self._by_arn(kinds.ARTIFACT, params["ArtifactArn"])
        elif params.get("Source"):
            source = params["Source"]
            name = artifact_id(source["SourceUri"], source.get("SourceTypes") or ())
            row = crud.load(self.ctx, kinds.ARTIFACT, name)
        else:
            raise ValidationException("DeleteArtifact needs ArtifactArn or Source.")
        return self._delete(row)

    def list_artifacts(self, params: Body) -> Body:
        rows, token = self._list(kinds.ARTIFACT, params, "ArtifactType")
        return {"ArtifactSummaries": [_pick(r.body, (
            "ArtifactArn", "ArtifactName", "Source", "ArtifactType", "CreationTime",
            "LastModifiedTime")) for r in rows], "NextToken": token}

    # -- actions and contexts ---------------------------------------------------------------
    def create_named(self, kind: kinds.Kind, params: Body, *, exist_ok: bool = False) -> str:
        noun, name_key, _ = _ENTITIES[kind.name]
        name = params[name_key]
        now = self.ctx.now()
        body: Body = {name_key: name, f"{noun}Arn": crud.arn_of(self.ctx, kind, name),
                      "Source": params["Source"], "CreationTime": now, "CreatedBy": {},
                      "LastModifiedTime": now, "LastModifiedBy": {},
                      "Properties": dict(params.get("Properties") or {})}
        for key in (f"{noun}Type", "Description", "Status", "MetadataProperties"):
            if params.get(key) is not None:
                body[key] = params[key]
        return self._create(kind, name, body, params, exist_ok=exist_ok).arn

    def describe_named(self, kind: kinds.Kind, name: str) -> Body:
        return crud.load(self.ctx, kind, name).body

    def update_named(self, kind: kinds.Kind, params: Body) -> str:
        name_key = _ENTITIES[kind.name][1]
        row = crud.load(self.ctx, kind, params[name_key])
        return self._update(row, params, ("Description", "Status")).arn

    def delete_named(self, kind: kinds.Kind, name: str) -> str:
        return self._delete(crud.load(self.ctx, kind, name))

    def list_named(self, kind: kinds.Kind, params: Body) -> Body:
        noun, name_key, _ = _ENTITIES[kind.name]
        rows, token = self._list(kind, params, f"{noun}Type")
        fields = (f"{noun}Arn", name_key, "Source", f"{noun}Type", "Status", "CreationTime",
                  "LastModifiedTime")
        return {f"{noun}Summaries": [_pick(r.body, fields) for r in rows], "NextToken": token}

    # -- associations ----------------------------------------------------------------------
    def add_association(self, source_arn: str, destination_arn: str,
                        association_type: str | None = None, *, exist_ok: bool = False) -> Body:
        source, destination = self._entity(source_arn), self._entity(destination_arn)
        edge = Edge(source_arn, destination_arn, association_type or "AssociatedWith",
                    _entity_type(source), _entity_type(destination), _entity_name(source),
                    _entity_name(destination), self.ctx.now())
        try:
            self.store.add(edge)
        except EdgeExists:
            if not exist_ok:
                raise ValidationException(f"Association from {source_arn} to {destination_arn} "
                                          "already exists.") from None
        return {"SourceArn": source_arn, "DestinationArn": destination_arn}

    def delete_association(self, source_arn: str, destination_arn: str) -> Body:
        if not self.store.remove(source_arn, destination_arn):
            raise ResourceNotFound(f"Association from {source_arn} to {destination_arn} "
                                   "does not exist.")
        return {"SourceArn": source_arn, "DestinationArn": destination_arn}

    def list_associations(self, params: Body) -> Body:
        sort_by = params.get("SortBy") or "CreationTime"
        edges, token = self.store.list(EdgeQuery(
            source_arn=params.get("SourceArn"), destination_arn=params.get("DestinationArn"),
            source_type=params.get("SourceType"),
            destination_type=params.get("DestinationType"),
            association_type=params.get("AssociationType"),
            created_after=_seconds(params.get("CreatedAfter")),
            created_before=_seconds(params.get("CreatedBefore")), sort_by=sort_by,
            descending=(params.get("SortOrder") or "Descending") == "Descending",
            max_results=params.get("MaxResults") or 10, next_token=params.get("NextToken")))
        return {"AssociationSummaries": [{
            "SourceArn": e.source_arn, "DestinationArn": e.destination_arn,
            "SourceType": e.source_type, "DestinationType": e.destination_type,
            "AssociationType": e.association_type, "SourceName": e.source_name,
            "DestinationName": e.destination_name, "CreationTime": e.creation_time,
            "CreatedBy": {}} for e in edges], "NextToken": token}

    # -- QueryLineage ----------------------------------------------------------------------
    def query(self, params: Body) -> Body:
        """Breadth-first from ``StartArns`` along the edges (backwards for Ascendants,
        forwards for Descendants, both ways for Both), at most ``MaxDepth`` hops. The start
        entities are not among the vertices; ``Filters`` pick the vertices returned (the walk
        goes through the others)."""
        starts = list(params.get("StartArns") or [])
        direction = params.get("Direction") or "Both"
        max_depth = params.get("MaxDepth")
        max_depth = DEFAULT_MAX_DEPTH if max_depth is None else max_depth
        include_edges = params.get("IncludeEdges", True) is not False
        seen = set(starts)
        frontier = starts
        found: list[str] = []
        edges: dict[tuple[str, str], Edge] = {}
        for _ in range(max_depth):
            if not frontier:
                break
            step: list[Edge] = []
            if direction in ("Ascendants", "Both"):
                step += self.store.edges_to(frontier)
            if direction in ("Descendants", "Both"):
                step += self.store.edges_from(frontier)
            following: list[str] = []
            for edge in step:
                edges[(edge.source_arn, edge.destination_arn)] = edge
                for arn in (edge.source_arn, edge.destination_arn):
                    if arn not in seen:
                        seen.add(arn)
                        following.append(arn)
            found += following
            frontier = following
        vertices = [v for v in (self._vertex(arn) for arn in found)
                    if _passes(v, params.get("Filters") or {})]
        out: Body = {"Vertices": [v["vertex"] for v in vertices]}
        if include_edges:
            out["Edges"] = [{"SourceArn": e.source_arn, "DestinationArn": e.destination_arn,
                             "AssociationType": e.association_type} for e in edges.values()]
        return out

    def _vertex(self, arn: str) -> Body:
        row = self.ctx.resources.get_by_arn(arn)
        vertex: Body = {"Arn": arn}
        lineage_type = _ENTITIES.get(row.kind, ("", "", None))[2] if row else None
        if lineage_type:
            vertex["LineageType"] = lineage_type
        entity_type = _entity_type(row) if row else None
        if entity_type and entity_type != lineage_type:
            vertex["Type"] = entity_type
        return {"vertex": vertex, "row": row}

    # -- helpers ---------------------------------------------------------------------------
    def _entity(self, arn: str) -> Resource:
        row = self.ctx.resources.get_by_arn(arn)
        if row is None:
            raise ResourceNotFound(f"Resource '{arn}' does not exist.")
        return row

    def _by_arn(self, kind: kinds.Kind, arn: str) -> Resource:
        row = self.ctx.resources.get_by_arn(arn)
        if row is None or row.kind != kind.name:
            raise kind.not_found(arn, arn)
        return row

    def _create(self, kind: kinds.Kind, name: str, body: Body, params: Body, *,
                exist_ok: bool = False) -> Resource:
        noun = _ENTITIES[kind.name][0]
        arn = body[f"{noun}Arn"]
        try:
            return self.ctx.resources.create(kind.name, name, arn, body,
                                             now=body["CreationTime"],
                                             tag_list=params.get("Tags") or [])
        except AlreadyExists:
            if exist_ok:
                return crud.load(self.ctx, kind, name)
            raise ValidationException(f"{noun} '{arn}' already exists.") from None

    def _update(self, row: Resource, params: Body, fields: Iterable[str]) -> Resource:
        now = self.ctx.now()

        def change(body: Body) -> None:
            for key in fields:
                if params.get(key) is not None:
                    body[key] = params[key]
            properties = dict(body.get("Properties") or {})
            properties.update(params.get("Properties") or {})
            for key in params.get("PropertiesToRemove") or []:
                properties.pop(key, None)
            body["Properties"] = properties
            body["LastModifiedTime"] = now

        return self.ctx.resources.edit(row.kind, row.name, [row.status], change, now=now)

    def _delete(self, row: Resource) -> str:
        crud.remove(self.ctx, kinds.ALL[row.kind], row.name)
        self.store.remove_touching(row.arn)
        return row.arn

    def _list(self, kind: kinds.Kind, params: Body,
              type_key: str) -> tuple[list[Resource], str | None]:
        sort_by = params.get("SortBy") or "CreationTime"
        if sort_by != "CreationTime":
            raise ValidationException(f"Invalid SortBy value {sort_by!r}: CreationTime")
        query = ListQuery(created_after=params.get("CreatedAfter"),
                          created_before=params.get("CreatedBefore"), sort_by=sort_by,
                          sort_order=params.get("SortOrder") or "Descending",
                          max_results=params.get("MaxResults") or 10,
                          next_token=params.get("NextToken"))
        wanted_type, wanted_uri = params.get(type_key), params.get("SourceUri")
        if wanted_type is None and wanted_uri is None:
            return self.ctx.resources.list(kind.name, query)
        # filtered on the document: the matching names, then one page of them
        projected = self.ctx.resources.project(kind.name, [
            BodyPath((type_key,)), BodyPath(("Source", "SourceUri"))])
        names = [p.name for p in projected
                 if (wanted_type is None or p.values[0] == wanted_type)
                 and (wanted_uri is None or p.values[1] == wanted_uri)]
        rows = sorted(self.ctx.resources.get_many(kind.name, names).values(),
                      key=lambda r: (r.creation_time, r.row_id),
                      reverse=query.sort_order == "Descending")
        after, before = _seconds(query.created_after), _seconds(query.created_before)
        rows = [r for r in rows if (after is None or r.creation_time > after)
                and (before is None or r.creation_time < before)]
        return pagination.page(rows, lambda r: (r.creation_time, r.row_id),
                               query=("lineage", kind.name, wanted_type, wanted_uri,
                                      query.sort_order, after, before),
                               token=query.next_token, limit=query.max_results,
                               descending=query.sort_order == "Descending")


def _entity_type(row: Resource) -> str:
    """The type an association records for an end: an artifact's ArtifactType, an action's
    ActionType, a context's ContextType, a trial component's source job type, else its
    resource kind in AWS's words."""
    body = row.body
    for key in ("ArtifactType", "ActionType", "ContextType"):
        if body.get(key):
            return str(body[key])
    if row.kind == kinds.TRIAL_COMPONENT.name:
        source_type = (body.get("Source") or {}).get("SourceType")
        return {"SageMakerTrainingJob": "TrainingJob",
                "SageMakerProcessingJob": "ProcessingJob",
                "SageMakerTransformJob": "TransformJob"}.get(source_type or "",
                                                               "ExperimentTrialComponent")
    return {"experiment": "Experiment", "experiment-trial": "ExperimentTrial",
            kinds.MODEL_PACKAGE.name: "ModelPackage",
            kinds.MODEL_PACKAGE_GROUP.name: "ModelPackageGroup",
            kinds.PIPELINE_EXECUTION.name: "PipelineExecution",
            kinds.TRAINING_JOB.name: "TrainingJob", kinds.PROCESSING_JOB.name: "ProcessingJob",
            kinds.TRANSFORM_JOB.name: "TransformJob", kinds.ENDPOINT.name: "Endpoint",
            kinds.MODEL.name: "Model"}.get(row.kind, row.kind)


def _entity_name(row: Resource) -> str:
    noun_key = _ENTITIES.get(row.kind, ("", "", ""))[1]
    return str(row.body.get(noun_key) or row.name) if noun_key else row.name


def _passes(vertex: Body, filters: Body) -> bool:
    v, row = vertex["vertex"], vertex["row"]
    if filters.get("Types") and v.get("Type") not in filters["Types"]:
        return False
    if filters.get("LineageTypes") and v.get("LineageType") not in filters["LineageTypes"]:
        return False
    if row is None:
        return not any(filters.get(k) for k in ("CreatedBefore", "CreatedAfter",
                                                "ModifiedBefore", "ModifiedAfter"))
    bounds = ((filters.get("CreatedBefore"), row.creation_time, False),
              (filters.get("CreatedAfter"), row.creation_time, True),
              (filters.get("ModifiedBefore"), row.last_modified_time, False),
              (filters.get("ModifiedAfter"), row.last_modified_time, True))
    for when, value, after in bounds:
        bound = _seconds(when)
        if bound is not None and (value <= bound if after else value >= bound):
            return False
    wanted = filters.get("Properties") or {}
    properties = row.body.get("Properties") or {}
    return all(properties.get(k) == val for k, val in wanted.items())


def _pick(body: Body, fields: Iterable[str]) -> Body:
    return {k: body[k] for k in fields if body.get(k) is not None}
