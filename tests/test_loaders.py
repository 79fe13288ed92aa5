"""Loader details the analysis tests do not reach, on SQLite and PostgreSQL: the loose-index-scan
DISTINCT behind the dashboard's filter choices agrees with SELECT DISTINCT, and the packed read of the
window's changes agrees with their definition computed from whole tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from collector.db import bulk_insert, write_transaction
from collector.listings import load_filter_options
from collector.loaders import Scope, load_dora_frames, reading
from collector.models import changes, deployment_changes, deployments


def _deployment(i: int, finished: datetime, **extra) -> dict:
    return {
        "id": f"d{i:05d}",
        "source": "test",
        "service": "api",
        "team": None,
        "environment": "production",
        "production": True,
        "status": "success",
        "status_at": finished,
        "started_at": finished,
        "finished_at": finished,
        "version": None,
        "revision": None,
        "pipeline_run_id": None,
        "rollback_of": None,
        "is_rollback": False,
        "hotfix": False,
        "url": None,
        **extra,
    }


def test_filter_options_match_select_distinct(engine):
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        _deployment(
            i,
            base + timedelta(hours=i),
            service=[None, "web", "api", "Api", "z-last"][i % 5],
            team=[None, "core", "front"][i % 3],
            environment=["production", "staging", None][i % 3],
        )
        for i in range(60)
    ]
    with write_transaction(engine) as conn:
        bulk_insert(conn, deployments, rows)
    options = load_filter_options(engine)
    d = deployments
    with engine.connect() as conn:
        for key, column in (("services", d.c.service), ("teams", d.c.team), ("environments", d.c.environment)):
            distinct = conn.execute(select(column).where(column.is_not(None)).distinct()).scalars().all()
            assert options[key] == sorted(distinct), key
        assert conn.execute(select(func.count(d.c.service.distinct()))).scalar_one() == 4
    assert options["services"] == sorted(["web", "api", "Api", "z-last"])
    assert options["teams"] == ["core", "front"] and options["environments"] == ["production", "staging"]


def test_filter_options_of_an_empty_store(engine):
    assert load_filter_options(engine) == {"services": [], "teams": [], "environments": []}


def test_epoch_microseconds_become_exact_utc_timestamps():
    """PostgreSQL hands `_raw` timestamps over as integer microseconds (floats once a NULL is there)."""
    import numpy as np
    import pandas as pd

    from collector.loaders import _utc_timestamps

    at = datetime(2024, 10, 2, 23, 0, 52, 800001, tzinfo=UTC)
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    for values in (
        pd.Series([micros, micros + 1]),
        pd.Series([micros, None], dtype=object),
        pd.Series([float(micros), np.nan]),
    ):
        stamps = _utc_timestamps(values)
        assert str(stamps.dtype) == "datetime64[us, UTC]"
        assert stamps.iloc[0] == pd.Timestamp(at)
        assert (
            pd.isna(stamps.iloc[1])
            if values.isna().any()
            else stamps.iloc[1] == pd.Timestamp(at) + pd.Timedelta(1, "us")
        )


def test_packed_stored_times_become_exact_utc_timestamps():
    """Packed changes carry stored times in Arrow: SQLite's text (with or without a fraction, or with
    an offset, which goes through pandas) and PostgreSQL's integer microseconds."""
    import pyarrow as pa

    from collector.loaders import _arrow_utc

    at = pd.Timestamp(datetime(2024, 10, 2, 23, 0, 52, 800001, tzinfo=UTC))
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    text = _arrow_utc(pa.chunked_array([["2024-10-02 23:00:52.800001", None, "2024-10-02 23:00:52"]]))
    assert str(text.dtype) == "datetime64[us, UTC]"
    assert text.iloc[0] == at and pd.isna(text.iloc[1]) and text.iloc[2] == at.floor("s")
    ints = _arrow_utc(pa.chunked_array([pa.array([micros, None], pa.int64())]))
    assert ints.iloc[0] == at and pd.isna(ints.iloc[1])
    offset = _arrow_utc(pa.chunked_array([["2024-10-03T01:00:52.800001+02:00"]]))
    assert offset.iloc[0] == at
    assert _arrow_utc(pa.chunked_array([], type=pa.string())).empty


