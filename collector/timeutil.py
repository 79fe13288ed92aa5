"""Parsing of timestamps; everything is returned timezone-aware in UTC (durations: gatewatch.schema)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

UTC = UTC


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_timestamp(value: object) -> datetime:
    """Parse ISO 8601 (with Z or offset), 'YYYY-MM-DD HH:MM:SS +0000', or epoch seconds/ms into UTC.

    Raises ValueError with the accepted forms when the value is none of them.
    """
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, bool):
        raise ValueError("a timestamp, not a boolean")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an ISO 8601 timestamp such as 2024-05-01T12:00:00Z")
    try:  # the common case: ISO 8601 with Z or an offset (Python 3.11 reads both)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return as_utc(parsed)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return parse_timestamp(float(text))
    # GitLab writes '2025-05-02 11:55:16 +0000' and '2025-05-02 11:55:16 UTC'.
    text = re.sub(r"\s+UTC$", "+00:00", text)
    text = re.sub(r"\s+([+-]\d{2}):?(\d{2})$", r"\1:\2", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("an ISO 8601 timestamp such as 2024-05-01T12:00:00Z") from None
    return as_utc(parsed)


def parse_time(text: str, option: str, now: datetime | None = None) -> datetime:
    """A time given on a command line: ISO 8601, or a duration before `now` such as 30m or 2h, from
    FIRST_DAY to LAST_DAY (`analysis.windows`); ConfigError names the option."""
    from analysis.windows import FIRST_DAY, LAST_DAY
    from gatewatch.errors import ConfigError
    from gatewatch.schema import parse_duration

    now = now or utcnow()
    moment: datetime | None
    if text[-1:] in "smhdw" and text[:-1].replace(".", "").isdigit():
        try:
            moment = now - parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"{option}: {exc}") from None
    else:
        try:
            moment = parse_timestamp(text)
        except (ValueError, OverflowError, OSError):  # OverflowError, OSError: beyond the platform's dates
            moment = None
    if moment is None or not FIRST_DAY <= moment.date() < LAST_DAY:
        raise ConfigError(
            f"{option} {text!r}: expected an ISO 8601 time such as 2024-05-01T12:00:00Z (from {FIRST_DAY} "
            f"to {LAST_DAY}), or a duration ago such as 30m"
        )
    return moment


def parse_span(text: str, option: str) -> timedelta:
    """A duration given on a command line (30s, 5m, 24h, 90d, 2w); ConfigError names the option."""
    from gatewatch.errors import ConfigError
    from gatewatch.schema import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None
