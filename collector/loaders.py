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
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, CompoundSelect, Select
from sqlalchemy.sql.functions import FunctionElement

from analysis.dora import DEFAULT_LINK_WINDOW, DoraFrames
from analysis.pipelines import COMPLETED_DEPLOYMENT, PipelineFrames

from .db import translates_store_errors
from .models import (
    action_runs,
    alarms,
    canary_runs,
    changes,
    deployment_changes,
    deployment_contents,
    deployments,
    gate_decisions,
    incidents,
    pipeline_runs,
    stage_runs,
)
from .sources import codepipeline

DORA_STATUSES = ("success", "rolled_back")
CODEDEPLOY_PREFIX = "codedeploy:"
CODEBUILD_PREFIX = "codebuild:"


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
def reading(engine: Engine) -> Iterator[Connection]:
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


def raw_time(column, name: str | None = None):
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
        data: dict[str, Any] = {}
        for k, (name, column) in enumerate(zip(columns, stmt.selected_columns)):
            col: Any = values[:, k]
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
    """UTC timestamps from what the driver returned: PostgreSQL's epoch microseconds (`raw_time`) and
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
    if (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)) and isinstance(first, str):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy warns about (and shifts) offsets: leave those to pandas
                parsed = np.array(values.to_numpy(dtype=object, na_value=None), dtype="datetime64[us]")
            return pd.Series(parsed, index=values.index, name=values.name).dt.tz_localize("UTC")
        except (ValueError, TypeError, Warning):
            pass
    return pd.to_datetime(values, utc=True, format="ISO8601")


def counted_by_codepipeline(table, statuses: tuple[str, ...] | None = None) -> ColumnElement[bool]:
    """Whether a CodeDeploy deployment is part of a CodePipeline deployment (with a status in
    `statuses`, default any), which already counts it. Linked at read time, since either may arrive
    first: a CodeDeploy action of that execution has the deployment id as its external id; or, without
    that action, the CodePipeline deployment of the same service spans it (started no later, finished no
    earlier: the pipeline's stage runs the deployment)."""
    a, p = action_runs.alias("cd_action"), deployments.alias("cd_pipeline")
    status = [p.c.status.in_(statuses)] if statuses else []
    by_action = exists().where(
        a.c.external_id == func.substr(table.c.id, len(CODEDEPLOY_PREFIX) + 1),
        a.c.provider == "CodeDeploy",
        p.c.id == a.c.pipeline_run_id,
        *status,
    )
    by_span = exists().where(
        p.c.service == table.c.service,
        p.c.source == "codepipeline",
        p.c.started_at <= func.coalesce(table.c.started_at, table.c.finished_at),
        p.c.finished_at >= table.c.finished_at,
        *status,
    )
    return and_(table.c.source == "codedeploy", or_(by_action, by_span))


def counted_once(table, statuses: tuple[str, ...] | None = None) -> ColumnElement[bool]:
    """Every deployment but a CodeDeploy one that a CodePipeline deployment counts (`counted_by_codepipeline`)."""
    return or_(table.c.source != "codedeploy", ~counted_by_codepipeline(table, statuses))


def counted_by_dora(table, scope: Scope) -> list[ColumnElement[bool]]:
    """The deployments of `scope` the DORA keys count: finished (succeeded or rolled back), each once."""
    return [table.c.status.in_(DORA_STATUSES), *scope.conditions(table), counted_once(table, DORA_STATUSES)]


def _deployment_columns():
    d = deployments
    return [
        d.c.id,
        d.c.service,
        d.c.team,
        raw_time(d.c.finished_at),
        d.c.status,
        d.c.rollback_of,
        d.c.is_rollback,
        d.c.hotfix,
    ]


def _earlier_deployment(base_on, start: datetime, change_id):
    """The first in-scope deployment before `start` that holds a change: a correlated scalar subquery
    over the deployments that hold it, each looked up by id. (Written as a join, SQLite without
    statistics drove it from a team's deployments, probing each for the change: 85 s for a team's
    90 days on the 1M-deployment benchmark store instead of a second.)"""
    d, x = deployments.alias("d_before"), deployment_contents.alias("x_before")
    finished = (
        select(d.c.finished_at)
        .where(d.c.id == x.c.deployment_id, *base_on(d), d.c.finished_at < start)
        .correlate(x)
        .scalar_subquery()
    )
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
        table = pa_json.read_json(
            io.BytesIO("\n".join(lines).encode()), parse_options=pa_json.ParseOptions(explicit_schema=schema)
        )
    counts = pc.fill_null(pc.list_value_length(table["i"]), 0).to_numpy()
    # A deployment's own finish repeated over its changes, where no earlier deployment holds one.
    own = pd.Series(np.repeat(finished_at.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), counts))
    own = own.dt.tz_localize("UTC")
    earlier = _arrow_utc(pc.list_flatten(table["e"]))
    return pd.DataFrame(
        {
            "change_id": pd.Series(pc.list_flatten(table["i"]).to_pandas(), dtype="str"),
            "committed_at": _arrow_utc(pc.list_flatten(table["t"])),
            "first_deployed_at": earlier.where(earlier.notna(), own),
        }
    )


