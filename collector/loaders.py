"""Loaders: exactly the rows an analysis needs, filtered and pre-aggregated in SQL, as DataFrames.

Timestamps are read as the driver returns them and converted to UTC in one vectorised step, which
keeps large reads fast on SQLite (text) and PostgreSQL (timestamptz) alike. The largest read, each
window deployment's changes, comes packed as one JSON value per deployment and is unpacked by Arrow:
a driver's cost is per row, and a deployment holds several changes.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from sqlalchemy import (Connection, Engine, String, and_, case, func, or_, select, true)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.functions import FunctionElement

from analysis.dora import DEFAULT_LINK_WINDOW, DoraFrames
from analysis.pipelines import PipelineFrames

from .models import (action_runs, deployment_changes, deployment_contents, deployments, incidents,
                     pipeline_runs, stage_runs)

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


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A connection for a loader's reads. On PostgreSQL its transaction runs without JIT
    compilation: the loaders' index-driven queries have large cost estimates, so PostgreSQL would
    spend 0.2-0.4 s compiling each one for no gain."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql" and (conn.dialect.server_version_info or (0,)) >= (11,):
            conn.exec_driver_sql("SET LOCAL jit = off")  # (PostgreSQL 11 brought JIT)
        yield conn


class _stored_time(FunctionElement):
    """A timestamp as the store can hand it over cheapest, for one vectorised conversion: SQLite's
    text as stored; on PostgreSQL integer microseconds since the epoch (exact), where the driver
    would otherwise build a timezone-aware datetime object per value."""

    type = String()
    inherit_cache = True


@compiles(_stored_time)
def _stored_time_as_is(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(_stored_time, "postgresql")
def _stored_time_postgresql(element, compiler, **kw):
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"


def _raw(column, name: str | None = None):
    """A timestamp column without per-row type processing (converted later, vectorised)."""
    return _stored_time(column).label(name or column.name)


def read_frame(conn: Connection, stmt: Select, raw: bool = False, objects: tuple[str, ...] = ()) -> pd.DataFrame:
    """Run a select and return a DataFrame; columns named *_at become UTC timestamps. `raw` reads the
    driver's rows in one call and applies the columns' result processors (e.g. SQLite's 0/1 to bool)
    itself, which skips building a Row per row: for large selects. With `raw`, the columns named in
    `objects` keep the driver's values as they are (no copy into a string column)."""
    result = conn.execute(stmt)
    columns = list(result.keys())
    if raw:
        rows = result.cursor.fetchall() if result.cursor is not None else []
        result.close()
        values = np.empty((len(rows), len(columns)), dtype=object)
        if rows:
            values[:] = rows
        data = {}
        for k, (name, column) in enumerate(zip(columns, stmt.selected_columns)):
            col = values[:, k]
            process = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
            if name in objects:
                col = pd.Series(col, dtype=object)
            elif name.endswith("_at"):  # parsed from the driver's objects (not via a string column)
                col = _utc_timestamps(pd.Series(col, dtype=object))
            elif process is not None and len(col):
                col = [process(v) for v in col]
            elif len(col) and not isinstance(next((v for v in col if v is not None), ""), str):
                col = col.tolist()  # lists are typed as from_records types them (bool, int, float)
            data[name] = col
        return pd.DataFrame(data, columns=columns)
    # from_records on plain tuples is an order of magnitude faster than on Row objects.
    frame = pd.DataFrame.from_records([tuple(row) for row in result], columns=columns)
    for col in frame.columns:
        if col.endswith("_at"):
            frame[col] = _utc_timestamps(frame[col])
    return frame


def _utc_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps from what the driver returned: PostgreSQL's epoch microseconds (`_raw`) and
    SQLite's text ('YYYY-MM-DD HH:MM:SS.ffffff', UTC) are converted by numpy, several times faster
    than pandas' ISO 8601 parser; anything else (a datetime, text with an offset) by pandas."""
    sample = values.dropna()
    first = sample.iloc[0] if len(sample) else None
    if isinstance(first, (int, float, np.integer, np.floating)) and not isinstance(first, (bool, np.bool_)):
        # PostgreSQL's integer microseconds (floats when NULLs are present: exact below 2**53).
        missing = values.isna().to_numpy()
        stamps = values.where(~missing, 0).to_numpy().astype(np.int64).astype("datetime64[us]")
        stamps[missing] = np.datetime64("NaT")
        return pd.Series(stamps, index=values.index, name=values.name).dt.tz_localize("UTC")
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        if isinstance(first, str):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # numpy warns about (and shifts) offsets: leave those to pandas
                    parsed = np.array(values.to_numpy(dtype=object, na_value=None), dtype="datetime64[us]")
                return pd.Series(parsed, index=values.index, name=values.name).dt.tz_localize("UTC")
            except (ValueError, TypeError, Warning):
                pass
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _deployment_columns():
    d = deployments
    return [d.c.id, d.c.service, d.c.team, _raw(d.c.finished_at), d.c.status, d.c.rollback_of,
            d.c.is_rollback, d.c.hotfix]


def _earlier_deployment(base_on, start: datetime, change_id):
    """The first in-scope deployment before `start` that holds a change: a correlated scalar subquery
    over the deployments that hold it, each looked up by id. (Written as a join, SQLite without
    statistics drove it from a team's deployments, probing each for the change: 85 s for a team's
    90 days on the 1M-deployment benchmark store instead of a second.)"""
    d, x = deployments.alias("d_before"), deployment_contents.alias("x_before")
    finished = (select(d.c.finished_at).where(d.c.id == x.c.deployment_id, *base_on(d), d.c.finished_at < start)
                .correlate(x).scalar_subquery())
    return select(func.min(finished)).where(x.c.change_id == change_id).scalar_subquery()


def _first_per_change(links: pd.DataFrame) -> pd.DataFrame:
    """One row per change: its earliest `first_deployed_at` of the link rows."""
    if links["change_id"].is_unique:  # the common case, and several times cheaper
        return links
    codes, _ = pd.factorize(links["change_id"].to_numpy(dtype=object))
    first = links.groupby(codes, sort=False)["first_deployed_at"].min()
    out = links.loc[~pd.Series(codes).duplicated().to_numpy(), ["change_id", "committed_at"]].reset_index(drop=True)
    out["first_deployed_at"] = first.to_numpy()
    return out


def use_system_allocator() -> None:
    """Make Arrow allocate through the system allocator in this process: for the applications (the
    dashboard, the CLI), not for a library user's process. With Arrow's default (mimalloc) the
    dashboard's first render of the 1M-deployment benchmark store was 1-1.5 s slower."""
    pa.set_memory_pool(pa.system_memory_pool())


class _json_lists(FunctionElement):
    """One JSON object of arrays, one array per column of a subquery (`{"i": [...], "t": [...]}`), as
    text: a deployment's changes in a single value, so a large read hands the driver one row per
    deployment instead of one per change (the per-row cost dominates such reads)."""

    type = String()
    inherit_cache = True


@compiles(_json_lists)
def _json_lists_sqlite(element, compiler, **kw):
    parts = ", ".join(f"'{c.name}', json_group_array({compiler.process(c, **kw)})" for c in element.clauses)
    return f"json_object({parts})"


@compiles(_json_lists, "postgresql")
def _json_lists_postgresql(element, compiler, **kw):
    parts = ", ".join(f"'{c.name}', json_agg({compiler.process(c, **kw)})" for c in element.clauses)
    return f"CAST(json_build_object({parts}) AS TEXT)"


def _unpack_changes(packed: pd.Series, finished_at: pd.Series, dialect: str) -> pd.DataFrame:
    """The (change_id, committed_at, first_deployed_at) rows of the window deployments' packed
    changes (`_json_lists` of i: change id, t: commit time, e: an earlier first deployment or null;
    without one, the change was first deployed by the deployment that holds it). Times are stored
    times (`_stored_time`): SQLite's text, PostgreSQL's epoch microseconds."""
    stored = pa.int64() if dialect == "postgresql" else pa.string()
    schema = pa.schema([("i", pa.list_(pa.string())), ("t", pa.list_(stored)), ("e", pa.list_(stored))])
    lines = [text if text is not None else "{}" for text in packed.to_numpy(dtype=object)]
    table = schema.empty_table()
    if lines:
        table = pa_json.read_json(io.BytesIO("\n".join(lines).encode()),
                                  parse_options=pa_json.ParseOptions(explicit_schema=schema))
    counts = pc.fill_null(pc.list_value_length(table["i"]), 0).to_numpy()
    # A deployment's own finish repeated over its changes, where no earlier deployment holds one.
    own = pd.Series(np.repeat(finished_at.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), counts))
    own = own.dt.tz_localize("UTC")
    earlier = _arrow_utc(pc.list_flatten(table["e"]))
    return pd.DataFrame({"change_id": pd.Series(pc.list_flatten(table["i"]).to_pandas(), dtype="str"),
                         "committed_at": _arrow_utc(pc.list_flatten(table["t"])),
                         "first_deployed_at": earlier.where(earlier.notna(), own)})


