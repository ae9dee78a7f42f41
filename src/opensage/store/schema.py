"""The tables. Changed only together with a new Alembic revision in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# Every SageMaker resource (model, endpoint config, training job, ...) is one row: the fields
# lists filter and sort on are columns, the full Describe document is ``body``, and what only
# opensage needs (runner bookkeeping, deployments, scaling clocks) is ``internal``: never
# part of an API answer.
resources = Table(
    "resources", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("arn", String(512), nullable=False, unique=True),
    Column("status", String(64)),
    Column("creation_time", Float, nullable=False),
    Column("last_modified_time", Float, nullable=False),
    Column("body", JSON, nullable=False),
    Column("internal", JSON, nullable=False, server_default="{}"),
    UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
    Index("ix_resources_kind_created", "kind", "creation_time", "id"),
    # StatusEquals lists, newest first (the console's home page lists each kind's failures)
    Index("ix_resources_kind_status_created", "kind", "status", "creation_time", "id"),
)

# The search index (``store.search_index``): a resource's final metric values, one row per
# metric, rewritten with every write of its body. ``resource_id`` is ``resources.id``.
resource_metrics = Table(
    "resource_metrics", metadata,
    Column("resource_id", Integer, primary_key=True),
    Column("metric_name", String(256), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_resource_metrics_search", "kind", "metric_name", "value", "resource_id"),
)

tags = Table(
    "tags", metadata,
    Column("arn", String(512), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

s3_buckets = Table(
    "s3_buckets", metadata,
    Column("name", String(63), primary_key=True),
    Column("creation_time", Float, nullable=False),
    Column("region", String(32), nullable=False),
    Column("policy", Text, nullable=True),  # PutBucketPolicy's document, as given
)

s3_objects = Table(
    "s3_objects", metadata,
    Column("bucket", String(63), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("blob", String(256), nullable=False),  # path of the bytes in the object store
    Column("size", BigInteger, nullable=False),
    Column("etag", String(80), nullable=False),
    Column("last_modified", Float, nullable=False),
    Column("meta", JSON, nullable=False),  # content type, user metadata, checksums, SSE
)

s3_uploads = Table(
    "s3_uploads", metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("bucket", String(63), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("initiated", Float, nullable=False),
    Column("meta", JSON, nullable=False),
)

s3_parts = Table(
    "s3_parts", metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("part_number", Integer, primary_key=True),
    Column("blob", String(256), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(80), nullable=False),
    Column("meta", JSON, nullable=False),
)

log_groups = Table(
    "log_groups", metadata,
    Column("name", String(512), primary_key=True),
    Column("creation_time", BigInteger, nullable=False),  # epoch milliseconds, as Logs speaks
    Column("retention_days", Integer),
    Column("meta", JSON, nullable=False),
)

log_streams = Table(
    "log_streams", metadata,
    Column("group_name", String(512), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("first_event_time", BigInteger),
    Column("last_event_time", BigInteger),
    Column("last_ingestion_time", BigInteger),
    Column("stored_bytes", BigInteger, nullable=False, default=0),
)

log_events = Table(
    "log_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_name", String(512), nullable=False),
    Column("stream_name", String(512), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("ingestion_time", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_log_events_stream_time", "group_name", "stream_name", "timestamp", "id"),
    Index("ix_log_events_group_time", "group_name", "timestamp", "id"),
)


# CloudWatch metric data points (training metrics, endpoint invocation metrics).
metric_data = Table(
    "metric_data", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(256), nullable=False),
    Column("metric_name", String(256), nullable=False),
    Column("dimensions", String(1024), nullable=False),  # canonical "Name=Value|Name=Value"
    Column("timestamp", Float, nullable=False),
    Column("value", Float, nullable=False),
    Column("unit", String(32), nullable=False),
    # SageMaker Metrics' iteration number (BatchPutMetrics ``Step``); null for CloudWatch's
    Column("step", Integer),
    Index("ix_metric_data_series", "namespace", "metric_name", "dimensions", "timestamp"),
)

# Every status change made through ``ResourceStore.transition``: when a resource moved.
status_transitions = Table(
    "status_transitions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("from_status", String(64)),
    Column("to_status", String(64), nullable=False),
    Column("time", Float, nullable=False),
    Index("ix_status_transitions_resource", "kind", "name", "id"),
)

# Claims on work that must happen once across servers sharing a database (``store.leases``).
leases = Table(
    "leases", metadata,
    Column("key", String(512), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("expires", Float, nullable=False),
    Index("ix_leases_owner", "owner"),
)

# A tuning job's trials, one row per child training job (``store.trials``): a reconcile step
# writes the trial that changed, never the whole list.
tuning_trials = Table(
    "tuning_trials", metadata,
    Column("tuning_job", String(256), primary_key=True),
    Column("number", Integer, primary_key=True),  # 1, 2, ... in the order trials were made
    Column("training_job_name", String(256), nullable=False),
    Column("training_job_arn", String(512), nullable=False),
    Column("definition_name", String(64)),
    Column("tuned_hyperparameters", JSON, nullable=False),
    Column("status", String(64), nullable=False),  # the child's TrainingJobStatus
    Column("objective_status", String(16), nullable=False),
    Column("objective", Float),
    Column("failure_reason", Text),
    Column("creation_time", Float, nullable=False),
    Column("training_start_time", Float),
    Column("training_end_time", Float),
    Column("launched", Boolean, nullable=False),  # its training job was asked for
    Column("stop_requested", Boolean, nullable=False),
    Column("early_stopped", Boolean, nullable=False),
    Column("retried", Boolean, nullable=False),  # failed internally; a later trial retries it
    Column("retry_of", String(256)),
    Column("bracket", Integer),  # Hyperband: its bracket and the last rung it passed
    Column("rung", Integer, nullable=False),
    Column("stopped_at_rung", Integer),
)

# Which trials a trial component belongs to (AssociateTrialComponent): many to many. The
# experiment is the trial's, copied here so lists and Search by experiment need no join.
trial_memberships = Table(
    "trial_memberships", metadata,
    Column("trial_name", String(256), primary_key=True),
    Column("component_name", String(256), primary_key=True),
    Column("experiment_name", String(256), nullable=False),
    Column("creation_time", Float, nullable=False),
    Index("ix_trial_memberships_component", "component_name"),
    Index("ix_trial_memberships_experiment", "experiment_name"),
)

# Lineage edges (AddAssociation): source -> destination between artifacts, actions, contexts,
# trial components and other SageMaker resources, with the ends' types and names as they
# were when the edge was made (ListAssociations answers them without reading the ends).
lineage_associations = Table(
    "lineage_associations", metadata,
    Column("source_arn", String(512), primary_key=True),
    Column("destination_arn", String(512), primary_key=True),
    Column("association_type", String(32), nullable=False),
    Column("source_type", String(256), nullable=False),
    Column("destination_type", String(256), nullable=False),
    Column("source_name", String(256), nullable=False),
    Column("destination_name", String(256), nullable=False),
    Column("creation_time", Float, nullable=False),
    Index("ix_lineage_associations_destination", "destination_arn"),
)

# IAM: users, roles and access keys (root, user and STS session keys in one table, looked up
# by key id on every signed request). Secrets are Fernet-encrypted (``secret``): SigV4 needs
# the secret itself to recompute a signature; a session token is kept only as its SHA-256.
iam_users = Table(
    "iam_users", metadata,
    Column("name", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("body", JSON, nullable=False),  # tags, permissions boundary: as GetUser answers
)

iam_roles = Table(
    "iam_roles", metadata,
    Column("name", String(64), primary_key=True),
    Column("role_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("assume_role_policy", Text, nullable=False),  # the trust policy, as given
    Column("body", JSON, nullable=False),  # description, max session duration, tags
)

iam_access_keys = Table(
    "iam_access_keys", metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # root | user | session
    Column("user_name", String(64)),  # kind user: the owner
    Column("secret", Text, nullable=False),  # encrypted
    Column("status", String(16), nullable=False),  # Active | Inactive
    Column("create_time", Float, nullable=False),
    Column("expiration", Float),  # kind session: when the credentials stop working
    Column("token_sha256", String(64)),  # kind session: SHA-256 of the session token
    Column("principal", JSON, nullable=False),  # who signs with it: arn, user id, type
    Index("ix_iam_access_keys_user", "user_name"),
)

# CloudTrail: one row per API call, append-only (only retention deletes). LookupEvents filters
# on one attribute and a time range, newest first: one index per attribute, with event_time.
audit_events = Table(
    "audit_events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # tie-breaker, insert order
    Column("event_id", String(36), nullable=False),
    Column("event_time", Float, nullable=False),  # epoch seconds
    Column("event_name", String(128), nullable=False),
    Column("event_source", String(64), nullable=False),
    Column("username", String(128)),
    Column("resource_type", String(64)),  # of the first resource
    Column("resource_name", String(1024)),  # of the first resource
    Column("read_only", Boolean, nullable=False),
    Column("access_key_id", String(32)),
    Column("resources", JSON, nullable=False),  # LookupEvents' Resources
    Column("record", Text, nullable=False),  # the CloudTrail record (JSON)
    Index("ix_audit_events_time", "event_time"),
    Index("ix_audit_events_id", "event_id"),
    Index("ix_audit_events_name", "event_name", "event_time"),
    Index("ix_audit_events_user", "username", "event_time"),
    Index("ix_audit_events_resource", "resource_name", "event_time"),
    Index("ix_audit_events_resource_type", "resource_type", "event_time"),
    Index("ix_audit_events_source", "event_source", "event_time"),
    # ReadOnly: reads are most events, found through ix_audit_events_time; writes through
    # this partial index, which reads (most inserts) do not touch
    Index("ix_audit_events_writes", "event_time", sqlite_where=text("read_only = 0"),
          postgresql_where=text("NOT read_only")),
    Index("ix_audit_events_key", "access_key_id", "event_time"),
)

# CloudTrail trails: only what selects data events (PutEventSelectors) is acted on.
audit_trails = Table(
    "audit_trails", metadata,
    Column("name", String(128), primary_key=True),
    Column("create_time", Float, nullable=False),
    Column("body", JSON, nullable=False),  # the trail as DescribeTrails answers, + selectors
)

# IAM policies: customer managed policies (their versions in ``body``), inline policies of
# users, groups and roles, managed-policy attachments (AWS managed ones too: their ARN), groups
# and their members. ``owner_kind``: user | group | role.
iam_policies = Table(
    "iam_policies", metadata,
    Column("arn", String(600), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("policy_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("body", JSON, nullable=False),  # description, default version, versions, tags
)

iam_inline_policies = Table(
    "iam_inline_policies", metadata,
    Column("owner_kind", String(8), primary_key=True),
    Column("owner_name", String(128), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

iam_attachments = Table(
    "iam_attachments", metadata,
    Column("owner_kind", String(8), primary_key=True),
    Column("owner_name", String(128), primary_key=True),
    Column("policy_arn", String(600), primary_key=True),
    Index("ix_iam_attachments_policy", "policy_arn"),
)

iam_groups = Table(
    "iam_groups", metadata,
    Column("name", String(128), primary_key=True),
    Column("group_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("create_time", Float, nullable=False),
)

iam_group_members = Table(
    "iam_group_members", metadata,
    Column("group_name", String(128), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Index("ix_iam_group_members_user", "user_name"),
)

ALL_TABLES = tuple(metadata.sorted_tables)
# What ``Database.wipe`` (the test suites' reset) keeps: credentials (or the server would
# lock its callers out).
# The audit record is append-only: a reset does not erase it either.
KEPT_BY_WIPE = frozenset({"iam_users", "iam_roles", "iam_access_keys", "audit_events",
                          "iam_policies", "iam_inline_policies", "iam_attachments",
                          "iam_groups", "iam_group_members"})
