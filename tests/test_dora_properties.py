"""Properties of the DORA report on generated frames: bounds, consistency, and order independence."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.dora import DoraFrames, report
from analysis.windows import window_between

WINDOW = window_between(date(2024, 1, 1), date(2024, 1, 29), "Europe/Berlin")
T0 = pd.Timestamp("2023-12-25T00:00:00Z")


@st.composite
def frames(draw):
    n = draw(st.integers(0, 40))
    services = ["a", "b", "c"]
    minutes = draw(st.lists(st.integers(0, 50 * 24 * 60), min_size=n, max_size=n, unique=True))
    deps = []
    for i, m in enumerate(minutes):
        rollback_of = draw(st.one_of(st.none(), st.sampled_from([f"d{j}" for j in range(n)]))) if n else None
        deps.append(
            {
                "id": f"d{i}",
                "service": draw(st.sampled_from(services)),
                "team": "t",
                "finished_at": T0 + pd.Timedelta(minutes=m),
                "status": draw(st.sampled_from(["success", "success", "rolled_back"])),
                "rollback_of": rollback_of,
                "is_rollback": draw(st.booleans()) and rollback_of is None,
                "hotfix": draw(st.booleans()),
            }
        )
    k = draw(st.integers(0, 30))
    changes = []
    for j in range(k):
        lead = draw(st.integers(-60, 30 * 24 * 60))  # negative: a commit clock ahead of the deploy
        first = T0 + pd.Timedelta(minutes=draw(st.integers(0, 50 * 24 * 60)))
        changes.append(
            {"change_id": f"c{j}", "committed_at": first - pd.Timedelta(minutes=lead), "first_deployed_at": first}
        )
    m = draw(st.integers(0, 15))
    incidents = []
    for j in range(m):
        opened = T0 + pd.Timedelta(minutes=draw(st.integers(0, 50 * 24 * 60)))
        resolved = draw(st.one_of(st.none(), st.integers(0, 3 * 24 * 60)))
        incidents.append(
            {
                "id": f"i{j}",
                "service": draw(st.sampled_from(services)),
                "opened_at": opened,
                "resolved_at": None if resolved is None else opened + pd.Timedelta(minutes=resolved),
                "deployment_id": draw(st.one_of(st.none(), st.sampled_from([f"d{x}" for x in range(n)])))
                if n
                else None,
            }
        )

    def df(rows, columns):
        out = pd.DataFrame(rows, columns=columns)
        for col in columns:
            if col.endswith("_at"):
                out[col] = pd.to_datetime(out[col], utc=True)
        return out

    return DoraFrames(
        deployments=df(
            deps, ["id", "service", "team", "finished_at", "status", "rollback_of", "is_rollback", "hotfix"]
        ),
        changes=df(changes, ["change_id", "committed_at", "first_deployed_at"]),
        incidents=df(incidents, ["id", "service", "opened_at", "resolved_at", "deployment_id"]),
    )


def check_bounds(r):
    for key in ("deploy_day_share",):
        v = r["deployment_frequency"][key]
        assert v is None or 0 <= v <= 1
    for metric in ("change_failure_rate", "rework_rate"):
        v = r[metric]["rate"]
        assert v is None or 0 <= v <= 1
    for metric, fields in (
        ("lead_time", ("median_hours", "p75_hours", "p90_hours", "mean_hours")),
        ("recovery_time", ("median_hours", "p90_hours", "mean_hours")),
    ):
        for f in fields:
            v = r[metric][f]
            assert v is None or v >= 0
    rt = r["recovery_time"]
    assert rt["recovered"] + rt["open"] == rt["failures"] == r["change_failure_rate"]["failed"]
    assert r["change_failure_rate"]["failed"] <= r["deployment_frequency"]["deployments"]


@settings(max_examples=60, deadline=None)
@given(frames(), st.randoms(use_true_random=False))
def test_bounds_consistency_and_row_order_independence(f, rnd):
    r = report(f, WINDOW, by="week")
    check_bounds(r)
    for item in r["series"]:
        check_bounds(item)
    series = r["series"]
    assert sum(i["deployment_frequency"]["deployments"] for i in series) == r["deployment_frequency"]["deployments"]
    assert sum(i["change_failure_rate"]["failed"] for i in series) == r["change_failure_rate"]["failed"]
    assert sum(i["lead_time"]["changes"] for i in series) == r["lead_time"]["changes"]
    assert sum(i["rework_rate"]["rework"] for i in series) == r["rework_rate"]["rework"]

    def shuffled(frame):
        index = list(frame.index)
        rnd.shuffle(index)
        return frame.loc[index].reset_index(drop=True)

    other = DoraFrames(shuffled(f.deployments), shuffled(f.changes), shuffled(f.incidents))
    assert report(other, WINDOW, by="week") == r


def test_link_window_bound_is_exclusive_of_later_deployments():
    """An incident opened exactly when a deployment finished is not blamed on it (it was already open)."""
    at = pd.Timestamp("2024-01-10T10:00:00Z")
    f = DoraFrames(
        deployments=pd.DataFrame(
            [
                {
                    "id": "d",
                    "service": "a",
                    "team": None,
                    "finished_at": at,
                    "status": "success",
                    "rollback_of": None,
                    "is_rollback": False,
                    "hotfix": False,
                }
            ]
        ),
        changes=pd.DataFrame(columns=["change_id", "committed_at", "first_deployed_at"]),
        incidents=pd.DataFrame(
            [
                {
                    "id": "i",
                    "service": "a",
                    "opened_at": at,
                    "resolved_at": at + timedelta(hours=1),
                    "deployment_id": None,
                }
            ]
        ),
    )
    assert report(f, WINDOW)["change_failure_rate"]["failed"] == 0
    f.incidents.loc[0, "opened_at"] = at + timedelta(seconds=1)
    assert report(f, WINDOW)["change_failure_rate"]["failed"] == 1
