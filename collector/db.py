"""Where the store is and how to reach it: URL resolution, engines, and Alembic migrations
applied on first use of a database."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, DateTime, Engine, Table, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from gatewatch.errors import StoreError

from .config import store_url
from .redaction import mask_url, remember_url_credentials, scrub
from .timeutil import UTC

P = ParamSpec("P")
R = TypeVar("R")
MIGRATIONS = Path(__file__).with_name("migrations")
_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()
_ADVISORY_LOCK_ID = 0x6761_7465  # "gate": serialises concurrent migrations on PostgreSQL


def resolve_url(url: str | None = None) -> str:
    """The store URL: the explicit `url` (from --db), else GATEWATCH_DB, else ./gatewatch.db
    (`collector.config.store_url`)."""
    return store_url(url)


def store_failure(exc: SQLAlchemyError) -> StoreError:
    """A database error as the one the user reads (the first line of the driver's message, scrubbed of
    the store's password)."""
    return StoreError(f"store failure: {exc.__class__.__name__}: {_first_line(exc)}")


def _first_line(exc: Exception) -> str:
    return scrub(str(exc).splitlines()[0]) if str(exc) else ""


@contextmanager
def store_errors() -> Iterator[None]:
    """SQLAlchemy's errors inside as StoreError: where Gatewatch meets the database library."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise store_failure(exc) from exc


def translates_store_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a public collector function: SQLAlchemy's errors leave it as StoreError."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with store_errors():
            return fn(*args, **kwargs)

    return wrapper


def in_memory(url: URL) -> bool:
    """Whether `url` names an in-memory SQLite database (each connection has its own, nothing on disk)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


@cache
def _check_sqlite_library() -> None:
    """Fail clearly when Python's SQLite library lacks what the store's queries use: the JSON
    functions (built in since SQLite 3.38; older builds may lack them) and recursive queries."""
    try:
        with closing(sqlite3.connect(":memory:")) as probe:
            probe.execute("WITH RECURSIVE r(n) AS (SELECT 1) SELECT json_group_array(n) FROM r").fetchall()
    except sqlite3.OperationalError as exc:
        raise StoreError(
            f"this Python's SQLite library ({sqlite3.sqlite_version}) cannot run the store's "
            f"queries ({exc}): use a Python built with SQLite 3.38 or newer, or PostgreSQL"
        ) from None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised through every test
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        if not in_memory(engine.url):
            cur.execute("PRAGMA journal_mode = WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front so two collectors never deadlock on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def create_store_engine(url: str | None = None) -> Engine:
    """A new engine for the store at `url` (resolved as in `resolve_url`)."""
    resolved = resolve_url(url)
    remember_url_credentials(resolved)  # a driver's error may quote them: scrubbed wherever shown
    try:
        parsed = make_url(resolved)
    except (ArgumentError, ValueError):
        raise StoreError(
            "invalid database URL (--db or GATEWATCH_DB; not shown, it may hold a password): expected e.g. "
            "sqlite:///gatewatch.db or postgresql://user@host:5432/db"
        ) from None
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        if not in_memory(parsed):
            folder = Path(parsed.database or "").expanduser().resolve().parent
            if not folder.is_dir():
                raise StoreError(f"cannot create the SQLite store: folder {str(folder)!r} does not exist")
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
    try:
        engine = create_engine(resolved, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use database URL {mask_url(resolved)}: {scrub(str(exc))}") from None
    if engine.dialect.name == "sqlite":
        _check_sqlite_library()
        _configure_sqlite(engine)
    return engine


def _alembic_config(connection: Connection):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration shipped with this version."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)  # type: ignore[arg-type]
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration a database is at (None for a new database)."""
    with store_errors():
        return _revision(engine)


def _revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply pending migrations; returns (revision before, revision after)."""
    from alembic import command

    try:
        before = _revision(engine)
        head = head_revision()
        if before == head:
            return before, head
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            else:
                # BEGIN IMMEDIATE: another process migrating the same file is waited for (busy timeout),
                # and Alembic then reads the revision it left inside this transaction.
                conn.execution_options(write=True).begin()
            try:
                command.upgrade(_alembic_config(conn), "head")
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _ADVISORY_LOCK_ID})
                    conn.commit()
        return before, head
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot migrate the store at {_shown(engine)}: {exc.__class__.__name__}: {_first_line(exc)}"
        ) from None


def get_engine(url: str | None = None, migrate: bool = True) -> Engine:
    """The shared engine for a store, migrated to the current schema on first use unless `migrate` is
    False (a reader such as the dashboard never changes the store, so a read-only role works)."""
    resolved = resolve_url(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _engines[resolved] = create_store_engine(resolved)
        if migrate and resolved not in _migrated:
            upgrade(engine)
            _migrated.add(resolved)
    return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, and before forking worker processes)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that takes the write lock at BEGIN on SQLite; commits on success."""
    with engine.connect() as conn:
        conn = conn.execution_options(write=True)
        with conn.begin():
            yield conn


def ping(engine: Engine) -> None:
    """Raise StoreError unless the store answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StoreError(f"store unreachable at {_shown(engine)}: {_first_line(exc)}") from None


def _shown(engine: Engine) -> str:
    """The engine's URL with its password and credential-like query values masked."""
    return mask_url(str(engine.url))  # str() already hides the userinfo password


def key_filter(column, dialect_name: str, name: str = "keys"):
    """`column IN (keys)` in the form each database plans well: one array parameter on PostgreSQL
    (a long IN list of parameters can tip its planner into a sequential scan on a young table),
    an expanding IN list elsewhere. Pass the keys as a list under `name`."""
    if dialect_name == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    from sqlalchemy import bindparam

    return column.in_(bindparam(name, expanding=True))


KEY_CHUNK = {"postgresql": 20_000}  # keys per lookup; SQLite's parameter limit wants small chunks
DEFAULT_KEY_CHUNK = 900


def _sqlite_datetime(value: datetime) -> str:
    # The exact text SQLAlchemy's SQLite DateTime writes, so reads through the models agree.
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; pass a timezone-aware value")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def bulk_insert(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Insert many rows through the driver's executemany, skipping per-value ORM processing.

    Rows must hold every column of `table` except an autoincrement key; datetimes must be aware.
    """
    if not rows:
        return
    columns = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
    dialect = conn.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(dialect.identifier_preparer.quote(c) for c in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    params: list[list[Any]] = [list(map(row.get, columns)) for row in rows]
    stamps = [
        i
        for i, c in enumerate(columns)
        if isinstance(table.c[c].type, DateTime) or isinstance(getattr(table.c[c].type, "impl", None), DateTime)
    ]
    if dialect.name != "sqlite":
        if any(values[i] is not None and values[i].tzinfo is None for values in params for i in stamps):
            raise ValueError("naive datetime given to the store; pass a timezone-aware value")
    else:
        texts: dict[datetime, str] = {}  # events repeat their timestamps across columns and rows
        for values in params:
            for i in stamps:
                stamp = values[i]
                if stamp is not None:
                    text_value = texts.get(stamp)
                    if text_value is None:
                        text_value = texts[stamp] = _sqlite_datetime(stamp)
                    values[i] = text_value
    conn.exec_driver_sql(sql, [tuple(values) for values in params])
