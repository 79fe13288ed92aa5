"""Listings: what the dashboard lists and filters by (store counts, filter choices, open work, a run's
stages and actions, canary runs, gate decisions), filtered in SQL and read as DataFrames."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, func, inspect, literal, or_, select, true, union_all
from sqlalchemy.sql import ColumnElement

from . import payload_text
from .config import Config
from .db import translates_store_errors
from .loaders import Scope, declared_category, distinct_values, raw_time, read_frame, reading, team_services
from .models import (
    action_runs,
    canary_runs,
    deployments,
    gate_decisions,
    incidents,
    pipeline_runs,
    raw_events,
    stage_runs,
)
from .sources import SOURCES

__all__ = [
    "ACTIVE_DEPLOYMENT",
    "ACTIVE_RUN",
    "count_raw_events",
    "list_quarantined",
    "load_canary_runs",
    "load_filter_options",
    "load_gate_decisions",
    "load_open_work",
    "load_run_detail",
    "load_store_counts",
    "newest_event_times",
    "production_stage_warnings",
    "quarantine_groups",
]

ACTIVE_RUN = ("queued", "in_progress")
ACTIVE_DEPLOYMENT = ("pending", "in_progress")


def _run_scope(scope: Scope, table=pipeline_runs) -> list[ColumnElement[bool]]:
    conds = []
    if scope.service:
        conds.append(table.c.service == scope.service)
    if scope.team:
        conds.append(table.c.service.in_(team_services(scope.team)))
    return conds


def _named_scope(table, scope: Scope) -> list[ColumnElement[bool]]:
    """Service and team conditions for a table with a `service` column but no team."""
    return _run_scope(scope, table)


def _has_schema(conn: Connection) -> bool:
    return inspect(conn).has_table(raw_events.name)


@translates_store_errors
def load_store_counts(engine: Engine) -> dict[str, int]:
    """Rows per table a dashboard page reads (to tell an empty store from an empty filter); all 0 for a
    store that has no schema yet (nothing was ever written to it)."""
    tables = {
        "raw_events": raw_events,
        "deployments": deployments,
        "pipeline_runs": pipeline_runs,
        "incidents": incidents,
        "canary_runs": canary_runs,
        "gate_decisions": gate_decisions,
    }
    with reading(engine) as conn:
        if not _has_schema(conn):
            return dict.fromkeys(tables, 0)
        return {name: conn.execute(select(func.count()).select_from(t)).scalar_one() for name, t in tables.items()}


def _distinct(conn: Connection, column) -> list:
    """The distinct non-NULL values of an indexed column (`distinct_values`)."""
    return list(conn.execute(distinct_values(column)).scalars())


@translates_store_errors
def load_filter_options(engine: Engine) -> dict[str, list[str]]:
    """The services, teams and environments in the store, sorted (the dashboard's filter choices); none
    for a store without a schema."""
    d, r = deployments, pipeline_runs
    with reading(engine) as conn:
        if not _has_schema(conn):
            return {"services": [], "teams": [], "environments": []}
        services = set(_distinct(conn, d.c.service)) | set(_distinct(conn, r.c.service))
        teams, envs = _distinct(conn, d.c.team), _distinct(conn, d.c.environment)
    return {"services": sorted(services), "teams": sorted(teams), "environments": sorted(envs)}


@translates_store_errors
def load_open_work(engine: Engine, since: datetime, scope: Scope = Scope()) -> dict[str, pd.DataFrame]:
    """What needs a person now: active and recently failed runs (with finished durations of their
    pipelines since `since`, for a typical-duration baseline), deployments in progress, recent
    rollbacks and open incidents with their linked deployment."""
    r, d, i = pipeline_runs, deployments, incidents
    run_cols = [
        r.c.id,
        r.c.pipeline,
        r.c.service,
        r.c.revision,
        r.c.status,
        r.c.url,
        raw_time(r.c.queued_at),
        raw_time(r.c.started_at),
        raw_time(r.c.finished_at),
    ]
    active_runs = select(*run_cols).where(r.c.status.in_(ACTIVE_RUN), *_run_scope(scope))
    failed_runs = (
        select(*run_cols)
        .where(r.c.status == "failed", r.c.finished_at >= since, *_run_scope(scope))
        .order_by(r.c.finished_at.desc())
    )
    finished_runs = select(
        r.c.pipeline, r.c.service, r.c.status, raw_time(r.c.started_at), raw_time(r.c.finished_at)
    ).where(
        r.c.status.in_(("succeeded", "failed")),
        r.c.finished_at >= since,
        r.c.started_at.is_not(None),
        *_run_scope(scope),
    )
    dep_cols = [
        d.c.id,
        d.c.service,
        d.c.team,
        d.c.environment,
        d.c.status,
        d.c.version,
        d.c.url,
        raw_time(d.c.started_at),
        raw_time(d.c.finished_at),
        d.c.rollback_of,
        d.c.is_rollback,
    ]
    active_deps = select(*dep_cols).where(d.c.status.in_(ACTIVE_DEPLOYMENT), *scope.conditions())
    rollbacks = (
        select(*dep_cols)
        .where(
            or_(d.c.is_rollback == true(), d.c.rollback_of.is_not(None), d.c.status == "rolled_back"),
            d.c.finished_at >= since,
            *scope.conditions(),
        )
        .order_by(d.c.finished_at.desc())
    )
    linked = d.alias("linked")
    open_incidents = (
        select(
            i.c.id,
            i.c.service,
            i.c.title,
            i.c.severity,
            i.c.status,
            i.c.url,
            raw_time(i.c.opened_at),
            raw_time(i.c.acknowledged_at),
            i.c.deployment_id,
            linked.c.status.label("deployment_status"),
            raw_time(linked.c.finished_at, "deployment_finished_at"),
        )
        .outerjoin(linked, linked.c.id == i.c.deployment_id)
        .where(i.c.resolved_at.is_(None), *_named_scope(i, scope))
        .order_by(i.c.opened_at.desc())
    )
    with reading(engine) as conn:
        return {
            "active_runs": read_frame(conn, active_runs),
            "failed_runs": read_frame(conn, failed_runs),
            "finished_runs": read_frame(conn, finished_runs),
            "active_deployments": read_frame(conn, active_deps),
            "rollbacks": read_frame(conn, rollbacks),
            "open_incidents": read_frame(conn, open_incidents),
        }


@translates_store_errors
def load_run_detail(engine: Engine, run_id: str) -> dict[str, pd.DataFrame]:
    """One pipeline run's stages and actions, in start order (a drill-down); the actions with their
    `declared_category` (see loaders.declared_category)."""
    s, a = stage_runs, action_runs
    stages = (
        select(
            s.c.id,
            s.c.name,
            s.c.category,
            s.c.status,
            s.c.attempt,
            s.c.failed_once,
            raw_time(s.c.started_at),
            raw_time(s.c.finished_at),
        )
        .where(s.c.pipeline_run_id == run_id)
        .order_by(s.c.started_at, s.c.name)
    )
    actions = (
        select(
            a.c.id,
            a.c.stage_run_id,
            a.c.name,
            a.c.category,
            a.c.provider,
            a.c.status,
            a.c.url,
            raw_time(a.c.started_at),
            raw_time(a.c.finished_at),
            declared_category(a),
        )
        .join(pipeline_runs, pipeline_runs.c.id == a.c.pipeline_run_id)
        .where(a.c.pipeline_run_id == run_id)
        .order_by(a.c.started_at, a.c.name)
    )
    with reading(engine) as conn:
        return {"stages": read_frame(conn, stages), "actions": read_frame(conn, actions)}


@translates_store_errors
def load_canary_runs(
    engine: Engine, start: datetime, end: datetime, scope: Scope = Scope(), limit: int = 200
) -> pd.DataFrame:
    """Canary runs created in [start, end), newest first, with their deployment's service. With a
    service or team in `scope`, only runs of that service's deployments."""
    c, d = canary_runs, deployments
    query = (
        select(
            c.c.id,
            raw_time(c.c.created_at),
            c.c.verdict,
            c.c.score,
            c.c.source,
            c.c.deployment_id,
            d.c.service,
            raw_time(c.c.window_start),
            raw_time(c.c.window_end),
            c.c.baseline_scope,
            c.c.canary_scope,
        )
        .outerjoin(d, d.c.id == c.c.deployment_id)
        .where(c.c.created_at >= start, c.c.created_at < end, *_named_scope(d, scope))
        .order_by(c.c.created_at.desc())
        .limit(limit)
    )
    with reading(engine) as conn:
        return read_frame(conn, query)


@translates_store_errors
def load_gate_decisions(
    engine: Engine, start: datetime, end: datetime, scope: Scope = Scope(), limit: int = 500
) -> pd.DataFrame:
    """Gate decisions made in [start, end) for the scope's services, newest first (checks, reasons,
    actions and evidence as stored JSON text)."""
    g = gate_decisions
    query = (
        select(
            g.c.id,
            g.c.key,
            g.c.attempt,
            g.c.gate,
            g.c.decision,
            raw_time(g.c.created_at),
            g.c.deployment_id,
            g.c.service,
            g.c.checks,
            g.c.reasons,
            g.c.actions,
            g.c.evidence,
        )
        .where(g.c.created_at >= start, g.c.created_at < end, *_named_scope(g, scope))
        .order_by(g.c.created_at.desc(), g.c.attempt.desc())
        .limit(limit)
    )
    with reading(engine) as conn:
        return read_frame(conn, query)


@translates_store_errors
def count_raw_events(engine: Engine) -> int:
    """How many payloads the archive holds (stored and quarantined)."""
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(raw_events)).scalar_one()


