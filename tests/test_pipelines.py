"""Pipeline metrics on hand-worked frames (pure), figures computed by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analysis.pipelines import PipelineFrames, flaky_stages, report, stage_breakdown, stage_categories
from analysis.windows import window_between

WINDOW = window_between(date(2024, 5, 1), date(2024, 5, 8))


def ts(text):
    return pd.Timestamp(text, tz="UTC") if text else pd.NaT


def frame(columns, rows):
    out = pd.DataFrame(rows, columns=columns)
    for col in columns:
        if col.endswith("_at"):
            out[col] = pd.to_datetime(out[col], utc=True)
    return out


RUNS = frame(
    ["id", "pipeline", "service", "revision", "status", "queued_at", "started_at", "finished_at"],
    [
        ("r1", "api", "api", "aaa", "failed", None, "2024-05-01T10:00:00Z", "2024-05-01T10:20:00Z"),
        ("r2", "api", "api", "aaa", "succeeded", None, "2024-05-01T11:00:00Z", "2024-05-01T11:40:00Z"),
        (
            "r3",
            "api",
            "api",
            "bbb",
            "succeeded",
            "2024-05-02T09:00:00Z",
            "2024-05-02T09:05:00Z",
            "2024-05-02T10:00:00Z",
        ),
        ("r4", "web", "web", "ccc", "canceled", None, "2024-05-03T08:00:00Z", "2024-05-03T08:10:00Z"),
        ("r0", "web", "web", "zzz", "failed", None, "2024-04-20T08:00:00Z", "2024-04-20T08:10:00Z"),  # outside
    ],
)
STAGES = frame(
    ["id", "pipeline_run_id", "name", "category", "status", "started_at", "finished_at", "failed_once"],
    [
        ("r1:Build", "r1", "Build", "build", "succeeded", "2024-05-01T10:02:00Z", "2024-05-01T10:08:00Z", False),
        ("r1:Test", "r1", "Test", "test", "failed", "2024-05-01T10:08:00Z", "2024-05-01T10:20:00Z", True),
        ("r2:Build", "r2", "Build", "build", "succeeded", "2024-05-01T11:01:00Z", "2024-05-01T11:11:00Z", False),
        ("r2:Test", "r2", "Test", "test", "succeeded", "2024-05-01T11:11:00Z", "2024-05-01T11:40:00Z", False),
        ("r3:Build", "r3", "Build", "build", "succeeded", "2024-05-02T09:06:00Z", "2024-05-02T09:20:00Z", False),
        ("r3:Test", "r3", "Test", "test", "succeeded", "2024-05-02T09:20:00Z", "2024-05-02T10:00:00Z", True),
    ],
)
ACTIONS = frame(
    ["id", "pipeline_run_id", "stage_run_id", "name", "category", "status", "started_at", "finished_at"],
    [
        ("a1", "r1", "r1:Build", "compile", "build", "succeeded", "2024-05-01T10:02:00Z", "2024-05-01T10:08:00Z"),
        ("a2", "r2", "r2:Build", "compile", "build", "succeeded", "2024-05-01T11:01:00Z", "2024-05-01T11:11:00Z"),
        ("a3", "r3", "r3:Build", "compile", "build", "succeeded", "2024-05-02T09:06:00Z", "2024-05-02T09:20:00Z"),
        ("a4", "r3", "r3:Approve", "approve", "approval", "succeeded", "2024-05-02T09:20:00Z", "2024-05-02T09:50:00Z"),
        ("a5", "r4", "r4:Build", "compile", "build", "canceled", "2024-05-03T08:03:00Z", "2024-05-03T08:10:00Z"),
    ],
)
DEPLOYMENTS = frame(
    [
        "id",
        "service",
        "environment",
        "production",
        "status",
        "finished_at",
        "rollback_of",
        "is_rollback",
        "first_committed_at",
        "first_merged_at",
    ],
    [
        ("d1", "api", "production", True, "success", "2024-05-01T12:00:00Z", None, False, "2024-05-01T06:00:00Z", None),
        (
            "d2",
            "api",
            "production",
            True,
            "rolled_back",
            "2024-05-02T12:00:00Z",
            None,
            False,
            "2024-05-02T00:00:00Z",
            None,
        ),
        ("d3", "api", "production", True, "success", "2024-05-02T12:45:00Z", "d2", True, None, None),
        ("d4", "web", "staging", False, "failure", "2024-05-03T09:00:00Z", None, False, None, None),
        ("d5", "web", "production", True, "canceled", "2024-05-04T09:00:00Z", None, False, None, None),
    ],
)


def test_hand_worked_pipeline_metrics():
    r = report(PipelineFrames(RUNS, STAGES, ACTIONS, DEPLOYMENTS), WINDOW)
    # Completed (success or rolled back) of attempted (plus failure and canceled): 3 of 5; successful
    # (success, not rolled back): d1 and d3, 2 of 5.
    assert r["deployments"] == {
        "attempted": 5,
        "successful": 2,
        "completed": 3,
        "rolled_back": 1,
        "failed": 1,
        "canceled": 1,
        "success_rate": 0.4,
        "completion_rate": 0.6,
    }
    # Finished runs in the window r1..r4: one failed (r0 is outside).
    assert r["pipeline_runs"] == {"finished": 4, "failed": 1, "failed_rate": 0.25, "superseded": 0}
    # First commit to production: d1 6 h, d2 12 h (d3 has no commits).
    assert r["time_to_deploy"] == {
        "count": 2,
        "median_hours": 9.0,
        "p90_hours": 11.4,
        "mean_hours": 9.0,
        "max_hours": 12.0,
    }
    assert r["time_to_rollback"]["count"] == 1 and r["time_to_rollback"]["median_hours"] == 0.75
    # Build stages 6, 10, 14 min (the build actions sit inside them) and r4's build action 7 min.
    assert r["build_duration"]["count"] == 4
    assert r["build_duration"]["median_hours"] == round(8.5 / 60, 4)
    # Queue: r1 2 min, r2 1 min, r3 6 min (queued 09:00, first action 09:06), r4 3 min.
    assert r["queue_time"]["count"] == 4 and r["queue_time"]["max_hours"] == 0.1
    assert r["queue_time"]["median_hours"] == round(2.5 / 60, 4)
    assert r["approval_latency"] == {
        "count": 1,
        "median_hours": 0.5,
        "p90_hours": 0.5,
        "mean_hours": 0.5,
        "max_hours": 0.5,
    }
    # Test on revision aaa failed in r1 and passed in r2 (a new execution); r3's Test was retried within
    # its run. r1's Test failed_once but never passed in r1, so it is not flaky on its own.
    flaky = {
        (f["service"], f["pipeline"], f["stage"], f["revision"], f["retried_within_run"]) for f in r["flaky_stages"]
    }
    assert flaky == {("api", "api", "Test", "aaa", False), ("api", "api", "Test", "bbb", True)}
    stages = {(s["service"], s["pipeline"], s["stage"]): s for s in r["per_stage"]}
    assert stages[("api", "api", "Test")]["runs"] == 3 and stages[("api", "api", "Test")]["flaky"] == 2
    assert stages[("api", "api", "Test")]["success_rate"] == round(2 / 3, 4)
    pipes = {p["pipeline"]: p for p in r["per_pipeline"]}
    assert pipes["api"]["service"] == "api"
    assert pipes["api"]["failed_rate"] == round(1 / 3, 4) and pipes["web"]["runs"] == 1


def test_flaky_needs_a_pass_after_the_failure():
    runs = RUNS[RUNS["id"].isin(["r1", "r2"])].copy()
    runs.loc[runs["id"] == "r2", "started_at"] = pd.Timestamp("2024-05-01T09:00:00Z")  # the pass came first
    stages = STAGES[STAGES["pipeline_run_id"].isin(["r1", "r2"])].copy()
    stages.loc[stages["id"] == "r2:Test", "started_at"] = pd.Timestamp("2024-05-01T09:10:00Z")
    assert flaky_stages(stages, runs).empty


def test_empty_frames_give_no_data_not_zero():
    empty = PipelineFrames(RUNS.iloc[0:0], STAGES.iloc[0:0], ACTIONS.iloc[0:0], DEPLOYMENTS.iloc[0:0])
    r = report(empty, WINDOW)
    assert r["deployments"]["success_rate"] is None and r["pipeline_runs"]["failed_rate"] is None
    assert r["build_duration"] == {
        "count": 0,
        "median_hours": None,
        "p90_hours": None,
        "mean_hours": None,
        "max_hours": None,
    }
    assert r["flaky_stages"] == [] and r["per_stage"] == []


RUN_COLUMNS = ["id", "pipeline", "service", "revision", "status", "queued_at", "started_at", "finished_at"]
STAGE_COLUMNS = ["id", "pipeline_run_id", "name", "category", "status", "started_at", "finished_at", "failed_once"]
ACTION_COLUMNS = [
    "id",
    "pipeline_run_id",
    "stage_run_id",
    "name",
    "category",
    "status",
    "started_at",
    "finished_at",
    "declared_category",
]


def _run(run_id, service, start, build_min, deploy_min, pipeline="deploy"):
    """A run of `pipeline` starting at `start` (no queue): a Build stage then a Release stage whose one
    action is a declared deploy (as a CodePipeline CodeDeploy action is)."""
    t0 = pd.Timestamp(start, tz="UTC")
    t1, t2 = t0 + pd.Timedelta(minutes=build_min), t0 + pd.Timedelta(minutes=build_min + deploy_min)
    return (
        (run_id, pipeline, service, "abc", "succeeded", None, t0, t2),
        [
            (f"{run_id}:Build", run_id, "Build", "build", "succeeded", t0, t1, False),
            (f"{run_id}:Release", run_id, "Release", "other", "succeeded", t1, t2, False),
        ],
        [
            (f"{run_id}:b", run_id, f"{run_id}:Build", "Build", "build", "succeeded", t0, t1, "build"),
            (f"{run_id}:d", run_id, f"{run_id}:Release", "Ship", "deploy", "succeeded", t1, t2, "deploy"),
        ],
    )


def test_two_services_with_a_same_named_pipeline_give_two_breakdowns():
    """api's `deploy` (builds 10 and 20 min, deploys 30 and 50 min) and web's `deploy` (build 4 min,
    deploy 6 min): medians per service, never summed across the two."""
    made = [
        _run("a1", "api", "2024-05-02T10:00:00", 10, 30),
        _run("a2", "api", "2024-05-03T10:00:00", 20, 50),
        _run("w1", "web", "2024-05-02T11:00:00", 4, 6),
    ]
    runs = pd.DataFrame([m[0] for m in made], columns=RUN_COLUMNS)
    runs["queued_at"] = pd.to_datetime(runs["queued_at"], utc=True)
    stages = pd.DataFrame([row for m in made for row in m[1]], columns=STAGE_COLUMNS)
    actions = pd.DataFrame([row for m in made for row in m[2]], columns=ACTION_COLUMNS)
    empty_deps = DEPLOYMENTS.iloc[0:0]
    breakdown = stage_breakdown(PipelineFrames(runs, stages, actions, empty_deps), WINDOW)
    got = {(r.service, r.pipeline, r.category): r.median_hours for r in breakdown.itertuples()}
    assert got == pytest.approx(
        {
            ("api", "deploy", "queue"): 0.0,
            ("api", "deploy", "build"): 15 / 60,
            ("api", "deploy", "deploy"): 40 / 60,
            ("web", "deploy", "queue"): 0.0,
            ("web", "deploy", "build"): 4 / 60,
            ("web", "deploy", "deploy"): 6 / 60,
        }
    )


def test_a_declared_deploy_action_makes_its_stage_a_deploy_stage_whatever_its_name():
    t = pd.Timestamp("2024-05-02T10:00:00", tz="UTC")
    stages = pd.DataFrame(
        [
            ("Prod", "r", "Prod", "other", "succeeded", t, t, False),  # named for nothing
            ("Tests", "r", "Integration tests", "test", "succeeded", t, t, False),  # named as a test stage
            ("Gate", "r", "Approve and ship", "approval", "succeeded", t, t, False),  # approval, then deploy
            ("Job", "r", "deploy", "deploy", "succeeded", t, t, False),  # a CI job: steps' categories are guesses
            ("Lambda", "r", "Smoke test", "test", "succeeded", t, t, False),  # an Invoke action says nothing
            ("Empty", "r", "Build", "build", "succeeded", t, t, False),  # no action recorded yet
        ],
        columns=STAGE_COLUMNS,
    )
    actions = pd.DataFrame(
        [
            ("1", "r", "Prod", "myAction", "deploy", "succeeded", t, t, "deploy"),
            ("2", "r", "Tests", "Deploy", "deploy", "succeeded", t, t, "deploy"),
            ("3", "r", "Gate", "Approve", "approval", "succeeded", t, t, "approval"),
            ("4", "r", "Gate", "Ship", "deploy", "succeeded", t, t, "deploy"),
            ("5", "r", "Job", "Run tests", "test", "succeeded", t, t, None),
            ("6", "r", "Lambda", "Invoke", "invoke", "succeeded", t, t, "invoke"),
        ],
        columns=ACTION_COLUMNS,
    )
    assert list(stage_categories(stages, actions)) == ["deploy", "deploy", "deploy", "deploy", "test", "build"]
    # Without declared categories (frames from elsewhere), the stages keep their own.
    assert list(stage_categories(stages, actions.drop(columns="declared_category"))) == list(stages["category"])


def test_pipelines_cli_over_real_codepipeline_events(tmp_path, store_url, gatewatch):
    """The published CodePipeline examples (one execution whose Prod deploy failed, then passed on a
    retry) through the store and `gatewatch pipelines --json`."""
    import json

    from tests.conftest import fixture_path

    events = fixture_path("aws/codepipeline-execution.eventbridge.ndjson")
    assert gatewatch("--db", store_url, "ingest", str(events)).returncode == 0
    res = gatewatch("--db", store_url, "pipelines", "--start", "2024-05-01", "--end", "2024-05-02", "--json")
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert r["pipeline_runs"] == {"finished": 1, "failed": 0, "failed_rate": 0.0, "superseded": 0}
    dep = r["deployments"]
    assert (dep["attempted"], dep["successful"], dep["rolled_back"], dep["failed"]) == (1, 1, 0, 0)
    assert dep["success_rate"] == dep["completion_rate"] == 1.0
    # Build stage 10:00:21 -> 10:06:40; queue: started 10:00:00, first action 10:00:01.
    assert r["build_duration"]["count"] == 1 and r["build_duration"]["median_hours"] == round(379 / 3600, 4)
    assert r["queue_time"]["median_hours"] == round(1 / 3600, 4)
    assert [(f["stage"], f["retried_within_run"]) for f in r["flaky_stages"]] == [("Prod", True)]
    stages = {s["stage"]: s for s in r["per_stage"]}
    assert set(stages) == {"Source", "Build", "Prod"} and stages["Prod"]["failed_once"] == 1
    csv_out = gatewatch("--db", store_url, "pipelines", "--start", "2024-05-01", "--end", "2024-05-02", "--csv")
    assert csv_out.stdout.splitlines()[0].startswith("service,pipeline,stage,category,runs")


def test_breakdown_from_the_store_per_service_and_by_declared_action_category(engine, config):
    """Stored runs on both stores: two services' GitHub `deploy` workflows stay apart, and the real
    CodePipeline execution's Prod stage (its action a CodeDeploy Deploy) is deploy time, also when the
    stage is named `Test`; a CI job named deploy stays deploy whatever its steps are named."""
    from collector.ingest import ingest_payloads
    from gatewatch import api
    from tests.pipeline_events import codepipeline, two_services_deploy

    payloads = [*two_services_deploy(), *codepipeline(), *codepipeline("renamedPipeline", prod_stage="Test")]
    assert ingest_payloads(engine, payloads, config).quarantined == []
    view = api.pipeline_overview(engine, WINDOW)
    got = {(r.service, r.pipeline, r.category): r.median_hours for r in view["breakdown"].itertuples()}
    codepipeline_figures = {"queue": 1 / 3600, "build": 379 / 3600, "deploy": 1024 / 3600}
    assert got == pytest.approx(
        {
            ("api", "deploy", "queue"): 2 / 60,
            ("api", "deploy", "deploy"): 40 / 60,
            ("web", "deploy", "queue"): 2 / 60,
            ("web", "deploy", "deploy"): 6 / 60,
            **{("myPipeline", "myPipeline", c): h for c, h in codepipeline_figures.items()},
            **{("renamedPipeline", "renamedPipeline", c): h for c, h in codepipeline_figures.items()},
        }
    )
    stages = {(s["pipeline"], s["stage"]): s["category"] for s in view["report"]["per_stage"]}
    assert stages[("myPipeline", "Prod")] == stages[("renamedPipeline", "Test")] == "deploy"
    assert stages[("myPipeline", "Source")] == "source" and stages[("deploy", "deploy")] == "deploy"
    run_id = next(r for r in view["slowest"]["id"] if r.startswith("codepipeline:renamedPipeline:"))
    detail = api.run_detail(engine, run_id)
    assert dict(zip(detail["stages"]["name"], detail["stages"]["category"])) == {
        "Source": "source",
        "Build": "build",
        "Test": "deploy",
    }
    assert "declared_category" not in detail["actions"]