def _arrow_utc(values: pa.ChunkedArray) -> pd.Series:
    """UTC timestamps from stored times in Arrow: epoch microseconds, or SQLite's text."""
    try:
        values = values.cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. text with an offset
        return _utc_timestamps(pd.Series(values.to_pylist(), dtype=object))
    return pd.Series(values.to_numpy(), dtype="datetime64[us]").dt.tz_localize("UTC")


def distinct_values(column) -> Select:
    """The distinct non-NULL values of an indexed column (as `value`) by a loose index scan: one
    index seek per value (a recursive query), where DISTINCT reads every row of a million-row table."""
    seen = select(func.min(column).label("value")).cte(f"seen_{column.table.name}_{column.name}", recursive=True)
    following = select(func.min(column)).where(column > seen.c.value)
    seen = seen.union_all(select(following.scalar_subquery()).where(seen.c.value.is_not(None)))
    return select(seen.c.value).where(seen.c.value.is_not(None))


@translates_store_errors
def load_dora_frames(
    engine: Engine, start: datetime, end: datetime, scope: Scope = Scope(), link_window: timedelta = DEFAULT_LINK_WINDOW
) -> DoraFrames:
    """The frames `analysis.dora.report` needs for [start, end) in `scope` (see DoraFrames)."""
    d = deployments

    def base_on(table) -> list[ColumnElement[bool]]:
        return counted_by_dora(table, scope)

    base = and_(*base_on(d))
    in_window = and_(base, d.c.finished_at >= start, d.c.finished_at < end)
    window_ids = select(d.c.id).where(in_window)

    context = select(*_deployment_columns()).where(
        base, d.c.finished_at >= start - link_window, d.c.finished_at < start
    )
    later_rollbacks = select(*_deployment_columns()).where(
        base, d.c.finished_at >= end, d.c.rollback_of.in_(window_ids)
    )
    # Each service's first deployment after the window: one index seek per service.
    after, listed = d.alias("after"), d.alias("listed")
    services = distinct_values(listed.c.service).subquery("services")
    first_after = (
        select(
            services.c.value.label("service"),
            select(func.min(after.c.finished_at))
            .where(after.c.service == services.c.value, *base_on(after), after.c.finished_at >= end)
            .scalar_subquery()
            .label("first_at"),
        )
        .where(services.c.value.is_not(None))
        .subquery("first_after")
    )
    next_deployments = (
        select(*_deployment_columns())
        .join(first_after, and_(d.c.service == first_after.c.service, d.c.finished_at == first_after.c.first_at))
        .where(base)
    )

    x, dc = deployment_contents, deployment_changes
    # Each window deployment with its changes packed in one value (from `deployment_contents`: the
    # linked commits and the commits pushed with a linked head), each with its commit time and, for a
    # change committed before the window (only those can have been deployed earlier), the first
    # deployment before the window that holds it. A change in several of the window's deployments is
    # reduced to its first below. (A NULL commit time is not >= start: it is looked up like an early one.)
    earlier = case((x.c.committed_at >= start, None), else_=_earlier_deployment(base_on, start, x.c.change_id))
    links = (
        select(x.c.change_id.label("i"), _stored_time(x.c.committed_at).label("t"), _stored_time(earlier).label("e"))
        .where(x.c.deployment_id == d.c.id)
        .correlate(d)
        .subquery("links")
    )
    packed = select(_json_lists(links.c.i, links.c.t, links.c.e)).scalar_subquery().label("packed_changes")
    window_deployments = select(*_deployment_columns(), packed).where(in_window)

    i = incidents
    context_ids = select(d.c.id).where(base, d.c.finished_at >= start - link_window, d.c.finished_at < end)
    incident_scope = service_scope(i.c.service, scope)
    incident_rows = select(
        i.c.id, i.c.service, raw_time(i.c.opened_at), raw_time(i.c.resolved_at), i.c.deployment_id
    ).where(
        or_(
            and_(i.c.opened_at >= start - link_window, i.c.opened_at < end + link_window, *incident_scope),
            i.c.deployment_id.in_(context_ids),
        )
    )
    commit_links = select(dc.c.deployment_id, dc.c.change_id).where(
        dc.c.change_id.in_(
            select(i.c.deployment_id).where(
                i.c.deployment_id.is_not(None),
                i.c.opened_at >= start - link_window,
                i.c.opened_at < end + link_window,
                *incident_scope,
            )
        )
    )

    with reading(engine) as conn:
        in_window_rows = read_frame(conn, window_deployments, raw=True, objects=("packed_changes",))
        window_changes = _first_per_change(
            _unpack_changes(in_window_rows.pop("packed_changes"), in_window_rows["finished_at"], conn.dialect.name)
        )
        parts = [in_window_rows] + [read_frame(conn, q, raw=True) for q in (context, later_rollbacks, next_deployments)]
        deps = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
        deps = deps.drop_duplicates("id").reset_index(drop=True)
        return DoraFrames(
            deployments=deps,
            changes=window_changes,
            incidents=read_frame(conn, incident_rows, raw=True),
            commit_links=read_frame(conn, commit_links, raw=True),
        )


