"""What a value must be to fit a column of the store on every database, read from the table definitions
in `collector.models` (so the check cannot drift from the schema): strings within the column's length
and free of NUL characters (PostgreSQL refuses them), integers within the column's range (PostgreSQL's
INTEGER is 32 bits; SQLite takes 64), floats finite. A value that fits is written the same on SQLite and
PostgreSQL; one that does not is refused before the write, with the column named."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import BigInteger, Column, Float, Integer, SmallInteger, String, Table

_INTEGER_BITS = ((BigInteger, 64), (SmallInteger, 16), (Integer, 32))  # subclasses before Integer


def _integer_range(column: Column) -> tuple[int, int] | None:
    for kind, bits in _INTEGER_BITS:
        if isinstance(column.type, kind):
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return None


def misfit(column: Column, value: Any) -> str | None:
    """What `value` should be to fit `column` (e.g. "a string of at most 255 characters"), or None if it fits."""
    if value is None:
        return None
    if isinstance(value, str):
        length = getattr(column.type, "length", None) if isinstance(column.type, String) else None
        if length is not None and len(value) > length:
            return f"a string of at most {length} characters"
        if "\x00" in value:
            return "a string without NUL (U+0000) characters"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        bounds = _integer_range(column)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return f"an integer from {bounds[0]} to {bounds[1]}"
        return None
    if isinstance(value, float) and isinstance(column.type, Float | Integer) and not math.isfinite(value):
        return "a finite number"
    return None


def misfits(table: Table, values: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(column, what it should be, value) for each value of a row of `table` that does not fit its column."""
    for name, value in values.items():
        column = table.c.get(name)
        if column is not None:
            problem = misfit(column, value)
            if problem is not None:
                yield name, problem, value
