"""Reporting windows [start, end) in a time zone, and their day/week/month buckets.

Windows are whole local days: `--since 90d` is today and the 89 days before it (ending at the next
local midnight); `--start`/`--end` are local midnights, `end` excluded. Weeks start on Monday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from gatewatch.errors import ConfigError

BUCKETS = ("day", "week", "month")
# The days a window may span: far enough inside pandas' timestamps (1677-2262) for any link window.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2200, 1, 1)


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) of aware UTC datetimes, with the zone that draws its days."""

    start: datetime
    end: datetime
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}")

    @property
    def days(self) -> float:
        """Length in days (fractional for DST days or odd windows)."""
        return (self.end - self.start) / timedelta(days=1)

    def as_dict(self) -> dict[str, str]:
        """Start and end as ISO 8601 in the window's zone (what reports print)."""
        zone = zone_info(self.tz)
        return {"start": self.start.astimezone(zone).isoformat(), "end": self.end.astimezone(zone).isoformat()}

    @property
    def calendar_days(self) -> int:
        """Local calendar days the window touches."""
        zone = zone_info(self.tz)
        first = self.start.astimezone(zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(zone).date()
        return (last - first).days + 1


def zone_info(name: str) -> ZoneInfo:
    """A time zone by IANA name; ConfigError saying how to write one when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Berlin") from None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def window_between(start: date, end: date, tz: str = "UTC") -> Window:
    """[local midnight of start, local midnight of end)."""
    zone = zone_info(tz)
    return Window(_midnight(start, zone), _midnight(end, zone), tz)


def window_since(days: int, now: datetime, tz: str = "UTC") -> Window:
    """The last `days` local days up to and including today."""
    if days < 1:
        raise ValueError("--since must cover at least one day, e.g. 90d")
    zone = zone_info(tz)
    today = now.astimezone(zone).date()
    return window_between(today - timedelta(days=days - 1), today + timedelta(days=1), tz)


def buckets(window: Window, by: str) -> list[Window]:
    """Consecutive day, week (Monday) or month buckets covering the window, clipped to it."""
    if by not in BUCKETS:
        raise ValueError(f"--by must be one of {', '.join(BUCKETS)}, got {by!r}")
    zone = zone_info(window.tz)
    local_start = window.start.astimezone(zone).date()
    if by == "week":
        first = local_start - timedelta(days=local_start.weekday())
    elif by == "month":
        first = local_start.replace(day=1)
    else:
        first = local_start
    out = []
    current = first
    while True:
        if by == "day":
            following = current + timedelta(days=1)
        elif by == "week":
            following = current + timedelta(days=7)
        else:
            following = (pd.Timestamp(current) + pd.offsets.MonthBegin(1)).date()
        lo, hi = max(_midnight(current, zone), window.start), min(_midnight(following, zone), window.end)
        if lo >= window.end:
            break
        if hi > lo:
            out.append(Window(lo, hi, window.tz))
        current = following
    return out
