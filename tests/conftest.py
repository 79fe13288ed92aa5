"""Shared fixtures: a fresh store on SQLite and (when GATEWATCH_TEST_POSTGRES_URL is set) PostgreSQL."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from collector.config import Config, config_from_mapping
from collector.db import create_store_engine, upgrade

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"
POSTGRES_URL = os.environ.get("GATEWATCH_TEST_POSTGRES_URL")


def fixture_path(relative: str) -> Path:
    """A payload sample: the copy under tests/fixtures, else ../shared/fixtures."""
    local = LOCAL_FIXTURES / relative
    return local if local.exists() else SHARED_FIXTURES / relative


@pytest.fixture(autouse=True, scope="session")
def _offline_aws():
    """AWS clients in tests never look for real credentials or the instance metadata service."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                            "AWS_EC2_METADATA_DISABLED", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing",
                      AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def config() -> Config:
    """Default configuration, with no environment secrets leaking in."""
    return config_from_mapping({}, environ={})


def _postgres_store_url() -> tuple[str, str]:
    schema = f"gw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
                          if POSTGRES_URL.startswith("postgresql://") else POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
                          if POSTGRES_URL.startswith("postgresql://") else POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """URL of a fresh, empty store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("GATEWATCH_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_store_url()
    try:
        yield url
    finally:
        from collector.db import dispose_engines

        dispose_engines()
        _drop_schema(schema)


@pytest.fixture
def engine(store_url):
    """A migrated engine on a fresh store."""
    eng = create_store_engine(store_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def dump_projections(engine) -> dict[str, list[dict]]:
    """Every projection row, sorted by id: what 'the same rows' means in order and replay tests."""
    from sqlalchemy import select

    from collector.models import PROJECTION_TABLES

    with engine.connect() as conn:
        return {t.name: [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]
                for t in PROJECTION_TABLES}
