"""Loaders: exactly the rows an analysis needs, filtered and pre-aggregated in SQL, as DataFrames.

Timestamps are read as the driver returns them and converted to UTC in one vectorised step, which
keeps large reads fast on SQLite (text) and PostgreSQL (timestamptz) alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import (Connection, Engine, String, and_, func, or_, select, true, type_coerce,
                        union, union_all)
from sqlalchemy.sql import ColumnElement, Select

from analysis.dora import DEFAULT_LINK_WINDOW, DoraFrames
from analysis.pipelines import PipelineFrames

from .models import action_runs, changes, deployment_changes, deployments, incidents, pipeline_runs, stage_runs

DORA_STATUSES = ("success", "rolled_back")


@dataclass(frozen=True)
class Scope:
    """Which deployments a report covers: production (or one named environment), a service, a team."""

    service: str | None = None
    team: str | None = None
    environment: str | None = None  # None: every deployment flagged production

    def conditions(self, table=deployments) -> list[ColumnElement[bool]]:
        conds = []
        if self.environment:
            conds.append(func.lower(table.c.environment) == self.environment.lower())
        else:
            conds.append(table.c.production == true())
        if self.service:
            conds.append(table.c.service == self.service)
        if self.team:
            conds.append(table.c.team == self.team)
        return conds


def _raw(column, name: str | None = None):
    """A timestamp column without per-row type processing (converted later, vectorised)."""
    return type_coerce(column, String).label(name or column.name)


def read_frame(conn: Connection, stmt: Select) -> pd.DataFrame:
    """Run a select and return a DataFrame; columns named *_at become UTC timestamps."""
    result = conn.execute(stmt)
    columns = list(result.keys())
    # from_records on plain tuples is an order of magnitude faster than on Row objects.
    frame = pd.DataFrame.from_records([tuple(row) for row in result], columns=columns)
    for col in frame.columns:
        if col.endswith("_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    return frame


def _deployment_columns():
    d = deployments
    return [d.c.id, d.c.service, d.c.team, _raw(d.c.finished_at), d.c.status, d.c.rollback_of,
            d.c.is_rollback, d.c.hotfix]


def load_dora_frames(engine: Engine, start: datetime, end: datetime, scope: Scope = Scope(),
                     link_window: timedelta = DEFAULT_LINK_WINDOW) -> DoraFrames:
    """The frames `analysis.dora.report` needs for [start, end) in `scope` (see DoraFrames)."""
    d = deployments
    base = and_(d.c.status.in_(DORA_STATUSES), *scope.conditions())
    in_window = and_(base, d.c.finished_at >= start, d.c.finished_at < end)
    window_ids = select(d.c.id).where(in_window)

    context = select(*_deployment_columns()).where(base, d.c.finished_at >= start - link_window,
                                                   d.c.finished_at < end)
    later_rollbacks = select(*_deployment_columns()).where(base, d.c.finished_at >= end,
                                                           d.c.rollback_of.in_(window_ids))
    first_after = (select(d.c.service, func.min(d.c.finished_at).label("first_at"))
                   .where(base, d.c.finished_at >= end).group_by(d.c.service).subquery())
    next_deployments = (select(*_deployment_columns())
                        .join(first_after, and_(d.c.service == first_after.c.service,
                                                d.c.finished_at == first_after.c.first_at))
                        .where(base))

    dc, c = deployment_changes, changes
    # Each change of the window's deployments, with its first deployment in the window. A deployment
    # contains its linked commits and the commits pushed with a linked head.
    wd = select(d.c.id, d.c.finished_at).where(in_window).subquery("wd")
    links = union_all(
        select(dc.c.change_id, wd.c.finished_at).join(wd, wd.c.id == dc.c.deployment_id),
        select(c.c.id.label("change_id"), wd.c.finished_at).select_from(dc)
        .join(wd, wd.c.id == dc.c.deployment_id).join(c, c.c.pushed_head == dc.c.change_id),
    ).subquery("links")
    in_window_changes = (
        select(c.c.id.label("change_id"), _raw(func.coalesce(c.c.committed_at, c.c.merged_at), "committed_at"),
               _raw(func.min(links.c.finished_at), "first_deployed_at"))
        .join(links, links.c.change_id == c.c.id).group_by(c.c.id, c.c.committed_at, c.c.merged_at))
    # Only a change committed before the window can have been deployed before it: look those up.
    early = (select(c.c.id).join(links, links.c.change_id == c.c.id)
             .where(or_(func.coalesce(c.c.committed_at, c.c.merged_at) < start,
                        func.coalesce(c.c.committed_at, c.c.merged_at).is_(None))).subquery("early"))
    probes = union(
        select(early.c.id.label("change_id"), early.c.id.label("link")),
        select(c.c.id.label("change_id"), c.c.pushed_head.label("link"))
        .where(c.c.id.in_(select(early.c.id)), c.c.pushed_head.is_not(None)),
    ).subquery("probes")
    earlier = (select(probes.c.change_id, _raw(func.min(d.c.finished_at), "earlier_at"))
               .join(dc, dc.c.change_id == probes.c.link).join(d, d.c.id == dc.c.deployment_id)
               .where(base, d.c.finished_at < start).group_by(probes.c.change_id))

    i = incidents
    context_ids = select(d.c.id).where(base, d.c.finished_at >= start - link_window, d.c.finished_at < end)
    incident_scope = [i.c.service == scope.service] if scope.service else []
    if scope.team:
        incident_scope.append(i.c.service.in_(_team_services(scope.team)))
    incident_rows = select(i.c.id, i.c.service, _raw(i.c.opened_at), _raw(i.c.resolved_at), i.c.deployment_id).where(
        or_(and_(i.c.opened_at >= start - link_window, i.c.opened_at < end + link_window, *incident_scope),
            i.c.deployment_id.in_(context_ids)))
    commit_links = select(dc.c.deployment_id, dc.c.change_id).where(
        dc.c.change_id.in_(select(i.c.deployment_id).where(
            i.c.deployment_id.is_not(None), i.c.opened_at >= start - link_window,
            i.c.opened_at < end + link_window, *incident_scope)))

    with engine.connect() as conn:
        parts = [read_frame(conn, q) for q in (context, later_rollbacks, next_deployments)]
        deps = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
        deps = deps.drop_duplicates("id").reset_index(drop=True)
        window_changes = read_frame(conn, in_window_changes)
        before = read_frame(conn, earlier).set_index("change_id")["earlier_at"]
        if not before.empty:
            earlier_at = window_changes["change_id"].map(before)
            window_changes["first_deployed_at"] = window_changes["first_deployed_at"].where(
                earlier_at.isna() | (earlier_at > window_changes["first_deployed_at"]), earlier_at)
        return DoraFrames(deployments=deps, changes=window_changes,
                          incidents=read_frame(conn, incident_rows), commit_links=read_frame(conn, commit_links))


def _contained():
    """(deployment_id, change_id): linked commits, and the commits pushed with a linked head."""
    dc, c = deployment_changes, changes
    return union(
        select(dc.c.deployment_id, dc.c.change_id),
        select(dc.c.deployment_id, c.c.id.label("change_id")).join(c, c.c.pushed_head == dc.c.change_id),
    ).subquery("contained")


def _team_services(team: str):
    return select(deployments.c.service).where(deployments.c.team == team).distinct()


def load_pipeline_frames(engine: Engine, start: datetime, end: datetime, scope: Scope = Scope()) -> PipelineFrames:
    """The frames `analysis.pipelines.report` needs for [start, end): every environment unless
    `scope.environment` names one."""
    r, s, a, d = pipeline_runs, stage_runs, action_runs, deployments
    run_filter = [or_(and_(r.c.started_at >= start, r.c.started_at < end),
                      and_(r.c.finished_at >= start, r.c.finished_at < end))]
    if scope.service:
        run_filter.append(r.c.service == scope.service)
    if scope.team:
        run_filter.append(r.c.service.in_(_team_services(scope.team)))
    run_ids = select(r.c.id).where(*run_filter)
    runs = select(r.c.id, r.c.pipeline, r.c.service, r.c.revision, r.c.status, _raw(r.c.queued_at),
                  _raw(r.c.started_at), _raw(r.c.finished_at)).where(*run_filter)
    stages = select(s.c.id, s.c.pipeline_run_id, s.c.name, s.c.category, s.c.status, _raw(s.c.started_at),
                    _raw(s.c.finished_at), s.c.failed_once).where(s.c.pipeline_run_id.in_(run_ids))
    actions = select(a.c.id, a.c.pipeline_run_id, a.c.stage_run_id, a.c.name, a.c.category, a.c.status,
                     _raw(a.c.started_at), _raw(a.c.finished_at)).where(a.c.pipeline_run_id.in_(run_ids))

    dep_filter = [d.c.finished_at >= start, d.c.finished_at < end]
    if scope.environment:
        dep_filter.append(func.lower(d.c.environment) == scope.environment.lower())
    if scope.service:
        dep_filter.append(d.c.service == scope.service)
    if scope.team:
        dep_filter.append(d.c.team == scope.team)
    contained = _contained()
    first_commit = (select(contained.c.deployment_id, func.min(changes.c.committed_at).label("first_at"))
                    .join(changes, changes.c.id == contained.c.change_id)
                    .group_by(contained.c.deployment_id).subquery())
    target = d.alias("target")
    deps = (select(d.c.id, d.c.service, d.c.environment, d.c.production, d.c.status, _raw(d.c.finished_at),
                   d.c.rollback_of, _raw(first_commit.c.first_at, "first_committed_at"),
                   _raw(target.c.finished_at, "rollback_target_finished_at"))
            .outerjoin(first_commit, first_commit.c.deployment_id == d.c.id)
            .outerjoin(target, target.c.id == d.c.rollback_of)
            .where(*dep_filter))
    with engine.connect() as conn:
        return PipelineFrames(runs=read_frame(conn, runs), stages=read_frame(conn, stages),
                              actions=read_frame(conn, actions), deployments=read_frame(conn, deps))


__all__ = ["Scope", "load_dora_frames", "load_pipeline_frames", "read_frame", "DORA_STATUSES"]