def _arrow_utc(values: pa.ChunkedArray) -> pd.Series:
    """UTC timestamps from stored times in Arrow: epoch microseconds, or SQLite's text."""
    try:
        values = values.cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. text with an offset
        return _utc_timestamps(pd.Series(values.to_pylist(), dtype=object))
    return pd.Series(values.to_numpy(), dtype="datetime64[us]").dt.tz_localize("UTC")


def load_dora_frames(engine: Engine, start: datetime, end: datetime, scope: Scope = Scope(),
                     link_window: timedelta = DEFAULT_LINK_WINDOW) -> DoraFrames:
    """The frames `analysis.dora.report` needs for [start, end) in `scope` (see DoraFrames)."""
    d = deployments

    def base_on(table) -> list[ColumnElement[bool]]:
        return [table.c.status.in_(DORA_STATUSES), *scope.conditions(table)]

    base = and_(*base_on(d))
    in_window = and_(base, d.c.finished_at >= start, d.c.finished_at < end)
    window_ids = select(d.c.id).where(in_window)

    context = select(*_deployment_columns()).where(base, d.c.finished_at >= start - link_window,
                                                   d.c.finished_at < start)
    later_rollbacks = select(*_deployment_columns()).where(base, d.c.finished_at >= end,
                                                           d.c.rollback_of.in_(window_ids))
    # Each service's first deployment after the window: one index seek per service.
    after, listed = d.alias("after"), d.alias("listed")
    services = _distinct_values(listed.c.service).subquery("services")
    first_after = (select(services.c.value.label("service"), select(func.min(after.c.finished_at))
                          .where(after.c.service == services.c.value, *base_on(after), after.c.finished_at >= end)
                          .scalar_subquery().label("first_at"))
                   .where(services.c.value.is_not(None)).subquery("first_after"))
    next_deployments = (select(*_deployment_columns())
                        .join(first_after, and_(d.c.service == first_after.c.service,
                                                d.c.finished_at == first_after.c.first_at))
                        .where(base))

    x, dc = deployment_contents, deployment_changes
    # Each window deployment with its changes packed in one value (from `deployment_contents`: the
    # linked commits and the commits pushed with a linked head), each with its commit time and, for a
    # change committed before the window (only those can have been deployed earlier), the first
    # deployment before the window that holds it. A change in several of the window's deployments is
    # reduced to its first below. (A NULL commit time is not >= start: it is looked up like an early one.)
    earlier = case((x.c.committed_at >= start, None), else_=_earlier_deployment(base_on, start, x.c.change_id))
    links = (select(x.c.change_id.label("i"), _stored_time(x.c.committed_at).label("t"),
                    _stored_time(earlier).label("e"))
             .where(x.c.deployment_id == d.c.id).correlate(d).subquery("links"))
    packed = select(_json_lists(links.c.i, links.c.t, links.c.e)).scalar_subquery().label("packed_changes")
    window_deployments = select(*_deployment_columns(), packed).where(in_window)

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

    with _reading(engine) as conn:
        in_window_rows = read_frame(conn, window_deployments, raw=True, objects=("packed_changes",))
        window_changes = _first_per_change(_unpack_changes(in_window_rows.pop("packed_changes"),
                                                           in_window_rows["finished_at"], conn.dialect.name))
        parts = [in_window_rows] + [read_frame(conn, q, raw=True) for q in (context, later_rollbacks, next_deployments)]
        deps = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
        deps = deps.drop_duplicates("id").reset_index(drop=True)
        return DoraFrames(deployments=deps, changes=window_changes,
                          incidents=read_frame(conn, incident_rows, raw=True),
                          commit_links=read_frame(conn, commit_links, raw=True))


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
    x = deployment_contents
    first_commit = (select(func.min(x.c.committed_at)).where(x.c.deployment_id == d.c.id).correlate(d)
                    .scalar_subquery())
    target = d.alias("target")
    deps = (select(d.c.id, d.c.service, d.c.environment, d.c.production, d.c.status, _raw(d.c.finished_at),
                   d.c.rollback_of, _stored_time(first_commit).label("first_committed_at"),
                   _raw(target.c.finished_at, "rollback_target_finished_at"))
            .outerjoin(target, target.c.id == d.c.rollback_of)
            .where(*dep_filter))
    with _reading(engine) as conn:
        return PipelineFrames(runs=read_frame(conn, runs), stages=read_frame(conn, stages),
                              actions=read_frame(conn, actions), deployments=read_frame(conn, deps))


