"""SLO figures on hand-worked minute counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analysis.slo import status
from gatewatch.errors import SloError

AT = datetime(2024, 5, 29, 12, 0, tzinfo=UTC)


def minutes(days: float, errors_at: dict[int, int] | None = None, per_minute: int = 1000) -> pd.DataFrame:
    """Counts per minute ending at AT; `errors_at` maps minutes-before-AT to bad events."""
    n = int(days * 24 * 60)
    stamps = [AT - timedelta(minutes=i) for i in range(n)]
    bad = [(errors_at or {}).get(i, 0) for i in range(n)]
    return pd.DataFrame({"timestamp": stamps, "good": [per_minute - b for b in bad], "total": per_minute})


def test_budget_by_hand():
    # 28 days x 1440 min x 1000 = 40,320,000 events; 99.9% allows 40,320 bad; 10,080 bad = a quarter used.
    errors = dict.fromkeys(range(0, 40320, 4), 1)  # one bad event every 4 minutes, all window long
    s = status(minutes(28, errors), 99.9, timedelta(days=28), AT)
    assert s.total == 40_320_000 and s.budget_total == pytest.approx(40_320)
    assert s.budget_used == 10_080 and s.budget_remaining == pytest.approx(0.75)
    assert s.sli == pytest.approx(1 - 10_080 / 40_320_000)
    assert s.firing == []  # a steady 0.25x burn


def test_fast_burn_pages_only_when_both_windows_exceed():
    # The last 5 minutes burn at 20x (2% errors) and so did the last hour: the 14.4x pair fires.
    errors = dict.fromkeys(range(60), 20)
    s = status(minutes(3, errors), 0.999, timedelta(days=28), AT)
    page = s.alerts[0]
    assert (page.threshold, page.severity) == (14.4, "page")
    assert page.long_burn_rate == pytest.approx(20.0) and page.short_burn_rate == pytest.approx(20.0)
    assert page.firing
    # 6h at 20 x 60 / 360 = 3.33x and 30m at 20x: the 6x pair does not fire (long window too low).
    assert s.alerts[1].long_burn_rate == pytest.approx(20 * 60 / 360) and not s.alerts[1].firing


def test_a_past_spike_that_stopped_does_not_page():
    errors = dict.fromkeys(range(30, 90), 20)  # an hour of 20x burn that ended 30 minutes ago
    s = status(minutes(3, errors), 0.999, timedelta(days=28), AT)
    assert s.alerts[0].short_burn_rate == 0.0 and not s.alerts[0].firing


def test_no_events_gives_no_sli_with_a_reason():
    empty = pd.DataFrame({"timestamp": [], "good": [], "total": []})
    s = status(empty, 99.9, timedelta(days=28), AT)
    assert s.sli is None and s.reason and s.firing == []
    with pytest.raises(SloError, match="objective"):
        status(empty, 100.0, timedelta(days=28), AT)


def test_window_sums_and_server_sums_share_one_computation():
    from analysis.slo import from_sums, spans, window_sums

    frame = minutes(3, dict.fromkeys(range(60), 20))
    windows = spans(timedelta(days=28))
    assert windows == [
        timedelta(days=28),
        timedelta(hours=1),
        timedelta(minutes=5),
        timedelta(hours=6),
        timedelta(minutes=30),
        timedelta(days=1),
        timedelta(hours=2),
        timedelta(days=3),
    ]
    sums = window_sums(frame, AT, windows)
    assert sums[timedelta(minutes=5)] == (5 * 980, 5 * 1000) and sums[timedelta(days=28)][1] == 3 * 1440 * 1000
    assert from_sums(99.9, timedelta(days=28), AT, sums) == status(frame, 99.9, timedelta(days=28), AT)
    # sums as a server reports them (any span -> good, total): 1,200 bad of 4,320,000 allows 4,320
    server = {**dict.fromkeys(windows, (1000.0, 1000.0)), timedelta(days=28): (4_318_800.0, 4_320_000.0)}
    s = from_sums(99.9, timedelta(days=28), AT, server)
    assert s.budget_remaining == pytest.approx(1 - 1200 / 4320) and s.firing == []
    with pytest.raises(ValueError, match="missing 3d"):
        from_sums(99.9, timedelta(days=28), AT, {w: v for w, v in server.items() if w != timedelta(days=3)})


def test_frame_history_is_the_status_at_each_time():
    from analysis.slo import frame_history

    frame = minutes(3, dict.fromkeys(range(0, 600, 3), 5))
    times = [AT - timedelta(hours=h) for h in (12, 6, 2, 0)]
    history = frame_history(frame, 99.9, timedelta(days=1), times)
    assert list(history.columns) == ["at", "sli", "budget_remaining"]
    for row, at in zip(history.itertuples(), times):
        s = status(frame, 99.9, timedelta(days=1), at)
        assert row.at == pd.Timestamp(at) and row.sli == pytest.approx(s.sli)
        assert row.budget_remaining == pytest.approx(s.budget_remaining)
    # at AT: 200 minutes with 5 bad = 1,000 bad of 1,440,000 in the day, 1,440 allowed
    assert history["budget_remaining"].iloc[-1] == pytest.approx(1 - 1000 / 1440)
    empty = frame_history(frame, 99.9, timedelta(hours=1), [AT + timedelta(days=1)])
    assert empty["sli"].isna().all() and empty["budget_remaining"].isna().all()


def test_burn_rate_history_matches_counting_the_minutes_by_hand():
    """The 1h and 6h burn rates at each time equal the bad share of the minutes in (t - span, t] over the
    allowed 0.1%, counted row by row, and the page alerts' thresholds come with them."""
    from analysis.slo import frame_burn_history

    # 20 bad a minute in the last 30 minutes, 4 a minute from 30 minutes to 3 hours back, none before.
    errors = {i: 20 if i < 30 else 4 for i in range(180)}
    frame = minutes(1, errors)
    times = [AT - timedelta(minutes=m) for m in (600, 240, 120, 45, 0)]
    history = frame_burn_history(frame, 99.9, times)
    assert list(history.columns) == ["at", "window", "burn_rate", "threshold", "severity"]

    def by_hand(at: datetime, span: timedelta) -> float:
        bad = total = 0
        for row in frame.itertuples():
            if at - span < row.timestamp <= at:
                bad, total = bad + row.total - row.good, total + row.total
        return bad / total / 0.001

    for span, label, threshold in ((timedelta(hours=1), "1h", 14.4), (timedelta(hours=6), "6h", 6.0)):
        rows = history[history["window"] == label]
        assert list(rows["at"]) == [pd.Timestamp(t) for t in times]
        assert list(rows["burn_rate"]) == pytest.approx([by_hand(t, span) for t in times])
        assert set(rows["threshold"]) == {threshold} and set(rows["severity"]) == {"page"}
    one_hour = history[history["window"] == "1h"].set_index("at")["burn_rate"]
    # now: 30 x 20 + 30 x 4 = 720 bad of 60,000 = 12x; 45 minutes ago: 60 x 4 = 240 bad = 4x; 10 hours ago: 0.
    assert one_hour[pd.Timestamp(AT)] == pytest.approx(12.0)
    assert one_hour[pd.Timestamp(AT - timedelta(minutes=45))] == pytest.approx(4.0)
    assert one_hour[pd.Timestamp(AT - timedelta(minutes=600))] == 0.0
    # The last point is the status's burn rate (the same sums).
    s = status(frame, 99.9, timedelta(days=28), AT)
    assert one_hour.iloc[-1] == pytest.approx(s.alerts[0].long_burn_rate)
    # A time before the data: no events, no burn rate (not zero).
    early = frame_burn_history(frame, 99.9, [AT - timedelta(days=2)])
    assert early["burn_rate"].isna().all()