# Ids a source may send: the packed read of a deployment's changes must keep them intact.
AWKWARD_IDS = [
    "plain",
    'quo"te',
    "comma,semi;colon",
    "back\\slash",
    "new\nline",
    "tab\tand\x1fcontrol",
    "ünïcödé-✓",
    '{"json": [1]}',
    "",
    "sp ace",
]


def _brute_force_changes(
    deps: pd.DataFrame, links: pd.DataFrame, chg: pd.DataFrame, start, end, scope: Scope = Scope()
) -> set:
    """(change_id, committed_at, first_deployed_at) by the definition, from whole tables: each change
    held by a window deployment (linked, or pushed with a linked head), first deployed by the earliest
    in-scope deployment holding it (only one in the window when it was committed in the window)."""
    scoped = deps[deps["production"] & deps["status"].isin(["success", "rolled_back"]) & (deps["finished_at"] < end)]
    for key in ("service", "team"):
        if getattr(scope, key):
            scoped = scoped[scoped[key] == getattr(scope, key)]
    links = links[["deployment_id", "change_id"]]
    direct = links.merge(chg, left_on="change_id", right_on="id")[["deployment_id", "id"]]
    pushed = links.merge(chg, left_on="change_id", right_on="pushed_head")[["deployment_id", "id"]]
    held = pd.concat([direct, pushed]).merge(scoped[["id", "finished_at"]].rename(columns={"id": "deployment_id"}))
    held = held.merge(chg[["id", "committed_at", "merged_at"]], on="id")
    held["committed"] = held["committed_at"].fillna(held["merged_at"])
    in_window = held["finished_at"] >= start
    counted = held[in_window | ~(held["committed"] >= start)]
    window_changes = set(held.loc[in_window, "id"])
    out = set()
    for change_id, rows in counted[counted["id"].isin(window_changes)].groupby("id"):
        committed = rows["committed"].iloc[0]
        out.add((change_id, None if pd.isna(committed) else committed, rows["finished_at"].min()))
    return out


@pytest.mark.parametrize("scope", [Scope(), Scope(team="core"), Scope(service="web")], ids=["all", "team", "service"])
def test_window_changes_match_their_definition(engine, scope):
    """The loader's per-change first deployments (read packed, one row per deployment) equal a
    brute-force computation: duplicates across the window, commits pushed with a linked head, early
    commits deployed before the window (by a deployment in scope: another team's or service's does not
    count), missing commit times, other environments, awkward ids."""
    rng = np.random.default_rng(7)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    start, end = t0 + timedelta(days=10), t0 + timedelta(days=20)
    deps, chg, links = [], [], []
    for i in range(60):
        finished = t0 + timedelta(hours=float(rng.uniform(0, 24 * 25)), microseconds=int(rng.integers(0, 10**6)))
        status = ["success", "rolled_back", "failed", "in_progress"][int(rng.choice(4, p=[0.7, 0.1, 0.1, 0.1]))]
        deps.append(
            _deployment(
                i,
                finished,
                status=status,
                production=bool(rng.random() < 0.85),
                environment="production",
                team=["core", "front"][i % 2],
                service=["api", "web", "web"][i % 3],
            )
        )
    for j in range(120):
        change_id = f"{AWKWARD_IDS[j % len(AWKWARD_IDS)]}#{j}"
        committed = t0 + timedelta(hours=float(rng.uniform(-48, 24 * 22)))
        chg.append(
            {
                "id": change_id,
                "service": "api",
                "repository": None,
                "committed_at": None if j % 7 == 0 else committed,
                "merged_at": committed + timedelta(minutes=5) if j % 14 == 0 else None,
                "pr": None,
                "author": None,
                "title": None,
                "pushed_head": None,
            }
        )
    heads = [c["id"] for c in chg[:10]]
    for c in chg[10:40]:
        c["pushed_head"] = heads[int(rng.integers(0, len(heads)))]
    for k in range(260):
        dep = deps[int(rng.integers(0, len(deps)))]["id"]
        target = chg[int(rng.integers(0, len(chg)))]["id"] if k % 13 else f"unknown-{k}"
        links.append({"id": f"{dep}|{target}|{k}", "deployment_id": dep, "change_id": target})
    with write_transaction(engine) as conn:
        bulk_insert(conn, deployments, deps)
        bulk_insert(conn, changes, chg)
        bulk_insert(conn, deployment_changes, links)

    loaded = load_dora_frames(engine, start, end, scope).changes
    assert loaded["change_id"].is_unique
    got = {
        (r.change_id, None if pd.isna(r.committed_at) else r.committed_at, r.first_deployed_at)
        for r in loaded.itertuples()
    }
    frame = lambda rows: pd.DataFrame(rows)  # noqa: E731
    want = _brute_force_changes(frame(deps), frame(links), frame(chg), start, end, scope)
    assert got == want
    if scope != Scope():  # another team's or service's deployments hold some of these changes earlier
        assert len(want) > 5 and any(first < start for _, _, first in want)
        assert want != _brute_force_changes(frame(deps), frame(links), frame(chg), start, end)
        return
    # The data reaches every case.
    assert len(want) > 30 and any("\n" in c for c, _, _ in want) and any(c is None for _, c, _ in want)
    assert any(first < start for _, _, first in want)  # early commits deployed before the window
    assert {c for c, _, _ in want} & {c["id"] for c in chg if c["pushed_head"]}
    window = {
        d["id"]
        for d in deps
        if start <= d["finished_at"] < end and d["production"] and d["status"] in ("success", "rolled_back")
    }
    per_change = pd.Series([link["change_id"] for link in links if link["deployment_id"] in window]).value_counts()
    assert (per_change > 1).any()


