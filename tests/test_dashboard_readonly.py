"""The dashboard only reads: it never migrates or writes the store, so it works for a PostgreSQL role
that may only SELECT, and it leaves a new store as it found it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from streamlit.testing.v1 import AppTest

from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_store_url

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGES = [
    "views/executive.py",
    "views/oncall.py",
    "views/pipelines.py",
    "views/canary.py",
    "views/slos.py",
    "views/gates.py",
]


@pytest.fixture(autouse=True)
def _fresh(fresh_dashboard):
    """Every test here starts with empty dashboard caches and no Gatewatch environment."""


def _admin():
    return create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        if POSTGRES_URL.startswith("postgresql://")
        else POSTGRES_URL
    )


def _run_every_page(monkeypatch, url: str, cwd: Path) -> AppTest:
    monkeypatch.setenv("GATEWATCH_DB", url)
    monkeypatch.chdir(cwd)
    at = AppTest.from_file(APP, default_timeout=120).run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    return at


def test_a_new_sqlite_store_is_not_migrated_by_the_dashboard(monkeypatch, tmp_path):
    path = tmp_path / "new.db"
    url = f"sqlite:///{path}"
    at = _run_every_page(monkeypatch, url, tmp_path)
    assert any("The store is empty" in i.value for i in at.info)
    tables = inspect(create_engine(url)).get_table_names() if path.exists() else []
    assert tables == []  # no alembic_version, no schema: nothing written


@pytest.mark.postgres
def test_every_page_works_for_a_role_that_may_only_select(monkeypatch, tmp_path, gatewatch):
    if not POSTGRES_URL:
        pytest.skip("GATEWATCH_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_store_url()
    role = f"gw_reader_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    try:
        res = gatewatch("--db", url, "demo", "--services", "3", "--days", "30", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        with admin.begin() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
            conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
        reader = url.replace("postgres@", f"{role}@", 1)
        assert reader != url
        writer = create_engine(reader.replace("postgresql://", "postgresql+psycopg://", 1))
        with writer.connect() as conn, pytest.raises(Exception, match="permission denied"):  # it cannot write
            conn.execute(text("DELETE FROM raw_events"))
        writer.dispose()
        at = _run_every_page(monkeypatch, reader, tmp_path)
        at.switch_page("views/executive.py").run()
        frequency = next(m for m in at.metric if m.label == "Deployment frequency")
        assert frequency.value != "no data"  # the demo's figures, read as the role
    finally:
        from collector.db import dispose_engines

        dispose_engines()
        _drop_schema(schema)
        with admin.begin() as conn:  # the dashboard's worker process may still hold a connection
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role"), {"role": role}
            )
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
