"""What a value must be to fit a column of the store on every database, read from the table definitions
in `collector.models` (so the check cannot drift from the schema): strings within the column's length
and free of NUL characters (PostgreSQL refuses them), integers within the column's range (PostgreSQL's
INTEGER is 32 bits; SQLite takes 64), floats finite. A value that fits is written the same on SQLite and
PostgreSQL; one that does not is refused before the write, with the column named."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Column, Float, Integer, SmallInteger, String, Table

_INTEGER_BITS = ((BigInteger, 64), (SmallInteger, 16), (Integer, 32))  # subclasses before Integer


@dataclass(frozen=True, slots=True)
class Limit:
    """What one column holds: a string length (None: any), an integer range (None: not an integer column)."""

    length: int | None = None
    low: int | None = None
    high: int | None = None
    number: bool = False  # a numeric column: a float in it must be finite


def limit(column: Column) -> Limit:
    """The limits of `column`, read from its type."""
    kind = column.type
    length = kind.length if isinstance(kind, String) else None
    for integer, bits in _INTEGER_BITS:
        if isinstance(kind, integer):
            return Limit(length, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, True)
    return Limit(length, number=isinstance(kind, Float))


@cache
def _limits(table: Table) -> dict[str, Limit]:
    return {column.name: limit(column) for column in table.columns}


def _misfit(lim: Limit, value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        if lim.length is not None and len(value) > lim.length:
            return f"a string of at most {lim.length} characters"
        return "a string without NUL (U+0000) characters" if "\x00" in value else None
    if kind is int and lim.low is not None and not lim.low <= value <= (lim.high or 0):
        return f"an integer from {lim.low} to {lim.high}"
    if kind is float and lim.number and not math.isfinite(value):
        return "a finite number"
    return None


def misfit(column: Column, value: Any) -> str | None:
    """What `value` should be to fit `column` (e.g. "a string of at most 255 characters"), or None if it fits."""
    return _misfit(limit(column), value)


def misfits(table: Table, values: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(column, what it should be, value) for each value of a row of `table` that does not fit its column."""
    limits = _limits(table)
    for name, value in values.items():
        if value is None or value is True or value is False:
            continue
        lim = limits.get(name)
        if lim is not None:
            problem = _misfit(lim, value)
            if problem is not None:
                yield name, problem, value