@translates_store_errors
def newest_event_times(engine: Engine) -> dict[str, datetime]:
    """When the newest payload of each source was received (stored or quarantined), in one query: a
    max per known source, each one index lookup (source, received_at) however large the archive."""
    newest = [
        select(literal(name).label("source"), func.max(raw_events.c.received_at).label("received_at")).where(
            raw_events.c.source == name
        )
        for name in (*SOURCES, "unknown")
    ]
    with reading(engine) as conn:
        rows = conn.execute(union_all(*newest)).all()
    return {source: received for source, received in rows if received is not None}


@translates_store_errors
def quarantine_groups(engine: Engine, limit: int = 50, examples: int = 3, head: int = 120) -> list[dict]:
    """Quarantined payloads grouped by (source, kind, reason), newest group first: each with its count,
    first and last arrival, and the ids and first `head` characters of its newest `examples` payloads."""
    r = raw_events
    quarantined = r.c.status == "quarantined"
    with reading(engine) as conn:
        groups = conn.execute(
            select(
                r.c.source,
                r.c.kind,
                r.c.error,
                func.count().label("count"),
                func.min(r.c.received_at).label("first_received_at"),
                func.max(r.c.received_at).label("last_received_at"),
                func.max(r.c.id).label("newest_id"),
            )
            .where(quarantined)
            .group_by(r.c.source, r.c.kind, r.c.error)
            .order_by(func.max(r.c.id).desc())
            .limit(limit)
        ).mappings()
        out = [dict(group) for group in groups]
        sample = (
            select(r.c.id, func.substr(r.c.payload, 1, payload_text.archive_head_chars(head)).label("head"))
            .where(quarantined, r.c.source == bindparam("source"), r.c.kind == bindparam("kind"))
            .order_by(r.c.id.desc())
            .limit(examples)
        )
        for group in out:
            same_reason = r.c.error.is_(None) if group["error"] is None else r.c.error == group["error"]
            rows = conn.execute(sample.where(same_reason), {"source": group["source"], "kind": group["kind"]})
            group["examples"] = [{"id": row.id, "head": payload_text.readable_head(row.head, head)} for row in rows]
        return out