def part_of_codepipeline(table=pipeline_runs) -> ColumnElement[bool]:
    """A CodeBuild build that CodePipeline started (initiator `codepipeline/<pipeline>`): a build action of
    that execution, counted with it, not as a run of its own."""
    return and_(table.c.source == "codebuild", func.coalesce(table.c.trigger, "").startswith("codepipeline/"))


# Sources whose actions' categories are their action types' (CodePipeline's actionTypeId.category), not
# guesses from a name: those classify their stages (analysis.pipelines.stage_categories).
DECLARED_CATEGORY_SOURCES = (codepipeline.NAME,)


def declared_category(actions=action_runs, runs=pipeline_runs) -> ColumnElement[Any]:
    """An action's category when its run's source declares it (else null), as `declared_category`."""
    return case((runs.c.source.in_(DECLARED_CATEGORY_SOURCES), actions.c.category)).label("declared_category")


def team_services(team: str) -> Select:
    return select(deployments.c.service).where(deployments.c.team == team).distinct()


@translates_store_errors
def load_pipeline_frames(engine: Engine, start: datetime, end: datetime, scope: Scope = Scope()) -> PipelineFrames:
    """The frames `analysis.pipelines.report` needs for [start, end): every environment unless
    `scope.environment` names one."""
    r, s, a = pipeline_runs, stage_runs, action_runs
    run_filter = [
        or_(and_(r.c.started_at >= start, r.c.started_at < end), and_(r.c.finished_at >= start, r.c.finished_at < end)),
        ~part_of_codepipeline(r),
    ]
    if scope.service:
        run_filter.append(r.c.service == scope.service)
    if scope.team:
        run_filter.append(r.c.service.in_(team_services(scope.team)))
    run_ids = select(r.c.id).where(*run_filter)
    runs = select(
        r.c.id,
        r.c.pipeline,
        r.c.service,
        r.c.revision,
        r.c.status,
        raw_time(r.c.queued_at),
        raw_time(r.c.started_at),
        raw_time(r.c.finished_at),
    ).where(*run_filter)
    stages = select(
        s.c.id,
        s.c.pipeline_run_id,
        s.c.name,
        s.c.category,
        s.c.status,
        raw_time(s.c.started_at),
        raw_time(s.c.finished_at),
        s.c.failed_once,
    ).where(s.c.pipeline_run_id.in_(run_ids))
    build, own = pipeline_runs.alias("build"), pipeline_runs.alias("own")
    actions = (
        select(
            a.c.id,
            a.c.pipeline_run_id,
            a.c.stage_run_id,
            a.c.name,
            a.c.category,
            a.c.status,
            raw_time(a.c.started_at),
            raw_time(a.c.finished_at),
            raw_time(build.c.queued_at, "build_queued_at"),
            raw_time(build.c.started_at, "build_started_at"),
            declared_category(a, own),
        )
        .join(own, own.c.id == a.c.pipeline_run_id)
        .outerjoin(build, and_(a.c.provider == "CodeBuild", build.c.id == literal(CODEBUILD_PREFIX) + a.c.external_id))
        .where(a.c.pipeline_run_id.in_(run_ids))
    )

    loaded = _pipeline_deployments(start, end, scope).cte("loaded")
    ids = select(loaded.c.id)
    g, c, i = gate_decisions, canary_runs, incidents
    detections = union_all(
        select(g.c.deployment_id, literal("gate").label("kind"), raw_time(g.c.created_at, "detected_at")).where(
            g.c.decision == "rollback", g.c.deployment_id.in_(ids)
        ),
        select(c.c.deployment_id, literal("canary"), raw_time(c.c.created_at)).where(
            c.c.verdict == "fail", c.c.deployment_id.in_(ids)
        ),
        select(i.c.deployment_id, literal("incident"), raw_time(i.c.opened_at)).where(i.c.deployment_id.in_(ids)),
    ).subquery("detections")
    with reading(engine) as conn:
        deps = read_frame(conn, select(loaded)).drop_duplicates("id").reset_index(drop=True)
        since = pd.Series([deps["finished_at"].min(), pd.Timestamp(start)]).min().to_pydatetime()
        al = alarms
        episodes = read_frame(
            conn,
            select(al.c.id, al.c.service, raw_time(al.c.started_at)).where(
                al.c.started_at >= since, al.c.started_at < end, *service_scope(al.c.service, scope)
            ),
        )
        return PipelineFrames(
            runs=read_frame(conn, runs),
            stages=read_frame(conn, stages),
            actions=read_frame(conn, actions),
            deployments=deps,
            detections=read_frame(conn, select(detections)),
            alarms=episodes,
        )


