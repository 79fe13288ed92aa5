"""Shared fixtures: a fresh store on SQLite and (when GATEWATCH_TEST_POSTGRES_URL is set) PostgreSQL;
the `gatewatch` command; servers and demo stores built once per session (Prometheus, moto, `gatewatch
demo`)."""

from __future__ import annotations

import os
import subprocess
import sys
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
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_EC2_METADATA_DISABLED",
            "AWS_DEFAULT_REGION",
        )
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
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
    admin = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        if POSTGRES_URL.startswith("postgresql://")
        else POSTGRES_URL
    )
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    admin = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        if POSTGRES_URL.startswith("postgresql://")
        else POSTGRES_URL
    )
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


@pytest.fixture
def another_engine(store_url, tmp_path):
    """A second migrated engine on a fresh store of the same kind as `engine`'s, to compare two ingest paths."""
    if store_url.startswith("sqlite"):
        url, schema = f"sqlite:///{tmp_path / 'another.db'}", None
    else:
        url, schema = _postgres_store_url()
    eng = create_store_engine(url)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()
        if schema:
            _drop_schema(schema)


def dump_projections(engine) -> dict[str, list[dict]]:
    """Every projection row, sorted by id: what 'the same rows' means in order and replay tests."""
    from sqlalchemy import select

    from collector.models import PROJECTION_TABLES

    with engine.connect() as conn:
        return {
            t.name: [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()] for t in PROJECTION_TABLES
        }


# --- the command ---------------------------------------------------------------------------------------


def run_gatewatch(
    *args: str, stdin: str | None = None, cwd: Path | None = None, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would: no GATEWATCH_* variable of this process
    reaches it, only those of `env`."""
    exe = Path(sys.executable).with_name("gatewatch")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(exe), *args], input=stdin, capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout
    )


def run_in_process(*args: str) -> subprocess.CompletedProcess:
    """`gatewatch ARGS` through its console entry point in this process (its exit status and output):
    the CLI's import time paid once. An exception escaping `main()` fails the test as a traceback would
    show. Use `run_gatewatch` where the installed script or a separate process matters."""
    import contextlib
    import io

    from gatewatch.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["gatewatch", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        sys.argv = saved
    return subprocess.CompletedProcess(["gatewatch", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def gatewatch():
    """`gatewatch(*args, stdin=, cwd=, env=, timeout=)`: the installed command, run as a user would."""
    return run_gatewatch


# --- Prometheus ------------------------------------------------------------------------------------------


def _prometheus(tmp_path_factory, name: str, extra=None):
    from tests import prometheus_server

    server = prometheus_server.start(tmp_path_factory.mktemp(name), extra=extra)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    """Prometheus over the canary and SLO history (tests.prometheus_server), read at fixed times; read-only, shared."""
    from tests.prometheus_server import families

    yield from _prometheus(tmp_path_factory, "prometheus", extra=families)


@pytest.fixture(scope="module")
def prometheus_recent(tmp_path_factory):
    """The same history, ending a minute before the module starts, for checks read at now (`gate check`); per
    module, not per session: within half an hour of its start, the 30-minute burn-rate window at now is empty."""
    from tests.prometheus_server import families

    yield from _prometheus(tmp_path_factory, "prometheus-recent", extra=families)


# --- moto --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server():
    """Base URL of one moto server (ThreadedMotoServer on 127.0.0.1) for the session; tests take `moto_url`."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_url(moto_server) -> str:
    """Base URL of the session's moto server, its state reset (`POST /moto-api/reset`) for this test."""
    import httpx

    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    return moto_server


# --- demo stores ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_stores(tmp_path_factory, gatewatch):
    """`demo_stores(*options, backend="sqlite")` -> (url, folder): `gatewatch demo OPTIONS` run once per session
    per backend and options, in `folder` (its gatewatch.yaml and gatewatch-demo/). Shared: only for tests
    that read the store; a test that writes to a demo store builds its own."""
    built: dict[tuple, tuple[str, Path]] = {}
    schemas: list[str] = []

    def demo_store(*options: str, backend: str = "sqlite") -> tuple[str, Path]:
        key = (backend, options)
        if key not in built:
            if backend == "postgresql" and not POSTGRES_URL:
                pytest.skip("GATEWATCH_TEST_POSTGRES_URL is not set")
            folder = tmp_path_factory.mktemp(f"demo-{backend}")
            if backend == "sqlite":
                url = f"sqlite:///{folder / 'demo.db'}"
            else:
                url, schema = _postgres_store_url()
                schemas.append(schema)
            res = gatewatch("--db", url, "demo", *options, cwd=folder)
            assert res.returncode == 0, res.stderr
            built[key] = (url, folder)
        return built[key]

    yield demo_store
    if schemas:
        from collector.db import dispose_engines

        dispose_engines()
        for schema in schemas:
            _drop_schema(schema)


# --- the dashboard under AppTest -----------------------------------------------------------------------


@pytest.fixture
def fresh_dashboard(monkeypatch):
    """No cached query or configuration survives a dashboard test, and no Gatewatch setting of the
    environment leaks in. AppTest runs the app as `__main__` and leaves it there, so a later
    multiprocessing spawn would run the dashboard in its children: the real `__main__` is put back."""
    import sys

    import streamlit as st

    for name in ("GATEWATCH_DB", "GATEWATCH_CONFIG", "GATEWATCH_SLOS", "GATEWATCH_GATE_POLICIES"):
        monkeypatch.delenv(name, raising=False)
    main = sys.modules["__main__"]
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    sys.modules["__main__"] = main