# --- read-only queries for the dashboard ----------------------------------------------------------

ACTIVE_RUN = ("queued", "in_progress")
ACTIVE_DEPLOYMENT = ("pending", "in_progress")


def _run_scope(scope: Scope, table=pipeline_runs) -> list[ColumnElement[bool]]:
    conds = []
    if scope.service:
        conds.append(table.c.service == scope.service)
    if scope.team:
        conds.append(table.c.service.in_(_team_services(scope.team)))
    return conds


def _named_scope(table, scope: Scope) -> list[ColumnElement[bool]]:
    """Service and team conditions for a table with a `service` column but no team."""
    return _run_scope(scope, table)


def load_store_counts(engine: Engine) -> dict[str, int]:
    """Rows per table a dashboard page reads (to tell an empty store from an empty filter)."""
    from .models import canary_runs, gate_decisions, raw_events

    tables = {"raw_events": raw_events, "deployments": deployments, "pipeline_runs": pipeline_runs,
              "incidents": incidents, "canary_runs": canary_runs, "gate_decisions": gate_decisions}
    with _reading(engine) as conn:
        return {name: conn.execute(select(func.count()).select_from(t)).scalar_one() for name, t in tables.items()}


def _distinct_values(column) -> Select:
    """The distinct non-NULL values of an indexed column (as `value`) by a loose index scan: one
    index seek per value (a recursive query), where DISTINCT reads every row of a million-row table."""
    seen = select(func.min(column).label("value")).cte(f"seen_{column.table.name}_{column.name}", recursive=True)
    following = select(func.min(column)).where(column > seen.c.value)
    seen = seen.union_all(select(following.scalar_subquery()).where(seen.c.value.is_not(None)))
    return select(seen.c.value).where(seen.c.value.is_not(None))


