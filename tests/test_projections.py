"""Merge rules of the projections, checked on hand-worked rows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from collector import projections
from collector.sources.base import Update

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def run(status, at, **extra):
    return Update("pipeline_runs", "r1", {"source": "t", "status": status, "status_at": at, **extra})


def test_latest_event_wins_and_late_started_never_overwrites_succeeded():
    started = run("in_progress", T0, started_at=T0)
    succeeded = run("succeeded", T0 + timedelta(minutes=5), finished_at=T0 + timedelta(minutes=5))
    for order in ([started, succeeded], [succeeded, started]):
        row = projections.fold(order)["pipeline_runs"]["r1"]
        assert row["status"] == "succeeded"
        assert row["finished_at"] == T0 + timedelta(minutes=5)
        assert row["started_at"] == T0


def test_terminal_status_wins_a_tie_in_time():
    a = run("in_progress", T0)
    b = run("failed", T0, finished_at=T0)
    assert projections.fold([b, a])["pipeline_runs"]["r1"]["status"] == "failed"
    assert projections.fold([a, b])["pipeline_runs"]["r1"]["status"] == "failed"


def test_retry_after_failure_reopens_then_succeeds():
    events = [
        run("in_progress", T0, started_at=T0),
        run("failed", T0 + timedelta(minutes=1), finished_at=T0 + timedelta(minutes=1)),
        run("in_progress", T0 + timedelta(minutes=2)),
        run("succeeded", T0 + timedelta(minutes=3), finished_at=T0 + timedelta(minutes=3)),
    ]
    for perm in itertools.permutations(events):
        row = projections.fold(perm)["pipeline_runs"]["r1"]
        assert (row["status"], row["finished_at"], row["started_at"]) == ("succeeded", T0 + timedelta(minutes=3), T0)
    # Without the final success, the RESUMED state is current and has no finish time.
    row = projections.fold(events[:3][::-1])["pipeline_runs"]["r1"]
    assert row["status"] == "in_progress" and row["finished_at"] is None


def test_flags_are_ored_and_other_columns_keep_the_smallest_value():
    a = Update(
        "stage_runs",
        "s",
        {"pipeline_run_id": "r", "name": "Build", "failed_once": True, "started_at": T0 + timedelta(minutes=1)},
    )
    b = Update("stage_runs", "s", {"pipeline_run_id": "r", "name": "Build", "failed_once": False, "started_at": T0})
    for order in ([a, b], [b, a]):
        row = projections.fold(order)["stage_runs"]["s"]
        assert row["failed_once"] is True and row["started_at"] == T0


@pytest.mark.parametrize(
    "bad, message",
    [
        (Update("nope", "k", {}), "unknown projection table"),
        (Update("deployments", "k", {"colour": "red"}), "unknown column"),
        (Update("deployments", "k", {"status": "done", "status_at": T0}), "is not one of"),
        (Update("deployments", "k", {"finished_at": T0}), "without a status"),
    ],
)
def test_invalid_updates_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        projections.validate(bad)
