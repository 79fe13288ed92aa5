"""CodePipeline EventBridge events (from the published examples) into runs, stages, actions and a
production deployment; bad events quarantined with the field named."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime

import pytest

from collector import ingest, listings
from collector.config import config_from_mapping
from tests.conftest import dump_projections, fixture_path

EXECUTION = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
RUN = f"codepipeline:myPipeline:{EXECUTION}"
SHA = "3f1c2e9b7a6d5c4b3a2918273645546372819aab"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def events() -> list[dict]:
    text = fixture_path("aws/codepipeline-execution.eventbridge.ndjson").read_text()
    return [json.loads(line) for line in text.splitlines()]


def by_id(rows):
    return {r["id"]: r for r in rows}


@pytest.fixture
def mapped_config():
    return config_from_mapping(
        {"services": {"pipelines": {"myPipeline": "checkout"}}, "teams": {"checkout": "payments"}}, environ={}
    )


def test_published_examples_become_runs_stages_actions_and_a_deployment(engine, mapped_config):
    summary = ingest.ingest_payloads(engine, events(), mapped_config)
    assert summary.quarantined == [] and summary.stored == 20
    rows = dump_projections(engine)
    (run,) = rows["pipeline_runs"]
    assert run["id"] == RUN and run["pipeline"] == "myPipeline" and run["service"] == "checkout"
    assert (run["status"], run["started_at"], run["finished_at"]) == (
        "succeeded",
        utc("2024-05-01T10:00:00"),
        utc("2024-05-01T10:23:45"),
    )
    assert (run["revision"], run["trigger"], run["attempt"], run["is_rollback"]) == (SHA, "Webhook", 2, False)
    assert run["status_at"] == utc("2024-05-01T10:23:45")

    stages = by_id(rows["stage_runs"])
    assert set(stages) == {f"{RUN}:stage:Source", f"{RUN}:stage:Build", f"{RUN}:stage:Prod"}
    prod = stages[f"{RUN}:stage:Prod"]
    assert (prod["status"], prod["failed_once"], prod["started_at"], prod["finished_at"]) == (
        "succeeded",
        True,
        utc("2024-05-01T10:06:41"),
        utc("2024-05-01T10:23:45"),
    )
    assert prod["attempt"] == 2 and prod["pipeline_run_id"] == RUN and prod["name"] == "Prod"
    build = stages[f"{RUN}:stage:Build"]
    assert (build["category"], build["failed_once"], build["status"], build["attempt"]) == (
        "build",
        False,
        "succeeded",
        1,
    )
    assert (build["started_at"], build["finished_at"]) == (utc("2024-05-01T10:00:21"), utc("2024-05-01T10:06:40"))

    actions = by_id(rows["action_runs"])
    source = actions[f"{RUN}:stage:Source:action:Source"]
    assert (source["category"], source["provider"], source["external_id"], source["stage_run_id"]) == (
        "source",
        "CodeStarSourceConnection",
        SHA,
        f"{RUN}:stage:Source",
    )
    assert (source["status"], source["started_at"], source["finished_at"]) == (
        "succeeded",
        utc("2024-05-01T10:00:01"),
        utc("2024-05-01T10:00:20"),
    )
    assert actions[f"{RUN}:stage:Build:action:Build"]["category"] == "build"
    deploy = actions[f"{RUN}:stage:Prod:action:myAction"]
    assert (deploy["category"], deploy["provider"], deploy["status"], deploy["external_id"], deploy["failed_once"]) == (
        "deploy",
        "CodeDeploy",
        "succeeded",
        "d-ABCDEF456",
        True,
    )
    assert (deploy["started_at"], deploy["finished_at"]) == (utc("2024-05-01T10:06:41"), utc("2024-05-01T10:23:45"))

    (dep,) = rows["deployments"]
    assert dep["id"] == RUN and dep["pipeline_run_id"] == RUN
    assert (dep["service"], dep["team"], dep["environment"], dep["production"], dep["status"]) == (
        "checkout",
        "payments",
        "production",
        True,
        "success",
    )
    assert (dep["started_at"], dep["finished_at"]) == (utc("2024-05-01T10:06:41"), utc("2024-05-01T10:23:45"))
    assert dep["is_rollback"] is False
    assert [(link["id"], link["deployment_id"], link["change_id"]) for link in rows["deployment_changes"]] == [
        (f"{RUN}|{SHA}", RUN, SHA)
    ]


def published_events() -> list[dict]:
    """The three documented examples, their unquoted placeholders made valid values."""
    text = fixture_path("aws/codepipeline-eventbridge-events.published.txt").read_text()
    values = {
        "event_Id": None,
        "Pipeline_Account": '"111122223333"',
        "TimeStamp": None,
        "execution_Id": '"2f2b9e4c-1d3a-4b5c-8d6e-7f8091a2b3c4"',
    }
    out = []
    for n, block in enumerate(re.split(r"\n\s*\n", text.strip())):
        values.update(event_Id=f'"c0ffee00-0000-4000-8000-00000000000{n}"', TimeStamp=f'"2024-05-01T09:0{n}:00Z"')
        out.append(
            json.loads(
                re.sub(
                    r"(?<=: )(event_Id|Pipeline_Account|TimeStamp|execution_Id)\b", lambda m: values[m.group(1)], block
                )
            )
        )
    return out


def test_the_published_examples_as_published(engine, config):
    """Pipeline STARTED, stage Prod STARTED, action myAction STARTED: a run, a stage, an action and a
    production deployment in progress (the default configuration calls a stage matching 'prod' production)."""
    published = published_events()
    assert [e["detail-type"].split()[1] for e in published] == ["Pipeline", "Stage", "Action"]
    summary = ingest.ingest_payloads(engine, published, config)
    assert summary.quarantined == [] and summary.stored == 3
    run_id = "codepipeline:myPipeline:2f2b9e4c-1d3a-4b5c-8d6e-7f8091a2b3c4"
    rows = dump_projections(engine)
    (run,) = rows["pipeline_runs"]
    assert (run["id"], run["status"], run["status_at"], run["started_at"], run["finished_at"], run["revision"]) == (
        run_id,
        "in_progress",
        utc("2024-05-01T09:00:00"),
        utc("2024-05-01T09:00:00"),
        None,
        None,
    )
    (stage,) = rows["stage_runs"]
    assert (stage["id"], stage["status"], stage["started_at"], stage["finished_at"]) == (
        f"{run_id}:stage:Prod",
        "in_progress",
        utc("2024-05-01T09:01:00"),
        None,
    )
    (action,) = rows["action_runs"]
    assert (action["id"], action["category"], action["provider"], action["status"], action["started_at"]) == (
        f"{run_id}:stage:Prod:action:myAction",
        "deploy",
        "CodeDeploy",
        "in_progress",
        utc("2024-05-01T09:02:00"),
    )
    (dep,) = rows["deployments"]
    assert (dep["id"], dep["status"], dep["started_at"], dep["finished_at"], dep["production"]) == (
        run_id,
        "in_progress",
        utc("2024-05-01T09:01:00"),
        None,
        True,
    )
    assert rows["deployment_changes"] == []
    from sqlalchemy import select

    from collector.models import raw_events

    with engine.connect() as conn:
        keys = conn.execute(select(raw_events.c.dedupe_key).order_by(raw_events.c.id)).scalars().all()
    assert [k.split(":")[-1] for k in keys] == [e["id"] for e in published]  # deduped on the EventBridge id


def event(level: str, state: str, time: str = "2024-05-01T10:00:00Z", **detail) -> dict:
    return {
        "version": "0",
        "id": f"{level}-{state}-{time}",
        "source": "aws.codepipeline",
        "detail-type": f"CodePipeline {level} Execution State Change",
        "account": "1",
        "time": time,
        "region": "eu-west-1",
        "resources": [],
        "detail": {"pipeline": "myPipeline", "version": "1", "execution-id": "e1", "state": state, **detail},
    }


DEPLOY = {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": "1"}


@pytest.mark.parametrize(
    "level, state, status, deployment",
    [
        ("Pipeline", "STARTED", "in_progress", None),
        ("Pipeline", "SUCCEEDED", "succeeded", None),
        ("Pipeline", "RESUMED", "in_progress", None),
        ("Pipeline", "FAILED", "failed", None),
        ("Pipeline", "CANCELED", "canceled", None),
        ("Pipeline", "SUPERSEDED", "superseded", None),
        ("Pipeline", "STOPPING", "in_progress", None),
        ("Pipeline", "STOPPED", "canceled", None),
        ("Stage", "STARTED", "in_progress", "in_progress"),
        ("Stage", "SUCCEEDED", "succeeded", "success"),
        ("Stage", "RESUMED", "in_progress", "in_progress"),
        ("Stage", "FAILED", "failed", "failure"),
        ("Stage", "CANCELED", "canceled", "canceled"),
        ("Stage", "STOPPING", "in_progress", "in_progress"),
        ("Stage", "STOPPED", "canceled", "canceled"),
        ("Action", "STARTED", "in_progress", None),
        ("Action", "SUCCEEDED", "succeeded", None),
        ("Action", "FAILED", "failed", None),
        ("Action", "CANCELED", "canceled", None),
        ("Action", "ABANDONED", "canceled", None),
    ],
)
def test_every_documented_state_maps_to_a_canonical_status(engine, config, level, state, status, deployment):
    at = utc("2024-05-01T10:00:00")
    terminal = status in ("succeeded", "failed", "canceled", "superseded")
    extra = {"stage": "Prod"} if level != "Pipeline" else {}
    if level == "Action":
        extra.update(action="Deploy", type=DEPLOY)
    assert ingest.ingest_payloads(engine, [event(level, state, **extra)], config).quarantined == []
    rows = dump_projections(engine)
    table = {"Pipeline": "pipeline_runs", "Stage": "stage_runs", "Action": "action_runs"}[level]
    (row,) = rows[table]
    assert (row["status"], row["status_at"], row["finished_at"]) == (status, at, at if terminal else None)
    assert row["started_at"] == (at if state == "STARTED" else None)
    if level == "Action":
        assert row["failed_once"] is (state == "FAILED")
    if deployment is None:
        assert rows["deployments"] == []
    else:
        (dep,) = rows["deployments"]
        assert (dep["status"], dep["status_at"], dep["finished_at"]) == (deployment, at, at if terminal else None)


def test_a_failed_then_resumed_then_succeeded_stage(engine, config):
    """Each step as it arrives: the stage and its deployment fail, run again, succeed; failed_once stays."""
    stage = f"{RUN}:stage:Prod"
    steps = [
        ("STARTED", "2024-05-01T10:06:41", "in_progress", None, "in_progress"),
        ("FAILED", "2024-05-01T10:09:30", "failed", "2024-05-01T10:09:30", "failure"),
        ("RESUMED", "2024-05-01T10:20:00", "in_progress", None, "in_progress"),
        ("SUCCEEDED", "2024-05-01T10:23:45", "succeeded", "2024-05-01T10:23:45", "success"),
    ]
    prod_events = [
        e for e in events() if e["detail-type"].startswith("CodePipeline Stage") and e["detail"]["stage"] == "Prod"
    ]
    assert [e["detail"]["state"] for e in prod_events] == [s[0] for s in steps]
    for e, (state, time, status, finished, dep_status) in zip(prod_events, steps):
        assert e["time"] == time + "Z"
        ingest.ingest_payloads(engine, [e], config)
        rows = dump_projections(engine)
        (row,) = [r for r in rows["stage_runs"] if r["id"] == stage]
        assert (row["status"], row["status_at"], row["finished_at"]) == (status, utc(time), finished and utc(finished))
        assert row["started_at"] == utc("2024-05-01T10:06:41")
        assert row["failed_once"] is (state != "STARTED")
        assert row["attempt"] == (2 if state in ("RESUMED", "SUCCEEDED") else 1)
        (dep,) = rows["deployments"]
        assert (dep["status"], dep["finished_at"]) == (dep_status, finished and utc(finished))


def test_only_git_sources_give_a_revision(engine, config):
    """An S3 source's external id is an object version, not a commit: no revision and no commit link."""
    stream = copy.deepcopy(events())
    for e in stream:
        if e["detail"].get("action") == "Source":
            e["detail"]["type"]["provider"] = "S3"
            if "execution-result" in e["detail"]:
                e["detail"]["execution-result"]["external-execution-id"] = "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    assert ingest.ingest_payloads(engine, stream, config).quarantined == []
    rows = dump_projections(engine)
    assert rows["pipeline_runs"][0]["revision"] is None and rows["deployment_changes"] == []
    source = by_id(rows["action_runs"])[f"{RUN}:stage:Source:action:Source"]
    assert (source["provider"], source["external_id"]) == ("S3", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")


def test_a_commit_link_is_written_before_production_is_reached(engine, config):
    """A source action's commit links even if the execution never deploys: no deployment row, so
    analysis (which joins on deployments) ignores it."""
    stream = [
        e
        for e in events()
        if (e["detail"].get("stage") != "Prod" and e["detail"]["state"] == "STARTED")
        or e["detail"].get("action") == "Source"
    ]
    ingest.ingest_payloads(engine, stream, config)
    rows = dump_projections(engine)
    assert rows["deployments"] == [] and rows["pipeline_runs"][0]["revision"] == SHA
    assert [(link["deployment_id"], link["change_id"]) for link in rows["deployment_changes"]] == [(RUN, SHA)]


def test_a_failed_prod_stage_is_a_failed_deployment_until_the_retry(engine, config):
    stream = events()
    failed_at = next(
        i
        for i, e in enumerate(stream)
        if e["detail"].get("state") == "FAILED" and e["detail-type"].endswith("Pipeline Execution State Change")
    )
    ingest.ingest_payloads(engine, stream[: failed_at + 1], config)
    (dep,) = dump_projections(engine)["deployments"]
    assert dep["status"] == "failure" and dep["finished_at"] == utc("2024-05-01T10:09:30")
    (run,) = dump_projections(engine)["pipeline_runs"]
    assert run["status"] == "failed"


def test_a_late_started_never_overwrites_succeeded(engine, config):
    stream = events()
    ingest.ingest_payloads(engine, stream[::-1], config)  # newest first
    (run,) = dump_projections(engine)["pipeline_runs"]
    assert run["status"] == "succeeded" and run["finished_at"] == utc("2024-05-01T10:23:45")


def test_non_production_stages_make_no_deployment_and_config_can_name_the_stage(engine):
    config = config_from_mapping({"production": {"stages": {"myPipeline": "Build"}}}, environ={})
    ingest.ingest_payloads(engine, events(), config)
    (dep,) = dump_projections(engine)["deployments"]
    assert dep["status"] == "success" and dep["finished_at"] == utc("2024-05-01T10:06:40")


def test_rollback_trigger_marks_the_run_and_deployment(engine, config):
    stream = copy.deepcopy(events())
    for e in stream:
        e["detail"]["execution-trigger"] = {"trigger-type": "ManualRollback", "trigger-detail": "someone"}
    ingest.ingest_payloads(engine, stream, config)
    rows = dump_projections(engine)
    assert rows["pipeline_runs"][0]["is_rollback"] is True and rows["deployments"][0]["is_rollback"] is True


@pytest.mark.parametrize(
    "mutate, field, expected",
    [
        (
            lambda e: e["detail"].update(state="DONE"),
            "detail.state",
            "one of STARTED, SUCCEEDED, RESUMED, FAILED, CANCELED, SUPERSEDED, STOPPING, STOPPED, got 'DONE'",
        ),
        (
            lambda e: (
                e.update({"detail-type": "CodePipeline Action Execution State Change"})
                or e["detail"].update(state="SUPERSEDED", stage="Prod", action="Deploy")
            ),
            "detail.state",
            "one of STARTED, SUCCEEDED, FAILED, CANCELED, ABANDONED, got 'SUPERSEDED'",
        ),
        (lambda e: e["detail"].pop("execution-id"), "detail.execution-id", "a string (required)"),
        (lambda e: e.update(time="yesterday"), "time", "ISO 8601"),
        (lambda e: e.update({"detail-type": "CodePipeline Webhook Change"}), "detail-type", "one of CodePipeline"),
    ],
)
def test_bad_events_are_quarantined_with_the_field_named(engine, config, mutate, field, expected):
    event = events()[0]
    mutate(event)
    summary = ingest.ingest_payloads(engine, [event], config)
    (q,) = summary.quarantined
    assert q.source == "codepipeline" and q.error.startswith(f"field '{field}': expected") and expected in q.error


def test_eventbridge_id_is_the_dedupe_key(engine, config):
    first = events()[0]
    redelivered = dict(first, time=first["time"])  # same id: the same event delivered twice
    summary = ingest.ingest_payloads(engine, [first, redelivered], config)
    assert (summary.stored, summary.duplicates) == (1, 1)


def test_a_pipeline_with_no_production_stage_is_named_once_with_what_to_set(engine):
    config = config_from_mapping({"production": {"stage_pattern": "(?i)live"}}, environ={})
    first = ingest.ingest_payloads(engine, events(), config)
    (warning,) = first.warnings  # 20 events of one pipeline: one line
    assert warning.startswith("pipeline myPipeline: stages Build, Prod, Source; none matches the production pattern")
    assert "production.stages.myPipeline" in warning and dump_projections(engine)["deployments"] == []
    assert first.to_dict()["warnings"] == [warning]
    # Told again on the next delivery of that pipeline, not for other sources' payloads.
    assert ingest.ingest_payloads(engine, events()[:1], config).warnings == [warning]
    assert ingest.ingest_payloads(engine, [{"type": "change", "id": "c1", "service": "x"}], config).warnings == []
    # Configured (or matched by the default pattern): no warning.
    named = config_from_mapping({"production": {"stages": {"myPipeline": "Prod"}}}, environ={})
    assert ingest.ingest_payloads(engine, events()[:1], named).warnings == []
    wrong = config_from_mapping({"production": {"stages": {"myPipeline": "Deploy"}}}, environ={})
    (configured,) = listings.production_stage_warnings(engine, wrong)
    assert "configured production stage 'Deploy' (production.stages) is not one of them" in configured


def test_gatewatch_pipelines_shows_the_production_stage_warning(engine, store_url, tmp_path, gatewatch):
    ingest.ingest_payloads(engine, events(), config_from_mapping({}, environ={}))
    cfg = tmp_path / "gatewatch.yaml"
    cfg.write_text("production:\n  stage_pattern: '(?i)live'\n")
    args = ("--config", str(cfg), "--db", store_url, "pipelines", "--start", "2024-04-01", "--end", "2024-06-01")
    out = json.loads(gatewatch(*args, "--json").stdout)
    assert [w.split(";")[0] for w in out["warnings"]] == ["pipeline myPipeline: stages Build, Prod, Source"]
    text = gatewatch(*args).stdout
    assert "warning: pipeline myPipeline: stages Build, Prod, Source; none matches" in text
