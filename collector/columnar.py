"""Columnar reads of large selects from a SQLite store file, through the Arrow ADBC SQLite driver.

The DB-API driver builds a Python tuple and a Python object per value; ADBC fills Arrow arrays in C,
which makes a several-hundred-thousand-row read several times cheaper. The statement is compiled by
SQLAlchemy with bound parameters (processed by their column types exactly as an execute would), so
the SQL is the same one the DB-API path runs.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection
from sqlalchemy.sql import Select

BUSY_TIMEOUT_MS = 30_000  # as the store's engine (collector.db)
# The driver infers each column's type from its first batch and fails on a later value of another
# type (a column NULL for the first thousand rows, say): one batch, so it sees every row.
_BATCH_ROWS = str(2**30)


def sqlite_file(conn: Connection) -> str | None:
    """The database file behind a SQLite connection, or None (another database, memory, a URI)."""
    url = conn.engine.url
    if url.get_backend_name() != "sqlite" or url.query:
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def driver_statement(stmt: Select, dialect) -> tuple[str, tuple]:
    """The SQL text and positional parameters SQLAlchemy would send to the driver for `stmt`."""
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    params = []
    for name in compiled.positiontup or ():
        # An expanded IN parameter is named after its bind with a _<n> suffix.
        bind = binds[name] if name in binds else binds[name.rsplit("_", 1)[0]]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        value = values[name]
        params.append(process(value) if process is not None else value)
    return compiled.string, tuple(params)


def read_arrow(conn: Connection, stmt: Select) -> pa.Table:
    """Run `stmt` on the SQLite file behind `conn` (a separate read connection) and return Arrow."""
    import adbc_driver_sqlite.dbapi as adbc

    path = sqlite_file(conn)
    if path is None:
        raise ValueError("columnar reads need a SQLite store file")
    sql, params = driver_statement(stmt, conn.dialect)
    with adbc.connect(path) as db, db.cursor() as cur:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.fetchall()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _BATCH_ROWS})
        cur.execute(sql, parameters=params or None)
        return cur.fetch_arrow_table()


def utc_timestamps(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """SQLite's timestamp text ('YYYY-MM-DD HH:MM:SS[.ffffff]', UTC) as UTC timestamps, parsed in C;
    None when the text is in another form (left to the caller's general parser)."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return None
    try:
        return pc.cast(column, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


__all__ = ["sqlite_file", "driver_statement", "read_arrow", "utc_timestamps"]
