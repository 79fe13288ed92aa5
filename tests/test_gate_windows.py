"""Deployment windows and freezes across time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gates.windows import parse_slot, parse_window


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_berlin_office_hours_across_dst():
    window = parse_window({"timezone": "Europe/Berlin", "allow": ["Mon-Thu 09:00-17:00"]})
    # Thursday 2024-03-28 08:30 UTC is 09:30 in Berlin (CET, +1): allowed.
    assert window.check(utc("2024-03-28T08:30:00"))[0]
    # Monday 2024-04-01 07:30 UTC is 09:30 in Berlin (CEST, +2): allowed; 06:30 UTC is 08:30: not.
    assert window.check(utc("2024-04-01T07:30:00"))[0]
    allowed, reason = window.check(utc("2024-04-01T06:30:00"))
    assert not allowed and reason == "Mon 2024-04-01 08:30 Europe/Berlin is outside the deployment window"
    # Friday is not in Mon-Thu; Thursday 17:00 is the end (excluded).
    assert not window.check(utc("2024-04-05T10:00:00"))[0]
    assert not window.check(utc("2024-04-04T15:00:00"))[0]


def test_freeze_wins_over_the_window():
    window = parse_window(
        {
            "timezone": "America/New_York",
            "allow": ["Mon-Fri 00:00-24:00"],
            "freeze": [{"from": "2024-12-23", "to": "2025-01-01", "reason": "holidays"}],
        }
    )
    assert window.check(utc("2024-12-20T15:00:00"))[0]  # Friday 10:00 in New York
    allowed, reason = window.check(utc("2024-12-23T15:00:00"))
    assert not allowed and "freeze 2024-12-23..2025-01-01 (holidays)" in reason
    # 04:30 UTC on 2 January is still 1 January in New York: frozen; a day later it is not.
    assert not window.check(utc("2025-01-02T04:30:00"))[0]
    assert window.check(utc("2025-01-02T15:00:00"))[0]


def test_day_lists_and_wrapping_ranges():
    assert parse_slot("Mon,Wed 10:00-12:00").days == frozenset({0, 2})
    assert parse_slot("Fri-Mon 08:00-18:00").days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize(
    "spec, message",
    [
        ("weekdays 9-5", "expected days and hours"),
        ("Mon-Thu 17:00-09:00", "end must be after the start"),
        ("Mun 09:00-10:00", "unknown day 'Mun'"),
        ("Mon 25:00-26:00", "not a time of day"),
    ],
)
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_slot(spec)
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_window({"timezone": "Mars/Base", "allow": []})