def _pipeline_deployments(start: datetime, end: datetime, scope: Scope) -> CompoundSelect:
    """The window's deployments in `scope` (every environment unless it names one), with the context
    that resolves their rollbacks (see PipelineFrames): a union, which may repeat a deployment."""
    d, w, p = deployments, deployments.alias("w"), deployments.alias("p")

    def scoped(t) -> list[ColumnElement[bool]]:
        conds = [counted_once(t)]  # a CodeDeploy deployment its CodePipeline execution already counts: once
        conds += [func.lower(t.c.environment) == scope.environment.lower()] if scope.environment else []
        conds += [t.c.service == scope.service] if scope.service else []
        return conds + ([t.c.team == scope.team] if scope.team else [])

    def done(t) -> list[ColumnElement[bool]]:
        return [*scoped(t), t.c.production == true(), t.c.status.in_(COMPLETED_DEPLOYMENT)]

    x, ch = deployment_contents, changes
    first_commit = select(func.min(x.c.committed_at)).where(x.c.deployment_id == d.c.id).correlate(d).scalar_subquery()
    # A pull/merge request's merge (a `pr` number): a CodeCommit push's time also stands in as `merged_at`.
    first_merge = (
        select(func.min(ch.c.merged_at))
        .where(x.c.deployment_id == d.c.id, ch.c.id == x.c.change_id, ch.c.pr.is_not(None))
        .correlate(d)
    )
    columns = (
        d.c.id,
        d.c.service,
        d.c.environment,
        d.c.production,
        d.c.status,
        raw_time(d.c.finished_at),
        d.c.rollback_of,
        d.c.is_rollback,
        _stored_time(first_commit).label("first_committed_at"),
        _stored_time(first_merge.scalar_subquery()).label("first_merged_at"),
    )
    in_window = [*scoped(d), d.c.finished_at >= start, d.c.finished_at < end]
    window_ids = select(w.c.id).where(*scoped(w), w.c.finished_at >= start, w.c.finished_at < end)
    # Each service's last completed production deployment before the window and first after it:
    # what a rollback that does not name its target rolls back, and the rollback of the window's last.
    services = distinct_values(deployments.alias("listed").c.service).subquery("services")
    last = select(func.max(p.c.finished_at)).where(p.c.service == services.c.value, *done(p), p.c.finished_at < start)
    first = select(func.min(p.c.finished_at)).where(p.c.service == services.c.value, *done(p), p.c.finished_at >= end)
    edges = select(
        services.c.value.label("service"),
        last.scalar_subquery().label("last_at"),
        first.scalar_subquery().label("first_at"),
    ).subquery("edges")
    on_edge = and_(
        d.c.service == edges.c.service, or_(d.c.finished_at == edges.c.last_at, d.c.finished_at == edges.c.first_at)
    )
    window_targets = select(w.c.rollback_of).where(*scoped(w), w.c.finished_at >= start, w.c.finished_at < end)
    return (
        select(*columns)
        .where(*in_window)
        .union_all(
            select(*columns).where(d.c.id.in_(window_targets)),
            select(*columns).select_from(d).join(edges, on_edge).where(*done(d)),
            select(*columns).where(*scoped(d), d.c.finished_at >= end, d.c.rollback_of.in_(window_ids)),
        )
    )


