"""The seeds' SLIs as the seeds define them (issue 17, part 3), on one hand-worked week: deployment
success rate without rolled-back deployments (M1), PR merge to production (M3), time to rollback from
detection (M5), superseded executions. Each figure is checked against a plain-Python computation of
its definition, pure, through the loader on SQLite and PostgreSQL, `gatewatch pipelines --json`, and
the dashboard's Pipelines page."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analysis.alarms import link_alarms
from analysis.pipelines import PipelineFrames, report
from analysis.windows import window_between
from collector.db import bulk_insert, write_transaction
from collector.loaders import load_pipeline_frames
from collector.models import (
    alarms,
    canary_runs,
    changes,
    deployment_changes,
    deployments,
    gate_decisions,
    incidents,
    pipeline_runs,
)
from gatewatch.services.delivery import pipeline_report

START, END = date(2024, 5, 1), date(2024, 5, 8)
WINDOW = window_between(START, END)
HOUR = timedelta(hours=1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """May `day`, 2024 (0 is April 30) at hour:minute UTC."""
    return datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=day - 1, hours=hour, minutes=minute)


# id, service, environment, production, status, finished_at, rollback_of, is_rollback
DEPLOYS = [
    ("o1", "web", "production", True, "success", at(-5, 9), None, False),  # rolled back a week later by Ro
    ("o2", "web", "production", True, "success", at(-2, 9), None, False),
    ("c0", "api", "production", True, "success", at(0, 20), None, False),  # api's last before the window
    ("a1", "api", "production", True, "success", at(1, 10), None, False),
    ("R1", "api", "production", True, "success", at(1, 11, 30), None, True),  # CodePipeline rollback: of a1
    ("a2", "api", "production", True, "success", at(2, 9), None, False),
    ("Ro", "web", "production", True, "success", at(2, 9), "o1", True),
    ("s1", "api", "staging", False, "success", at(2, 12), None, False),
    ("p1", "pay", "production", True, "failure", at(3, 10), None, False),
    ("p1r", "pay", "production", True, "success", at(3, 10, 20), "p1", True),  # CodeDeploy-style rollback
    ("a3", "api", "production", True, "success", at(4, 12), None, False),
    ("R3", "api", "production", True, "success", at(4, 13), "a3", True),
    ("a4", "api", "production", True, "success", at(5, 10), None, False),  # a gate decided to roll it back
    ("a6", "api", "production", True, "rolled_back", at(6, 10), None, False),
    ("a5", "api", "production", True, "success", at(7, 23), None, False),
    ("R5", "api", "production", True, "success", at(8, 1), None, True),  # after the window: rolls back a5
]
# id, committed_at, merged_at, deployment, pr
CHANGES = [
    ("ch1", at(1, 5), at(1, 8), "a1", 11),
    ("ch2", at(1, 21), at(2, 3), "a2", 12),
    ("ch4", at(1, 22), None, "a2", None),
    ("ch3", at(4, 6), at(4, 8), "a3", 13),
    ("ch5", None, at(4, 7), "a3", None),  # a CodeCommit push: its time stands in as merged_at, not a PR merge
]
GATES = [  # id, decision, deployment, created_at
    ("g1", "rollback", "a1", at(1, 10, 45)),
    ("g2", "promote", "a3", at(4, 12, 5)),
    ("g3", "rollback", "a4", at(5, 10, 30)),
]
CANARIES = [  # id, verdict, deployment, created_at
    ("k1", "fail", "a1", at(1, 10, 30)),
    ("k2", "pass", "a3", at(4, 12, 10)),
]
INCIDENTS = [("i1", "api", "a3", at(4, 13, 30))]  # id, service, deployment, opened_at (after R3: no evidence)
ALARMS = [  # id, service, started_at
    ("al1", "pay", at(3, 10, 5)),  # 5 min after p1 finished
    ("al2", "api", at(1, 12, 45)),  # 75 min after R1: linked to nothing
    ("al3", "api", at(4, 13, 10)),  # after R3 finished: linked to R3, not a3
    ("al4", "api", at(1, 10, 40)),  # linked to a1, later than its failed canary
]
RUNS = [  # id, status, finished_at
    ("x1", "succeeded", at(2, 10)),
    ("x2", "failed", at(2, 11)),
    ("x3", "superseded", at(2, 12)),
]


def frames(with_alarms: bool = True) -> PipelineFrames:
    """The week as the loader's frames, each change's times folded into its deployment by hand."""
    deps = pd.DataFrame(
        DEPLOYS,
        columns=["id", "service", "environment", "production", "status", "finished_at", "rollback_of", "is_rollback"],
    )
    held = pd.DataFrame(CHANGES, columns=["change", "committed_at", "merged_at", "id", "pr"])
    held["merged_at"] = held["merged_at"].where(held["pr"].notna())  # M3 counts pull/merge request merges
    deps = deps.merge(
        held.groupby("id").agg(first_committed_at=("committed_at", "min"), first_merged_at=("merged_at", "min")),
        left_on="id",
        right_index=True,
        how="left",
    )
    evidence = [(d, "gate", t) for _, decision, d, t in GATES if decision == "rollback"]
    evidence += [(d, "canary", t) for _, verdict, d, t in CANARIES if verdict == "fail"]
    evidence += [(d, "incident", t) for _, _, d, t in INCIDENTS]
    runs = pd.DataFrame(
        [(i, "ci", "api", None, s, None, f - HOUR, f) for i, s, f in RUNS],
        columns=["id", "pipeline", "service", "revision", "status", "queued_at", "started_at", "finished_at"],
    )
    stages = pd.DataFrame(
        columns=["id", "pipeline_run_id", "name", "category", "status", "started_at", "finished_at", "failed_once"]
    )
    actions = pd.DataFrame(
        columns=["id", "pipeline_run_id", "stage_run_id", "name", "category", "status", "started_at", "finished_at"]
    )
    for frame in (stages, actions):
        for col in ("started_at", "finished_at"):
            frame[col] = pd.Series(dtype="datetime64[us, UTC]")
    runs["queued_at"] = pd.Series(pd.NaT, index=runs.index, dtype="datetime64[us, UTC]")
    return PipelineFrames(
        runs,
        stages,
        actions,
        deps,
        detections=pd.DataFrame(evidence, columns=["deployment_id", "kind", "detected_at"]),
        alarms=pd.DataFrame(ALARMS, columns=["id", "service", "started_at"]) if with_alarms else None,
    )


def _stats(values: list[float]) -> tuple[int, float | None, float | None]:
    if not values:
        return 0, None, None
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
    return len(values), round(statistics.mean(values), 4), round(p90, 4)


def by_definition(with_alarms: bool = True) -> dict:
    """The figures computed from the definitions row by row, without pandas."""
    rows = [dict(zip(("id", "service", "env", "prod", "status", "finished", "of", "rb"), d)) for d in DEPLOYS]
    done = sorted(
        (r for r in rows if r["prod"] and r["status"] in ("success", "rolled_back")), key=lambda r: r["finished"]
    )
    target = {}
    for r in rows:
        if r["of"]:
            target[r["id"]] = r["of"]
        elif r["rb"] and r in done:
            earlier = [e for e in done if e["service"] == r["service"] and e["finished"] < r["finished"]]
            target[r["id"]] = earlier[-1]["id"]
    finished = {r["id"]: r["finished"] for r in rows}
    evidence = [(d, t) for _, decision, d, t in GATES if decision == "rollback"]
    evidence += [(d, t) for _, verdict, d, t in CANARIES if verdict == "fail"] + [(d, t) for *_, d, t in INCIDENTS]
    if with_alarms:
        for _, service, started in ALARMS:
            before = [r for r in rows if r["prod"] and r["service"] == service and r["finished"] <= started]
            latest = max(before, key=lambda r: r["finished"], default=None)
            if latest and started - latest["finished"] <= HOUR:
                evidence.append((latest["id"], started))
    gated = {d for _, decision, d, _ in GATES if decision == "rollback"}

    def inside(t):
        return at(1, 0) <= t < at(8, 0)

    attempted = [r for r in rows if inside(r["finished"])]
    rolled_back = {
        r["id"]
        for r in attempted
        if r["status"] == "rolled_back"
        or r["id"] in gated
        or any(target.get(o["id"]) == r["id"] and o["status"] in ("success", "rolled_back") for o in rows)
    }
    successful = [r for r in attempted if r["status"] == "success" and r["id"] not in rolled_back]
    rollbacks = [r for r in attempted if r["id"] in target]
    to_rollback = [(r["finished"] - finished[target[r["id"]]]) / HOUR for r in rollbacks]
    detections = []
    for r in rollbacks:
        seen = [t for d, t in evidence if d == target[r["id"]] and t <= r["finished"]]
        if seen:
            detections.append((r["finished"] - min(seen)) / HOUR)
    merges = []
    for r in attempted:
        merged = [m for _, _, m, d, pr in CHANGES if d == r["id"] and m is not None and pr is not None]
        if r["prod"] and r["status"] in ("success", "rolled_back") and merged:
            merges.append((r["finished"] - min(merged)) / HOUR)
    return {
        "attempted": len(attempted),
        "successful": len(successful),
        "rolled_back": len(rolled_back),
        "time_to_rollback": _stats(to_rollback),
        "detection_to_rollback": _stats(detections),
        "rollbacks": len(rollbacks),
        "merge_to_production": _stats(merges),
    }


def assert_matches_definition(r: dict, with_alarms: bool = True) -> None:
    want = by_definition(with_alarms)
    dep = r["deployments"]
    assert (dep["attempted"], dep["successful"], dep["rolled_back"]) == (
        want["attempted"],
        want["successful"],
        want["rolled_back"],
    )
    for key in ("time_to_rollback", "detection_to_rollback", "merge_to_production"):
        assert (r[key]["count"], r[key]["mean_hours"], r[key]["p90_hours"]) == want[key], key
    assert r["detection_to_rollback"]["rollbacks"] == want["rollbacks"]
    assert r["detection_to_rollback"]["without_detection"] == want["rollbacks"] - want["detection_to_rollback"][0]


def assert_hand_worked(r: dict) -> None:
    # 12 deployments finished in the week; p1 failed; p1, a1, a3 and a5 were rolled back by a rollback
    # (a5's after the week), a4 by a gate's decision, a6 says so: R1, a2, Ro, s1, p1r and R3 succeeded.
    assert r["deployments"] == {
        "attempted": 12,
        "successful": 6,
        "completed": 11,
        "rolled_back": 6,
        "failed": 1,
        "canceled": 0,
        "success_rate": 0.5,
        "completion_rate": round(11 / 12, 4),
    }
    # Superseded: counted, neither finished nor failed.
    assert r["pipeline_runs"] == {"finished": 2, "failed": 1, "failed_rate": 0.5, "superseded": 1}
    assert r["per_pipeline"][0]["superseded"] == 1 and r["per_pipeline"][0]["failed_rate"] == 0.5
    # Rollbacks in the week: R1 (of a1) 1.5 h, Ro (of o1, April 25) 168 h, p1r (of p1) 20 min, R3 (of a3) 1 h.
    ttr = r["time_to_rollback"]
    assert ttr["count"] == 4 and ttr["max_hours"] == 168.0 and ttr["median_hours"] == 1.25
    # Detected: a1 by its failed canary at 10:30 (R1 at 11:30: 1 h), p1 by the pay alarm at 10:05
    # (20 min after p1, 15 min before p1r); a3's passing canary, promote decision, later incident and
    # R3's own alarm are no evidence; o1 has none.
    det = r["detection_to_rollback"]
    assert (det["count"], det["rollbacks"], det["without_detection"]) == (2, 4, 2)
    assert (det["median_hours"], det["mean_hours"], det["max_hours"]) == (0.625, 0.625, 1.0)
    # Merge to production: a1 2 h, a2 6 h (its earliest merge), a3 4 h; commit to production 5, 12, 6 h.
    assert r["merge_to_production"]["median_hours"] == 4.0 and r["merge_to_production"]["p90_hours"] == 5.6
    assert r["time_to_deploy"]["median_hours"] == 6.0 and r["time_to_deploy"]["count"] == 3


def test_the_week_by_hand_and_by_definition():
    r = report(frames(), WINDOW)
    assert_hand_worked(r)
    assert_matches_definition(r)


def test_without_alarm_episodes_the_alarm_detections_are_missing():
    r = report(frames(with_alarms=False), WINDOW)
    assert r["detection_to_rollback"]["without_detection"] == 3  # p1r lost its evidence
    assert_matches_definition(r, with_alarms=False)


def test_link_alarms_takes_the_services_latest_production_deployment_within_the_hour():
    f = frames()
    linked = link_alarms(f.deployments, f.alarms)["deployment_id"]
    assert linked.tolist()[0] == "p1" and pd.isna(linked.iloc[1])
    assert linked.tolist()[2:] == ["R3", "a1"]
    exact = pd.DataFrame([("e", "api", at(1, 11, 30) + HOUR)], columns=["id", "service", "started_at"])
    assert link_alarms(f.deployments, exact)["deployment_id"].tolist() == ["R1"]  # exactly an hour after: still within
    staging_only = f.deployments[~f.deployments["production"]]
    assert link_alarms(staging_only, exact)["deployment_id"].isna().all()


# --- through the store ------------------------------------------------------------------------------------


def fill(engine, with_alarms: bool = True) -> None:
    """The week into a migrated store."""
    none = dict.fromkeys(("team", "version", "revision", "pipeline_run_id", "url", "hotfix"))
    with write_transaction(engine) as conn:
        bulk_insert(
            conn,
            deployments,
            [
                {
                    **none,
                    "id": i,
                    "source": "test",
                    "service": s,
                    "environment": e,
                    "production": p,
                    "status": st,
                    "status_at": f,
                    "started_at": f - HOUR,
                    "finished_at": f,
                    "rollback_of": of,
                    "is_rollback": rb,
                }
                for i, s, e, p, st, f, of, rb in DEPLOYS
            ],
        )
        bulk_insert(
            conn,
            changes,
            [
                {
                    "id": i,
                    "service": "api",
                    "repository": None,
                    "committed_at": c,
                    "merged_at": m,
                    "pr": pr,
                    "author": None,
                    "title": None,
                    "pushed_head": None,
                }
                for i, c, m, _, pr in CHANGES
            ],
        )
        bulk_insert(
            conn,
            deployment_changes,
            [{"id": f"{d}|{i}", "deployment_id": d, "change_id": i} for i, _, _, d, _ in CHANGES],
        )
        for i, decision, d, t in GATES:
            conn.execute(
                gate_decisions.insert().values(
                    id=i, key=i, gate="g", decision=decision, created_at=t, deployment_id=d, checks="[]", reasons="[]",
                    actions="[]",
                )
            )  # fmt: skip
        for i, verdict, d, t in CANARIES:
            conn.execute(
                canary_runs.insert().values(
                    id=i, created_at=t, verdict=verdict, source="test", deployment_id=d, config="{}", result="{}"
                )
            )
        for i, s, d, t in INCIDENTS:
            conn.execute(incidents.insert().values(id=i, source="test", service=s, opened_at=t, deployment_id=d))
        for i, s, f in RUNS:
            conn.execute(
                pipeline_runs.insert().values(
                    id=i, source="test", pipeline="ci", service="api", status=s, started_at=f - HOUR, finished_at=f
                )
            )
        if with_alarms:
            for i, s, t in ALARMS:
                conn.execute(
                    alarms.insert().values(
                        id=i, source="cloudwatch", name=i, service=s, status="alarm", status_at=t, started_at=t
                    )
                )


@pytest.mark.parametrize("with_alarms", [True, False], ids=["alarms", "no-alarms"])
def test_the_loader_reads_the_week_with_its_rollback_context(engine, with_alarms):
    fill(engine, with_alarms)
    f = load_pipeline_frames(engine, at(1, 0), at(8, 0))
    # The window's deployments with their context: api's last before the window (c0), web's (o2), o1
    # (Ro's named target) and api's first after it (R5, a5's rollback); each once.
    assert set(f.deployments["id"]) == {d[0] for d in DEPLOYS} and f.deployments["id"].is_unique
    assert f.alarms is not None and f.alarms.empty != with_alarms
    got = sorted(zip(f.detections["deployment_id"], f.detections["kind"], f.detections["detected_at"]))
    assert got == sorted(zip(*[frames().detections[c] for c in ("deployment_id", "kind", "detected_at")]))
    r = report(f, WINDOW)
    if with_alarms:
        assert_hand_worked(r)
    assert_matches_definition(r, with_alarms)
    assert r == report(frames(with_alarms), WINDOW)


def test_the_loader_leaves_out_what_the_window_does_not_reach(engine):
    fill(engine)
    f = load_pipeline_frames(engine, at(3, 0), at(4, 0))  # May 3: p1 and p1r only
    # The last completed production deployment before the day: api's a2, web's Ro (pay has none);
    # the first after it: api's a3 (none for pay and web).
    assert set(f.deployments["id"]) == {"p1", "p1r", "a2", "Ro", "a3"}
    r = report(f, window_between(date(2024, 5, 3), date(2024, 5, 4)))
    assert r["detection_to_rollback"]["count"] == 1 and r["detection_to_rollback"]["median_hours"] == 0.25
    assert set(f.alarms["id"]) == {"al1"}  # started since a2 and Ro finished (May 2, 09:00), before May 4
    before = load_pipeline_frames(engine, datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))
    assert set(before.deployments["id"]) == {"o1", "c0", "p1r"}  # only each service's first after the day


def test_an_empty_store_reads_nothing(engine):
    f = load_pipeline_frames(engine, at(1, 0), at(8, 0))
    assert f.deployments.empty and f.alarms is not None and f.alarms.empty
    assert report(f, WINDOW)["detection_to_rollback"] == {
        "count": 0,
        "median_hours": None,
        "p90_hours": None,
        "mean_hours": None,
        "max_hours": None,
        "rollbacks": 0,
        "without_detection": 0,
    }


def test_pipelines_json_and_the_page_show_the_services_figures(engine, store_url, gatewatch, monkeypatch, tmp_path):
    fill(engine)
    res = gatewatch("--db", store_url, "pipelines", "--start", "2024-05-01", "--end", "2024-05-08", "--json")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown.pop("warnings") == []  # no CodePipeline pipeline without a production stage
    assert_hand_worked(shown)
    assert shown == json.loads(json.dumps(pipeline_report(engine, WINDOW), default=str))
    text = gatewatch("--db", store_url, "pipelines", "--start", "2024-05-01", "--end", "2024-05-08")
    assert "50.0% (6 of 12, 6 rolled back)" in text.stdout and "1 superseded" in text.stdout

    from dashboard.common import hours, pct

    monkeypatch.setenv("GATEWATCH_DB", store_url)
    monkeypatch.chdir(tmp_path)
    at_ = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py"), default_timeout=120)
    at_.run()
    at_.switch_page("views/pipelines.py").run()
    at_.sidebar.selectbox(key="f_range").set_value("Custom dates").run()
    at_.sidebar.date_input(key="f_start").set_value(START).run()
    at_.sidebar.date_input(key="f_end").set_value(END - timedelta(days=1)).run()
    assert not at_.exception, [e.value for e in at_.exception]
    m = {x.label: x for x in at_.metric}
    dep, det, ttr = shown["deployments"], shown["detection_to_rollback"], shown["time_to_rollback"]
    assert m["Deployment success rate"].value == pct(dep["success_rate"]) == "50.0%"
    assert m["Deployment success rate"].help.startswith(f"{dep['successful']} of {dep['attempted']}")
    assert m["Deployment completion rate"].value == pct(dep["completion_rate"])
    assert m["Deployment completion rate"].help.endswith(f"{dep['rolled_back']} rolled back")
    assert m["Superseded executions"].value == str(shown["pipeline_runs"]["superseded"])
    assert m["Failed pipeline rate"].value == pct(shown["pipeline_runs"]["failed_rate"])
    assert m["Time to rollback from detection (mean)"].value == hours(det["mean_hours"])
    assert m["Time to rollback from detection (mean)"].help == (
        f"{det['count']} of {det['rollbacks']} rollbacks; {det['without_detection']} without detection evidence"
    )
    assert m["Time to rollback from finish (mean)"].value == hours(ttr["mean_hours"])
    assert m["Merge to production (median)"].value == hours(shown["merge_to_production"]["median_hours"])
    caption = " ".join(c.value for c in at_.caption)
    assert f"merge to production: median {hours(4.0)}, p90 {hours(5.6)} (n=3)" in caption
    assert f"detection to rollback: median {hours(det['median_hours'])}" in caption
