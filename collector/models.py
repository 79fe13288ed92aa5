"""The store's schema: the raw archive and the normalised projections built from it.

Projection rows are keyed by natural string ids (e.g. `codepipeline:<execution-id>`), so a replay
from `raw_events` rebuilds exactly the same rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from .timeutil import UTC


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Key = lambda: String(255)  # noqa: E731 - natural ids: source-prefixed, bounded

raw_events = Table(
    "raw_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Index("ix_raw_events_status", "status"),
    Index("ix_raw_events_source_received", "source", "received_at"),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("pipeline", String(255)),
    Column("service", String(255)),
    Column("revision", String(255)),
    Column("branch", String(255)),
    Column("trigger", String(255)),
    Column("url", Text),
    Column("status", String(32)),
    Column("status_at", UTCDateTime),
    Column("queued_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("attempt", Integer),
    Column("is_rollback", Boolean),
    Index("ix_pipeline_runs_service_started", "service", "started_at"),
)

stage_runs = Table(
    "stage_runs",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("pipeline_run_id", Key(), nullable=False),
    Column("name", String(255), nullable=False),
    Column("category", String(32)),
    Column("status", String(32)),
    Column("status_at", UTCDateTime),
    Column("queued_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("attempt", Integer),
    Column("failed_once", Boolean),
    Index("ix_stage_runs_pipeline_run_id", "pipeline_run_id"),
)

action_runs = Table(
    "action_runs",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("pipeline_run_id", Key(), nullable=False),
    Column("stage_run_id", Key()),
    Column("name", String(255), nullable=False),
    Column("category", String(32)),
    Column("provider", String(64)),
    Column("external_id", String(255)),
    Column("url", Text),
    Column("status", String(32)),
    Column("status_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("failed_once", Boolean),
    Index("ix_action_runs_pipeline_run_id", "pipeline_run_id"),
    Index("ix_action_runs_external_id", "external_id"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("service", String(255)),
    Column("team", String(255)),
    Column("environment", String(255)),
    Column("production", Boolean),
    Column("status", String(32)),
    Column("status_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("version", String(255)),
    Column("revision", String(255)),
    Column("pipeline_run_id", Key()),
    Column("rollback_of", Key()),
    Column("is_rollback", Boolean),
    Column("hotfix", Boolean),
    Column("url", Text),
    Index("ix_deployments_service_finished", "service", "finished_at"),
    Index("ix_deployments_finished", "finished_at"),
    Index("ix_deployments_team_service", "team", "service"),
    Index("ix_deployments_environment", "environment"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("service", String(255)),
    Column("repository", String(255)),
    Column("committed_at", UTCDateTime),
    Column("merged_at", UTCDateTime),
    Column("pr", Integer),
    Column("author", String(255)),
    Column("title", Text),
    Column("pushed_head", String(255)),
    Index("ix_changes_pushed_head", "pushed_head"),
)

deployment_changes = Table(
    "deployment_changes",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("deployment_id", Key(), nullable=False),
    Column("change_id", Key(), nullable=False),
    Index("ix_deployment_changes_deployment_id", "deployment_id"),
    Index("ix_deployment_changes_change_id", "change_id"),
)

# Derived from `deployment_changes` and `changes` by triggers (migration 0006), whoever writes them:
# every change a deployment holds (a linked commit, or a commit pushed with a linked head) with its
# commit time (else its merge time), clustered by deployment, so a DORA read takes one range scan per
# deployment instead of several index seeks per change. Not a projection: a replay rebuilds it by
# rebuilding those two.
deployment_contents = Table(
    "deployment_contents",
    metadata,
    Column("deployment_id", Key(), primary_key=True),
    Column("change_id", Key(), primary_key=True),
    Column("committed_at", UTCDateTime),
    Index("ix_deployment_contents_change_id", "change_id", "deployment_id"),
    sqlite_with_rowid=False,
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("service", String(255)),
    Column("title", Text),
    Column("severity", String(64)),
    Column("status", String(32)),
    Column("status_at", UTCDateTime),
    Column("opened_at", UTCDateTime),
    Column("acknowledged_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("deployment_id", Key()),
    Column("url", Text),
    Index("ix_incidents_service_opened", "service", "opened_at"),
    Index("ix_incidents_deployment_id", "deployment_id"),
)

# Alarm episodes: one per alarm and time it entered ALARM (CloudWatch), resolved once it left ALARM.
alarms = Table(
    "alarms",
    metadata,
    Column("id", Key(), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("name", String(255)),
    Column("service", String(255)),
    Column("status", String(32)),  # alarm | resolved
    Column("status_at", UTCDateTime),
    Column("reason", Text),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("url", Text),
    Index("ix_alarms_service_started", "service", "started_at"),
)

PROJECTION_TABLES = (
    pipeline_runs,
    stage_runs,
    action_runs,
    deployments,
    changes,
    deployment_changes,
    incidents,
    alarms,
)

# Canary runs: each verdict with its config, window, scopes and the samples it judged (for audit
# and re-judging). Samples are stored as little-endian float64 bytes with their shape.
canary_runs = Table(
    "canary_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("score", Float),
    Column("source", String(32), nullable=False),
    Column("deployment_id", Key()),
    Column("window_start", UTCDateTime),
    Column("window_end", UTCDateTime),
    Column("baseline_scope", Text),
    Column("canary_scope", Text),
    Column("config", Text, nullable=False),
    Column("result", Text, nullable=False),
    Index("ix_canary_runs_created_at", "created_at"),
    Index("ix_canary_runs_deployment_id", "deployment_id"),
)

canary_metric_results = Table(
    "canary_metric_results",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("metric", String(255), primary_key=True),
    Column("classification", String(16), nullable=False),
    Column("passed", Boolean),
    Column("critical", Boolean, nullable=False),
    Column("metric_group", String(255)),
    Column("weight", Float),
    Column("baseline_n", Integer),
    Column("baseline_median", Float),
    Column("canary_n", Integer),
    Column("canary_median", Float),
    Column("shift", Float),
    Column("ci_low", Float),
    Column("ci_high", Float),
    Column("relative_shift", Float),
    Column("p_value", Float),
    Column("reason", Text),
)

canary_samples = Table(
    "canary_samples",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("metric", String(255), primary_key=True),
    Column("side", String(8), primary_key=True),  # baseline | canary
    Column("shape", String(32), nullable=False),  # "n" or "n,2" (good, total pairs)
    Column("data", LargeBinary, nullable=False),
)

# Sequential canaries: a sequence per key (a gate key and check, or `canary run --sequence KEY`) with
# the state its next look continues from, in any process; each look is a row, with the canary run that
# holds its samples and result. Looks are numbered from 1; (key, look) is unique, so two processes
# taking the same look cannot both record it.
canary_sequences = Table(
    "canary_sequences",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("config", Text, nullable=False),
    Column("source", String(32), nullable=False),
    Column("deployment_id", Key()),
    Column("baseline_scope", Text),
    Column("canary_scope", Text),
    Column("looks", Integer, nullable=False),
    Column("decision", String(16)),  # pass | fail once decided (final), else NULL
    Column("state", Text, nullable=False),  # JSON: analysis.canary.sequential.SequenceState
)

canary_looks = Table(
    "canary_looks",
    metadata,
    Column("sequence_key", String(255), primary_key=True),
    Column("look", Integer, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("elapsed_s", Float, nullable=False),
    Column("verdict", String(16), nullable=False),  # pass | fail | continue | nodata
    Column("run_id", String(36)),
    Column("result", Text, nullable=False),  # JSON: the look's verdict
)

# Gate decisions: one per idempotency key (CodePipeline job id, --key, or execution id + stage); a
# retried call returns the stored decision and never acts twice.
gate_decisions = Table(
    "gate_decisions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("key", String(255), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="1"),  # a hold may be asked again
    Column("gate", String(255), nullable=False),
    Column("decision", String(16), nullable=False),  # promote | hold | rollback
    Column("created_at", UTCDateTime, nullable=False),
    Column("deployment_id", Key()),
    Column("service", String(255)),
    Column("checks", Text, nullable=False),  # JSON list of check results
    Column("reasons", Text, nullable=False),  # JSON list of strings
    Column("actions", Text, nullable=False),  # JSON list of actions and their outcomes
    Column("evidence", Text),  # JSON: canary run ids, SLO figures
    UniqueConstraint("key", "attempt", name="uq_gate_decisions_key_attempt"),
    Index("ix_gate_decisions_created_at", "created_at"),
    Index("ix_gate_decisions_deployment_id", "deployment_id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("event", String(32), nullable=False),  # gate_rollback, burn_rate_page, ... (config.NOTIFY_EVENTS)
    Column("action", String(16), nullable=False),  # trigger | resolve
    Column("channel", String(255), nullable=False),
    Column("channel_type", String(16), nullable=False),
    Column("dedup_key", String(255), nullable=False),
    Column("service", String(255)),
    Column("team", String(255)),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # sent | failed | suppressed
    Column("attempts", Integer, nullable=False),
    Column("error", Text),  # secrets scrubbed
    Column("summary", Text, nullable=False),
    Column("decision_id", String(36)),
    Column("body", Text),  # JSON of what was (or would have been) sent, secrets redacted
    Index("ix_notifications_channel_dedup", "channel", "dedup_key", "created_at"),
    Index("ix_notifications_created_at", "created_at"),
)
