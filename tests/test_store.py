"""The store: migrations, URL resolution, timezone-aware timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select

from collector import db
from collector.models import raw_events
from gatewatch.errors import StoreError


def test_upgrade_creates_every_table(engine):
    names = set(inspect(engine).get_table_names())
    assert {
        "raw_events",
        "pipeline_runs",
        "stage_runs",
        "action_runs",
        "deployments",
        "changes",
        "deployment_changes",
        "incidents",
        "alembic_version",
    } <= names
    assert db.current_revision(engine) == db.head_revision()
    assert db.upgrade(engine) == (db.head_revision(), db.head_revision())  # idempotent


def test_get_engine_migrates_a_new_database_on_first_use(store_url):
    engine = db.get_engine(store_url)
    try:
        assert db.current_revision(engine) == db.head_revision()
    finally:
        db.dispose_engines()


def test_timestamps_round_trip_as_aware_utc(engine):
    berlin = timezone(timedelta(hours=2))
    moment = datetime(2024, 3, 31, 1, 30, tzinfo=berlin)
    with db.write_transaction(engine) as conn:
        conn.execute(
            raw_events.insert(),
            {"source": "t", "kind": "k", "dedupe_key": "x", "received_at": moment, "payload": "{}", "status": "ok"},
        )
    with engine.connect() as conn:
        stored = conn.execute(select(raw_events.c.received_at)).scalar_one()
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == moment


def test_naive_datetimes_are_refused(engine):
    with pytest.raises(Exception, match="naive datetime"), db.write_transaction(engine) as conn:
        conn.execute(
            raw_events.insert(),
            {
                "source": "t",
                "kind": "k",
                "dedupe_key": "y",
                "received_at": datetime(2024, 1, 1),
                "payload": "{}",
                "status": "ok",
            },
        )


def test_url_resolution(monkeypatch):
    monkeypatch.delenv("GATEWATCH_DB", raising=False)
    assert db.resolve_url(None) == "sqlite:///gatewatch.db"
    monkeypatch.setenv("GATEWATCH_DB", "postgresql://u@h/d")
    assert db.resolve_url(None) == "postgresql+psycopg://u@h/d"
    assert db.resolve_url("sqlite:///x.db") == "sqlite:///x.db"


def test_bad_urls_give_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="invalid database URL"):
        db.create_store_engine("not a url")
    with pytest.raises(StoreError, match="does not exist"):
        db.create_store_engine(f"sqlite:///{tmp_path}/missing/dir/x.db")


def test_a_sqlite_library_without_json_functions_is_refused_clearly(tmp_path, monkeypatch):
    """Old SQLite builds may lack the JSON functions the DORA loader packs changes with: the engine
    says so up front instead of failing inside a report. (A build without them cannot be made here,
    so the probe's connection is one that refuses the call as such a build does.)"""
    import sqlite3

    connect = sqlite3.connect

    class WithoutJson:
        def __init__(self):
            self.conn = connect(":memory:")

        def execute(self, sql):
            if "json_" in sql:
                raise sqlite3.OperationalError("no such function: json_group_array")
            return self.conn.execute(sql)

        def close(self):
            self.conn.close()

    assert db._check_sqlite_library() is None  # this machine's library has them
    db._check_sqlite_library.cache_clear()
    monkeypatch.setattr(db.sqlite3, "connect", lambda _: WithoutJson())
    try:
        with pytest.raises(StoreError, match=r"no such function: json_group_array.*SQLite 3\.38 or newer"):
            db.create_store_engine(f"sqlite:///{tmp_path}/x.db")
    finally:
        db._check_sqlite_library.cache_clear()


def test_bulk_insert_refuses_naive_datetimes_and_round_trips_aware_ones(engine):
    from collector.models import changes

    row = {
        "id": "abc",
        "service": "s",
        "repository": None,
        "committed_at": datetime(2024, 1, 1),
        "merged_at": None,
        "pr": None,
        "author": None,
        "title": None,
        "pushed_head": None,
    }
    with pytest.raises(ValueError, match="naive datetime"), db.write_transaction(engine) as conn:
        db.bulk_insert(conn, changes, [row])
    aware = datetime(2024, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    with db.write_transaction(engine) as conn:
        db.bulk_insert(conn, changes, [dict(row, committed_at=aware)])
    with engine.connect() as conn:
        assert conn.execute(select(changes.c.committed_at)).scalar_one() == aware


def test_the_migrations_build_exactly_the_models_schema(engine):
    """Alembic's autogenerate finds nothing to add: the migrations and collector.models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from collector.models import metadata

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