def service_scope(service, scope: Scope) -> list[ColumnElement[bool]]:
    """Conditions on a `service` column of rows without a team of their own (incidents, alarms)."""
    conds = [service == scope.service] if scope.service else []
    return conds + ([service.in_(team_services(scope.team))] if scope.team else [])


@translates_store_errors
def load_alarms(engine: Engine, start: datetime, end: datetime, scope: Scope = Scope()) -> pd.DataFrame:
    """Alarm episodes that started in [start, end), of `scope`'s service or team when given (its
    environment does not apply: alarms carry none), oldest first."""
    a = alarms
    conds = [a.c.started_at >= start, a.c.started_at < end, *service_scope(a.c.service, scope)]
    stmt = (
        select(
            a.c.id,
            a.c.source,
            a.c.name,
            a.c.service,
            a.c.status,
            raw_time(a.c.status_at),
            a.c.reason,
            raw_time(a.c.started_at),
            raw_time(a.c.ended_at),
            a.c.url,
        )
        .where(*conds)
        .order_by(a.c.started_at, a.c.id)
    )
    with reading(engine) as conn:
        return read_frame(conn, stmt)


__all__ = [
    "DORA_STATUSES",
    "Scope",
    "counted_by_codepipeline",
    "counted_once",
    "distinct_values",
    "load_alarms",
    "load_dora_frames",
    "load_pipeline_frames",
    "part_of_codepipeline",
    "raw_time",
    "read_frame",
    "reading",
    "service_scope",
    "team_services",
]
