"""What the On-call page reads beyond `load_open_work`: the stages of given pipeline runs, the manual
approvals waiting, and the deployments open incidents may link to by the DORA link rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pandas as pd
from sqlalchemy import Engine, and_, false, or_, select

from .db import translates_store_errors
from .listings import ACTIVE_RUN
from .loaders import Scope, counted_by_dora, raw_time, read_frame, reading, service_scope
from .models import action_runs, deployment_changes, deployments, pipeline_runs, stage_runs

__all__ = ["load_incident_links", "load_pending_approvals", "load_run_stages"]


@translates_store_errors
def load_run_stages(engine: Engine, run_ids: Sequence[str]) -> pd.DataFrame:
    """The stages of the runs `run_ids` (pipeline_run_id, name, category, status, started_at, finished_at)."""
    s = stage_runs
    query = select(
        s.c.pipeline_run_id, s.c.name, s.c.category, s.c.status, raw_time(s.c.started_at), raw_time(s.c.finished_at)
    ).where(s.c.pipeline_run_id.in_(list(run_ids)))
    with reading(engine) as conn:
        return read_frame(conn, query)


@translates_store_errors
def load_pending_approvals(engine: Engine, scope: Scope = Scope()) -> pd.DataFrame:
    """Manual approval actions in progress in running executions of the scope's services, with their
    execution's service, pipeline and revision and their stage's name."""
    a, r, s = action_runs, pipeline_runs, stage_runs
    query = (
        select(
            a.c.id,
            r.c.service,
            r.c.pipeline,
            s.c.name.label("stage"),
            a.c.name.label("action"),
            a.c.provider,
            raw_time(a.c.started_at),
            r.c.revision,
            a.c.url,
            r.c.id.label("run_id"),
        )
        .join(r, r.c.id == a.c.pipeline_run_id)
        .outerjoin(s, s.c.id == a.c.stage_run_id)
        .where(
            a.c.category == "approval",
            a.c.status == "in_progress",
            r.c.status.in_(ACTIVE_RUN),
            *service_scope(r.c.service, scope),
        )
    )
    with reading(engine) as conn:
        return read_frame(conn, query)


@translates_store_errors
def load_incident_links(
    engine: Engine, open_incidents: pd.DataFrame, scope: Scope, link_window: timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What `analysis.dora.link_incidents` needs for `open_incidents` (id, service, opened_at,
    deployment_id): the deployments the DORA keys count in `scope` that they name, that hold a commit
    they name, or of their services finished from `link_window` before the first opened until the last
    opened; and the (deployment_id, change_id) rows of the commits they name."""
    d, dc = deployments, deployment_changes
    columns = [d.c.id, d.c.service, d.c.status, raw_time(d.c.finished_at)]
    empty = (
        pd.DataFrame(columns=["id", "service", "status", "finished_at"]),
        pd.DataFrame(columns=["deployment_id", "change_id"]),
    )
    if open_incidents.empty:
        return empty
    named = sorted({str(v) for v in open_incidents["deployment_id"].dropna()})
    services = sorted({str(v) for v in open_incidents["service"].dropna()})
    opened = pd.to_datetime(open_incidents["opened_at"], utc=True).dropna()
    commits = select(dc.c.deployment_id, dc.c.change_id).where(dc.c.change_id.in_(named))
    nearby = (
        and_(
            d.c.service.in_(services),
            d.c.finished_at >= opened.min().to_pydatetime() - link_window,
            d.c.finished_at < opened.max().to_pydatetime(),
        )
        if services and not opened.empty
        else false()
    )
    query = select(*columns).where(
        *counted_by_dora(d, scope),
        or_(d.c.id.in_(named), d.c.id.in_(select(dc.c.deployment_id).where(dc.c.change_id.in_(named))), nearby),
    )
    with reading(engine) as conn:
        return read_frame(conn, query), read_frame(conn, commits)