def _distinct(conn: Connection, column) -> list:
    """The distinct non-NULL values of an indexed column (`_distinct_values`)."""
    return conn.execute(_distinct_values(column)).scalars().all()


def load_filter_options(engine: Engine) -> dict[str, list[str]]:
    """The services, teams and environments in the store, sorted (the dashboard's filter choices)."""
    d, r = deployments, pipeline_runs
    with _reading(engine) as conn:
        services = set(_distinct(conn, d.c.service)) | set(_distinct(conn, r.c.service))
        teams, envs = _distinct(conn, d.c.team), _distinct(conn, d.c.environment)
    return {"services": sorted(services), "teams": sorted(teams), "environments": sorted(envs)}


def load_open_work(engine: Engine, since: datetime, scope: Scope = Scope()) -> dict[str, pd.DataFrame]:
    """What needs a person now: active and recently failed runs (with finished durations of their
    pipelines since `since`, for a typical-duration baseline), deployments in progress, recent
    rollbacks and open incidents with their linked deployment."""
    r, d, i = pipeline_runs, deployments, incidents
    run_cols = [r.c.id, r.c.pipeline, r.c.service, r.c.revision, r.c.status, r.c.url, _raw(r.c.queued_at),
                _raw(r.c.started_at), _raw(r.c.finished_at)]
    active_runs = select(*run_cols).where(r.c.status.in_(ACTIVE_RUN), *_run_scope(scope))
    failed_runs = (select(*run_cols).where(r.c.status == "failed", r.c.finished_at >= since, *_run_scope(scope))
                   .order_by(r.c.finished_at.desc()))
    finished_runs = select(r.c.pipeline, r.c.service, _raw(r.c.started_at), _raw(r.c.finished_at)).where(
        r.c.status.in_(("succeeded", "failed")), r.c.finished_at >= since, r.c.started_at.is_not(None),
        *_run_scope(scope))
    dep_cols = [d.c.id, d.c.service, d.c.team, d.c.environment, d.c.status, d.c.version, d.c.url,
                _raw(d.c.started_at), _raw(d.c.finished_at), d.c.rollback_of, d.c.is_rollback]
    active_deps = select(*dep_cols).where(d.c.status.in_(ACTIVE_DEPLOYMENT), *scope.conditions())
    rollbacks = (select(*dep_cols).where(
        or_(d.c.is_rollback == true(), d.c.rollback_of.is_not(None), d.c.status == "rolled_back"),
        d.c.finished_at >= since, *scope.conditions()).order_by(d.c.finished_at.desc()))
    linked = d.alias("linked")
    open_incidents = (select(i.c.id, i.c.service, i.c.title, i.c.severity, i.c.status, i.c.url, _raw(i.c.opened_at),
                             _raw(i.c.acknowledged_at), i.c.deployment_id, linked.c.status.label("deployment_status"),
                             _raw(linked.c.finished_at, "deployment_finished_at"))
                      .outerjoin(linked, linked.c.id == i.c.deployment_id)
                      .where(i.c.resolved_at.is_(None), *_named_scope(i, scope)).order_by(i.c.opened_at.desc()))
    with _reading(engine) as conn:
        return {"active_runs": read_frame(conn, active_runs), "failed_runs": read_frame(conn, failed_runs),
                "finished_runs": read_frame(conn, finished_runs), "active_deployments": read_frame(conn, active_deps),
                "rollbacks": read_frame(conn, rollbacks), "open_incidents": read_frame(conn, open_incidents)}


