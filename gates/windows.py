"""Deployment windows and freeze calendars, time zone aware: "Mon-Thu 09:00-17:00", freezes by date."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(r"^\s*(?P<days>[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?(?:\s*,\s*[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?)*)"
                   r"\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")


@dataclass(frozen=True)
class Slot:
    """Days of the week (0 = Monday) and a local time range [start, end)."""

    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True)
class Freeze:
    """No deployments on these local dates (inclusive), with the reason given."""

    first: date
    last: date
    reason: str = "freeze"


@dataclass(frozen=True)
class DeployWindow:
    """When deployments may go on: any allowed slot, and no freeze."""

    timezone: str
    slots: tuple[Slot, ...]
    freezes: tuple[Freeze, ...] = ()

    def check(self, at: datetime) -> tuple[bool, str]:
        """(allowed, reason in plain words) at an aware datetime."""
        local = at.astimezone(ZoneInfo(self.timezone))
        stamp = f"{local:%a %Y-%m-%d %H:%M} {self.timezone}"
        for freeze in self.freezes:
            if freeze.first <= local.date() <= freeze.last:
                return False, f"{stamp} is inside the freeze {freeze.first}..{freeze.last} ({freeze.reason})"
        if not self.slots:
            return True, f"{stamp}: no window restrictions"
        for slot in self.slots:
            if local.weekday() in slot.days and slot.start <= local.time() < slot.end:
                return True, f"{stamp} is inside the deployment window"
        return False, f"{stamp} is outside the deployment window"


def _day(name: str, spec: str) -> int:
    key = name.strip().lower()
    if key not in DAYS:
        raise ValueError(f"deploy_window.allow {spec!r}: unknown day {name!r}; use Mon, Tue, ... Sun")
    return DAYS.index(key)


def _time(text: str, spec: str) -> time:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours == 24 and minutes == 0:
        return time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(f"deploy_window.allow {spec!r}: {text} is not a time of day")
    return time(hours, minutes)


def parse_slot(spec: str) -> Slot:
    """'Mon-Thu 09:00-17:00', 'Mon,Wed 10:00-12:00', 'Fri 09:00-12:00'."""
    match = _SPEC.match(spec or "")
    if not match:
        raise ValueError(f"deploy_window.allow {spec!r}: expected days and hours such as 'Mon-Thu 09:00-17:00'")
    days: set[int] = set()
    for part in match["days"].split(","):
        bounds = [p.strip() for p in part.split("-")]
        first = _day(bounds[0], spec)
        last = _day(bounds[-1], spec)
        day = first
        while True:
            days.add(day)
            if day == last:
                break
            day = (day + 1) % 7
    start, end = _time(match["start"], spec), _time(match["end"], spec)
    if end <= start:
        raise ValueError(f"deploy_window.allow {spec!r}: the end must be after the start")
    return Slot(frozenset(days), start, end)


def parse_window(raw: dict) -> DeployWindow:
    """A deploy_window check's settings: timezone, allow (slots), freeze (list of {from, to, reason})."""
    zone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"deploy_window.timezone: unknown time zone {zone!r}; use an IANA name such as "
                         "Europe/Berlin") from None
    allow = raw.get("allow") or []
    if isinstance(allow, str):
        allow = [allow]
    freezes = []
    for i, item in enumerate(raw.get("freeze") or []):
        try:
            first = date.fromisoformat(str(item["from"]))
            last = date.fromisoformat(str(item.get("to", item["from"])))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"deploy_window.freeze[{i}]: expected {{from: YYYY-MM-DD, to: YYYY-MM-DD, "
                             "reason: ...}}") from None
        freezes.append(Freeze(first, last, str(item.get("reason", "freeze"))))
    return DeployWindow(zone, tuple(parse_slot(s) for s in allow), tuple(freezes))
