"""Deployment windows and freeze calendars, time zone aware: "Mon-Thu 09:00-17:00", freezes by date."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from gatewatch.schema import LIST, Model, describe

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(
    r"^\s*(?P<days>[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?(?:\s*,\s*[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?)*)"
    r"\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class Slot:
    """Days of the week (0 = Monday) and a local time range [start, end)."""

    days: frozenset[int]
    start: time
    end: time


class Freeze(Model):
    """No deployments on these local dates (inclusive), with the reason given."""

    first: Annotated[date, Field(alias="from", strict=False)]
    last: Annotated[date | None, Field(alias="to", strict=False)] = None
    reason: str = "freeze"

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.last is not None and self.last < self.first:
            raise ValueError(f"to: {self.last} is before from {self.first}")
        return self

    @property
    def until(self) -> date:
        return self.last or self.first


class DeployWindow(Model):
    """When deployments may go on: any allowed slot (none: any time), and no freeze."""

    timezone: str = "UTC"
    allow: Annotated[tuple[str, ...], LIST] = ()
    freeze: Annotated[tuple[Freeze, ...], LIST] = ()
    _slots: tuple[Slot, ...] = PrivateAttr(default=())

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        return parse_zone(zone)

    @field_validator("allow", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value or ()

    @field_validator("freeze", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        return value or ()

    @model_validator(mode="after")
    def _parse(self) -> DeployWindow:
        slots = []
        for spec in self.allow:
            try:
                slots.append(parse_slot(spec))
            except ValueError as exc:
                raise ValueError(f"allow: {exc}") from None
        self._slots = tuple(slots)
        return self

    @property
    def slots(self) -> tuple[Slot, ...]:
        return self._slots

    def check(self, at: datetime) -> tuple[bool, str]:
        """(allowed, reason in plain words) at an aware datetime."""
        local = at.astimezone(ZoneInfo(self.timezone))
        stamp = f"{local:%a %Y-%m-%d %H:%M} {self.timezone}"
        for freeze in self.freeze:
            if freeze.first <= local.date() <= freeze.until:
                return False, f"{stamp} is inside the freeze {freeze.first}..{freeze.until} ({freeze.reason})"
        if not self._slots:
            return True, f"{stamp}: no window restrictions"
        for slot in self._slots:
            if local.weekday() in slot.days and slot.start <= local.time() < slot.end:
                return True, f"{stamp} is inside the deployment window"
        return False, f"{stamp} is outside the deployment window"


def _day(name: str, spec: str) -> int:
    key = name.strip().lower()
    if key not in DAYS:
        raise ValueError(f"{spec!r}: unknown day {name!r}; use Mon, Tue, ... Sun")
    return DAYS.index(key)


def _time(text: str, spec: str) -> time:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours == 24 and minutes == 0:
        return time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(f"{spec!r}: {text} is not a time of day")
    return time(hours, minutes)


def parse_slot(spec: str) -> Slot:
    """'Mon-Thu 09:00-17:00', 'Mon,Wed 10:00-12:00', 'Fri 09:00-12:00'."""
    match = _SPEC.match(spec or "")
    if not match:
        raise ValueError(f"{spec!r}: expected days and hours such as 'Mon-Thu 09:00-17:00'")
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
        raise ValueError(f"{spec!r}: the end must be after the start")
    return Slot(frozenset(days), start, end)


def parse_zone(zone: Any) -> str:
    """An IANA time zone name; ValueError says how to write one."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {zone!r}; use an IANA name such as Europe/Berlin") from None
    return zone


def parse_window(raw: Mapping[str, Any]) -> DeployWindow:
    """A deploy_window check's settings: timezone, allow (slots), freeze (list of {from, to, reason})."""
    try:
        return DeployWindow.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
