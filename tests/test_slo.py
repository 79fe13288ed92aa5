"""SLO figures on hand-worked minute counts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from analysis.slo import status

AT = datetime(2024, 5, 29, 12, 0, tzinfo=timezone.utc)


def minutes(days: float, errors_at: dict[int, int] | None = None, per_minute: int = 1000) -> pd.DataFrame:
    """Counts per minute ending at AT; `errors_at` maps minutes-before-AT to bad events."""
    n = int(days * 24 * 60)
    stamps = [AT - timedelta(minutes=i) for i in range(n)]
    bad = [(errors_at or {}).get(i, 0) for i in range(n)]
    return pd.DataFrame({"timestamp": stamps, "good": [per_minute - b for b in bad], "total": per_minute})


def test_budget_by_hand():
    # 28 days x 1440 min x 1000 = 40,320,000 events; 99.9% allows 40,320 bad; 10,080 bad = a quarter used.
    errors = {i: 1 for i in range(0, 40320, 4)}  # one bad event every 4 minutes, all window long
    s = status(minutes(28, errors), 99.9, timedelta(days=28), AT)
    assert s.total == 40_320_000 and s.budget_total == pytest.approx(40_320)
    assert s.budget_used == 10_080 and s.budget_remaining == pytest.approx(0.75)
    assert s.sli == pytest.approx(1 - 10_080 / 40_320_000)
    assert s.firing == []  # a steady 0.25x burn


def test_fast_burn_pages_only_when_both_windows_exceed():
    # The last 5 minutes burn at 20x (2% errors) and so did the last hour: the 14.4x pair fires.
    errors = {i: 20 for i in range(60)}
    s = status(minutes(3, errors), 0.999, timedelta(days=28), AT)
    page = s.alerts[0]
    assert (page.threshold, page.severity) == (14.4, "page")
    assert page.long_burn_rate == pytest.approx(20.0) and page.short_burn_rate == pytest.approx(20.0)
    assert page.firing
    # 6h at 20 x 60 / 360 = 3.33x and 30m at 20x: the 6x pair does not fire (long window too low).
    assert s.alerts[1].long_burn_rate == pytest.approx(20 * 60 / 360) and not s.alerts[1].firing


def test_a_past_spike_that_stopped_does_not_page():
    errors = {i: 20 for i in range(30, 90)}  # an hour of 20x burn that ended 30 minutes ago
    s = status(minutes(3, errors), 0.999, timedelta(days=28), AT)
    assert s.alerts[0].short_burn_rate == 0.0 and not s.alerts[0].firing


def test_no_events_gives_no_sli_with_a_reason():
    empty = pd.DataFrame({"timestamp": [], "good": [], "total": []})
    s = status(empty, 99.9, timedelta(days=28), AT)
    assert s.sli is None and s.reason and s.firing == []
    with pytest.raises(ValueError, match="objective"):
        status(empty, 100.0, timedelta(days=28), AT)
