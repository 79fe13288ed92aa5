"""Parsing of timestamps and durations; everything is returned timezone-aware in UTC."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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


def parse_duration(text: str) -> timedelta:
    """Parse '30d', '12h', '90m', '45s' or '2w' into a timedelta."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit s, m, h, d or w, e.g. 30d")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: float(amount)})