@translates_store_errors
def list_quarantined(engine: Engine, limit: int = 50) -> list[dict]:
    """The newest quarantined payloads: id, source, kind, received_at and the reason (error)."""
    r = raw_events
    with reading(engine) as conn:
        rows = conn.execute(
            select(r.c.id, r.c.source, r.c.kind, r.c.received_at, r.c.error)
            .where(r.c.status == "quarantined")
            .order_by(r.c.id.desc())
            .limit(limit)
        ).mappings()
        return [dict(row) for row in rows]


@translates_store_errors
def production_stage_warnings(engine: Engine, config: Config, pipelines: Iterable[str] | None = None) -> list[str]:
    """One line per CodePipeline pipeline (of `pipelines`, else all) whose stages were seen and none is
    production by the configuration, so it silently counts no deployments: what to set."""
    r, s = pipeline_runs, stage_runs
    query = (
        select(r.c.pipeline, s.c.name)
        .distinct()
        .join(s, s.c.pipeline_run_id == r.c.id)
        .where(r.c.source == "codepipeline", r.c.pipeline.is_not(None))
        .order_by(r.c.pipeline, s.c.name)
    )
    wanted = None if pipelines is None else sorted(set(pipelines))
    if wanted is not None:
        if not wanted:
            return []
        query = query.where(r.c.pipeline.in_(wanted))
    stages: dict[str, list[str]] = {}
    with reading(engine) as conn:
        for pipeline, stage in conn.execute(query):
            stages.setdefault(pipeline, []).append(stage)
    warnings = []
    for pipeline, names in stages.items():
        if any(config.is_production_stage(pipeline, name) for name in names):
            continue
        configured = config.production.stages.get(pipeline)
        rule = (
            f"its configured production stage {configured!r} (production.stages) is not one of them"
            if configured
            else f"none matches the production pattern {config.production.stage_pattern!r}"
        )
        warnings.append(
            f"pipeline {pipeline}: stages {', '.join(names)}; {rule}, so it counts no deployments: set "
            f"production.stages.{pipeline} in gatewatch.yaml to its production stage"
        )
    return warnings