def test_window_changes_of_an_empty_window(engine):
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    frames = load_dora_frames(engine, t0, t0 + timedelta(days=1))
    assert frames.changes.empty and list(frames.changes.columns) == ["change_id", "committed_at", "first_deployed_at"]


@pytest.mark.parametrize("store_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_postgres_reads_run_without_jit_and_leave_the_session_as_it_was(engine):
    """The loaders' transactions turn JIT off (SET LOCAL); a pooled connection afterwards has the
    server's setting again."""
    with engine.connect() as conn:
        default = conn.exec_driver_sql("SHOW jit").scalar_one()
    with reading(engine) as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar_one() == "off"
    load_dora_frames(engine, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
    for _ in range(3):  # whichever pooled connection comes back
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW jit").scalar_one() == default


def test_pipeline_deployments_carry_their_earliest_commit(engine):
    """`first_committed_at` is the earliest commit a deployment holds (linked, or pushed with a linked
    head), by commit time, else merge time; none for a deployment without known commits."""
    from collector.loaders import load_pipeline_frames

    base = datetime(2024, 5, 1, tzinfo=UTC)
    with write_transaction(engine) as conn:
        bulk_insert(
            conn,
            deployments,
            [
                _deployment(1, base),
                _deployment(2, base + timedelta(hours=1)),
                _deployment(3, base + timedelta(hours=2)),
            ],
        )
        bulk_insert(
            conn,
            changes,
            [
                {
                    "id": "head",
                    "service": "api",
                    "committed_at": base - timedelta(hours=1),
                    "merged_at": None,
                    "pushed_head": None,
                },
                {
                    "id": "early",
                    "service": "api",
                    "committed_at": None,
                    "merged_at": base - timedelta(hours=5),
                    "pushed_head": "head",
                },
                {
                    "id": "late",
                    "service": "api",
                    "committed_at": base - timedelta(minutes=10),
                    "merged_at": None,
                    "pushed_head": None,
                },
            ],
        )
        bulk_insert(
            conn,
            deployment_changes,
            [
                {"id": "d00001|head", "deployment_id": "d00001", "change_id": "head"},
                {"id": "d00002|late", "deployment_id": "d00002", "change_id": "late"},
                {"id": "d00003|unknown", "deployment_id": "d00003", "change_id": "unknown"},
            ],
        )
    frames = load_pipeline_frames(engine, base - timedelta(days=1), base + timedelta(days=1))
    first = frames.deployments.set_index("id")["first_committed_at"]
    assert first["d00001"] == pd.Timestamp(base - timedelta(hours=5))  # the merged commit pushed with the head
    assert first["d00002"] == pd.Timestamp(base - timedelta(minutes=10))
    assert pd.isna(first["d00003"])
