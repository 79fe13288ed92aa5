"""CodePipeline EventBridge events (from the published examples) into runs, stages, actions and a
production deployment; bad events quarantined with the field named."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest

from collector import ingest
from collector.config import config_from_mapping
from tests.conftest import dump_projections, fixture_path

EXECUTION = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
RUN = f"codepipeline:myPipeline:{EXECUTION}"
SHA = "3f1c2e9b7a6d5c4b3a2918273645546372819aab"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def events() -> list[dict]:
    return [json.loads(line) for line in fixture_path("aws/codepipeline-execution.eventbridge.ndjson").open()]


def by_id(rows):
    return {r["id"]: r for r in rows}


@pytest.fixture
def mapped_config():
    return config_from_mapping({"services": {"pipelines": {"myPipeline": "checkout"}},
                                "teams": {"checkout": "payments"}}, environ={})


def test_published_examples_become_runs_stages_actions_and_a_deployment(engine, mapped_config):
    summary = ingest.ingest_payloads(engine, events(), mapped_config)
    assert summary.quarantined == [] and summary.stored == 20
    rows = dump_projections(engine)
    (run,) = rows["pipeline_runs"]
    assert run["id"] == RUN and run["pipeline"] == "myPipeline" and run["service"] == "checkout"
    assert (run["status"], run["started_at"], run["finished_at"]) == (
        "succeeded", utc("2024-05-01T10:00:00"), utc("2024-05-01T10:23:45"))
    assert (run["revision"], run["trigger"], run["attempt"], run["is_rollback"]) == (SHA, "Webhook", 1, False)

    stages = by_id(rows["stage_runs"])
    assert set(stages) == {f"{RUN}:stage:Source", f"{RUN}:stage:Build", f"{RUN}:stage:Prod"}
    prod = stages[f"{RUN}:stage:Prod"]
    assert (prod["status"], prod["failed_once"], prod["started_at"], prod["finished_at"]) == (
        "succeeded", True, utc("2024-05-01T10:06:41"), utc("2024-05-01T10:23:45"))
    build = stages[f"{RUN}:stage:Build"]
    assert (build["category"], build["failed_once"]) == ("build", False)

    actions = by_id(rows["action_runs"])
    source = actions[f"{RUN}:stage:Source:action:Source"]
    assert (source["category"], source["provider"], source["external_id"]) == (
        "source", "CodeStarSourceConnection", SHA)
    deploy = actions[f"{RUN}:stage:Prod:action:myAction"]
    assert (deploy["category"], deploy["status"], deploy["external_id"], deploy["failed_once"]) == (
        "deploy", "succeeded", "d-ABCDEF456", True)

    (dep,) = rows["deployments"]
    assert dep["id"] == RUN and dep["pipeline_run_id"] == RUN
    assert (dep["service"], dep["team"], dep["environment"], dep["production"], dep["status"]) == (
        "checkout", "payments", "production", True, "success")
    assert (dep["started_at"], dep["finished_at"]) == (utc("2024-05-01T10:06:41"), utc("2024-05-01T10:23:45"))
    assert [(link["deployment_id"], link["change_id"]) for link in rows["deployment_changes"]] == [(RUN, SHA)]


def test_a_failed_prod_stage_is_a_failed_deployment_until_the_retry(engine, config):
    stream = events()
    failed_at = next(i for i, e in enumerate(stream) if e["detail"].get("state") == "FAILED"
                     and e["detail-type"].endswith("Pipeline Execution State Change"))
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


@pytest.mark.parametrize("mutate, field, expected", [
    (lambda e: e["detail"].update(state="DONE"), "detail.state", "one of STARTED"),
    (lambda e: e["detail"].pop("execution-id"), "detail.execution-id", "a string (required)"),
    (lambda e: e.update(time="yesterday"), "time", "ISO 8601"),
    (lambda e: e.update({"detail-type": "CodePipeline Webhook Change"}), "detail-type", "one of CodePipeline"),
])
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
