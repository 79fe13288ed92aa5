"""The columnar SQLite reader (ADBC) returns exactly the frames the DB-API driver path returns, binds
parameters as SQLAlchemy does, sees every row when it infers types, and is only used for store files;
the loose-index-scan DISTINCT agrees with SELECT DISTINCT on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import func, select, true
from sqlalchemy.engine import make_url

from collector import loaders
from collector.columnar import driver_statement, read_arrow, sqlite_file
from collector.config import config_from_mapping
from collector.db import bulk_insert, create_store_engine, in_memory, upgrade, write_transaction
from collector.demo import demo_config_mapping, run_demo
from collector.loaders import Scope, load_dora_frames, load_filter_options, read_frame
from collector.models import deployments

END = datetime(2025, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory):
    engine = create_store_engine(f"sqlite:///{tmp_path_factory.mktemp('columnar') / 'demo.db'}")
    upgrade(engine)
    run_demo(engine, config_from_mapping(demo_config_mapping(3), environ={}), services=3, days=40, end=END)
    yield engine
    engine.dispose()


def _through_driver(monkeypatch):
    """Make read_frame take the DB-API path for the rest of the test."""
    monkeypatch.setattr(loaders, "sqlite_file", lambda conn: None)


@pytest.mark.parametrize("scope", [Scope(), Scope(service="checkout"), Scope(team="payments"),
                                   Scope(environment="staging")])
@pytest.mark.parametrize("days", [7, 30])
def test_dora_frames_are_identical_through_both_readers(demo_engine, monkeypatch, scope, days):
    start, end = END - timedelta(days=days), END - timedelta(hours=3)
    columnar = load_dora_frames(demo_engine, start, end, scope)
    _through_driver(monkeypatch)
    driver = load_dora_frames(demo_engine, start, end, scope)
    for name in ("deployments", "changes", "incidents", "commit_links"):
        pd.testing.assert_frame_equal(getattr(columnar, name), getattr(driver, name), obj=name)
    if scope == Scope() and days == 30:
        assert len(columnar.deployments) > 50 and len(columnar.changes) > 50  # the comparison is not vacuous


def _deployment(i: int, rollback_of: str | None, finished: datetime) -> dict:
    return {"id": f"d{i:05d}", "source": "test", "service": "o'brien" if i % 2 else "api", "team": None,
            "environment": "production", "production": True, "status": "success", "status_at": finished,
            "started_at": finished, "finished_at": finished, "version": None, "revision": None,
            "pipeline_run_id": None, "rollback_of": rollback_of, "is_rollback": rollback_of is not None,
            "hotfix": i % 3 == 0, "url": None}


@pytest.fixture
def file_engine(tmp_path):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_types_are_inferred_from_every_row_not_the_first_batch(file_engine, monkeypatch):
    # 3000 rows whose rollback_of is NULL, then strings: the driver's default batch (1024 rows) would
    # type the column as integers and fail on the first string.
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [_deployment(i, None if i < 3000 else f"d{i - 1:05d}", base + timedelta(minutes=i)) for i in range(3010)]
    with write_transaction(file_engine) as conn:
        bulk_insert(conn, deployments, rows)
    d = deployments
    stmt = select(d.c.id, d.c.rollback_of, d.c.hotfix, d.c.team, loaders._raw(d.c.finished_at)).order_by(d.c.id)
    with file_engine.connect() as conn:
        columnar = read_frame(conn, stmt, raw=True)
        _through_driver(monkeypatch)
        driver = read_frame(conn, stmt, raw=True)
    pd.testing.assert_frame_equal(columnar, driver)
    assert columnar["rollback_of"].notna().sum() == 10
    assert columnar["hotfix"].tolist()[:4] == [True, False, False, True]  # 0/1 through Boolean's processor
    assert columnar["team"].isna().all()
    assert str(columnar["finished_at"].dtype) == "datetime64[us, UTC]"
    assert columnar["finished_at"].iloc[3001] == pd.Timestamp(base + timedelta(minutes=3001))


def test_parameters_are_bound_and_processed_as_an_execute_would(file_engine):
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with write_transaction(file_engine) as conn:
        bulk_insert(conn, deployments, [_deployment(i, None, base + timedelta(hours=i)) for i in range(20)])
    d = deployments
    since = datetime(2024, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=2)))  # 03:30 UTC: an aware bind
    stmt = (select(d.c.id).where(d.c.service.in_(["o'brien", "nobody"]), d.c.production == true(),
                                 d.c.finished_at >= since, d.c.hotfix.is_(False)).order_by(d.c.id))
    sql, params = driver_statement(stmt, file_engine.dialect)
    assert "o'brien" not in sql and "?" in sql  # values travel as parameters, never in the SQL text
    assert params == ("o'brien", "nobody", "2024-01-01 03:30:00.000000")
    with file_engine.connect() as conn:
        got = read_arrow(conn, stmt)["id"].to_pylist()
        expected = conn.execute(stmt).scalars().all()
    assert got == expected == [f"d{i:05d}" for i in range(5, 20, 2) if i % 3]
    hostile = select(d.c.id).where(d.c.service == "x' OR '1'='1")
    with file_engine.connect() as conn:
        assert read_arrow(conn, hostile).num_rows == 0


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///store.db", "store.db"),
    ("sqlite:////var/lib/gatewatch/store.db", "/var/lib/gatewatch/store.db"),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("sqlite:///file:store.db?mode=ro&uri=true", None),
    ("sqlite:///store.db?timeout=5", None),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", None),
])
def test_only_plain_store_files_are_read_columnar(url, expected):
    class Conn:
        class engine:  # noqa: N801 - stands in for Connection.engine
            pass
    Conn.engine.url = make_url(url)
    assert sqlite_file(Conn()) == expected
    assert in_memory(make_url(url)) == (url in ("sqlite://", "sqlite:///:memory:"))


def test_filter_options_match_select_distinct(engine):
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(60):
        row = _deployment(i, None, base + timedelta(hours=i))
        row.update(service=[None, "web", "api", "Api", "z-last"][i % 5], team=[None, "core", "front"][i % 3],
                   environment=["production", "staging", None][i % 3])
        rows.append(row)
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