def load_run_detail(engine: Engine, run_id: str) -> dict[str, pd.DataFrame]:
    """One pipeline run's stages and actions, in start order (a drill-down)."""
    s, a = stage_runs, action_runs
    stages = (select(s.c.id, s.c.name, s.c.category, s.c.status, s.c.attempt, s.c.failed_once, _raw(s.c.started_at),
                     _raw(s.c.finished_at)).where(s.c.pipeline_run_id == run_id).order_by(s.c.started_at, s.c.name))
    actions = (select(a.c.id, a.c.stage_run_id, a.c.name, a.c.category, a.c.provider, a.c.status, a.c.url,
                      _raw(a.c.started_at), _raw(a.c.finished_at))
               .where(a.c.pipeline_run_id == run_id).order_by(a.c.started_at, a.c.name))
    with _reading(engine) as conn:
        return {"stages": read_frame(conn, stages), "actions": read_frame(conn, actions)}


def load_canary_runs(engine: Engine, start: datetime, end: datetime, scope: Scope = Scope(),
                     limit: int = 200) -> pd.DataFrame:
    """Canary runs created in [start, end), newest first, with their deployment's service. With a
    service or team in `scope`, only runs of that service's deployments."""
    from .models import canary_runs as c

    d = deployments
    query = (select(c.c.id, _raw(c.c.created_at), c.c.verdict, c.c.score, c.c.source, c.c.deployment_id,
                    d.c.service, _raw(c.c.window_start), _raw(c.c.window_end), c.c.baseline_scope, c.c.canary_scope)
             .outerjoin(d, d.c.id == c.c.deployment_id)
             .where(c.c.created_at >= start, c.c.created_at < end, *_named_scope(d, scope))
             .order_by(c.c.created_at.desc()).limit(limit))
    with _reading(engine) as conn:
        return read_frame(conn, query)


def load_gate_decisions(engine: Engine, start: datetime, end: datetime, scope: Scope = Scope(),
                        limit: int = 500) -> pd.DataFrame:
    """Gate decisions made in [start, end) for the scope's services, newest first (checks, reasons,
    actions and evidence as stored JSON text)."""
    from .models import gate_decisions as g

    query = (select(g.c.id, g.c.key, g.c.attempt, g.c.gate, g.c.decision, _raw(g.c.created_at), g.c.deployment_id,
                    g.c.service, g.c.checks, g.c.reasons, g.c.actions, g.c.evidence)
             .where(g.c.created_at >= start, g.c.created_at < end, *_named_scope(g, scope))
             .order_by(g.c.created_at.desc(), g.c.attempt.desc()).limit(limit))
    with _reading(engine) as conn:
        return read_frame(conn, query)


__all__ = ["Scope", "load_dora_frames", "load_pipeline_frames", "read_frame", "DORA_STATUSES",
           "load_store_counts", "load_filter_options", "load_open_work", "load_run_detail", "load_canary_runs",
           "load_gate_decisions", "use_system_allocator"]
