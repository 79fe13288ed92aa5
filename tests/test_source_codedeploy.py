"""CodeDeploy EventBridge events (from the published examples) into deployments; a deployment that a
CodePipeline production stage ran is counted once, by the pipeline; bad events quarantined."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from collector import ingest
from collector.config import config_from_mapping
from collector.loaders import Scope, load_dora_frames, load_pipeline_frames
from gatewatch.errors import ConfigError
from tests.conftest import dump_projections, fixture_path

EXECUTION = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PIPELINE_DEPLOYMENT = f"codepipeline:myPipeline:{EXECUTION}"
DAY = (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def published(kind: str) -> dict:
    return json.loads(fixture_path(f"aws/codedeploy-{kind}-state-change.published.json").read_text())


def event(kind: str, deployment: str, state: str, time: str, group: str = "checkout-prod", app: str = "checkout-app"):
    """A published example with another deployment, state, time, application and group."""
    out = copy.deepcopy(published(kind))
    out["id"] = f"{deployment}-{kind}-{state}-{time}"
    out["time"] = time
    out["detail"].update(deploymentId=deployment, state=state, application=app, deploymentGroup=group)
    return out


def pipeline_events() -> list[dict]:
    text = fixture_path("aws/codepipeline-execution.eventbridge.ndjson").read_text()
    return [json.loads(line) for line in text.splitlines()]


def deployments(engine) -> dict[str, dict]:
    return {row["id"]: row for row in dump_projections(engine)["deployments"]}


@pytest.mark.parametrize("order", [1, -1])
def test_the_published_examples(engine, config, order):
    """The deployment SUCCESS and an instance SUCCESS of the same deployment, in either order: the
    instance event never outranks the deployment's own state."""
    summary = ingest.ingest_payloads(engine, [published("deployment"), published("instance")][::order], config)
    assert summary.quarantined == [] and summary.stored == 2
    (row,) = deployments(engine).values()
    assert (row["id"], row["source"], row["service"], row["environment"], row["production"]) == (
        "codedeploy:d-123456789",
        "codedeploy",
        "myApplication",
        "myDeploymentGroup",
        False,
    )
    assert (row["status"], row["status_at"], row["finished_at"]) == (
        "success",
        utc("2016-06-30T22:06:31"),
        utc("2016-06-30T22:06:31"),
    )
    assert row["is_rollback"] is None and row["rollback_of"] is None  # the events say nothing of rollbacks


def test_states_times_and_an_instance_alone(engine, config):
    stream = [
        event("deployment", "d-START", "START", "2024-05-01T10:00:00Z"),
        event("deployment", "d-READY", "START", "2024-05-01T10:00:00Z"),
        event("deployment", "d-READY", "READY", "2024-05-01T10:05:00Z"),
        event("deployment", "d-STOP", "START", "2024-05-01T10:00:00Z"),
        event("deployment", "d-STOP", "STOP", "2024-05-01T10:07:00Z"),
        event("deployment", "d-FAIL", "FAILURE", "2024-05-01T10:08:00Z"),
        event("instance", "d-INSTANCE", "START", "2024-05-01T10:01:00Z"),
        event("instance", "d-INSTANCE", "SUCCESS", "2024-05-01T10:02:00Z"),
    ]
    summary = ingest.ingest_payloads(engine, stream, config)
    assert summary.quarantined == []
    rows = deployments(engine)
    state = {key[len("codedeploy:") :]: (r["status"], r["started_at"], r["finished_at"]) for key, r in rows.items()}
    assert state == {
        "d-START": ("in_progress", utc("2024-05-01T10:00:00"), None),
        "d-READY": ("in_progress", utc("2024-05-01T10:00:00"), None),
        "d-STOP": ("canceled", utc("2024-05-01T10:00:00"), utc("2024-05-01T10:07:00")),
        "d-FAIL": ("failure", None, utc("2024-05-01T10:08:00")),
        "d-INSTANCE": ("in_progress", utc("2024-05-01T10:01:00"), None),
    }
    assert rows["codedeploy:d-READY"]["status_at"] == utc("2024-05-01T10:05:00")
    assert rows["codedeploy:d-INSTANCE"]["status_at"] is None
    # the default production pattern matches the group "checkout-prod"
    assert {(r["environment"], r["production"], r["service"]) for r in rows.values()} == {
        ("production", True, "checkout-app")
    }

    ingest.ingest_payloads(engine, [event("deployment", "d-INSTANCE", "SUCCESS", "2024-05-01T10:01:30Z")], config)
    assert deployments(engine)["codedeploy:d-INSTANCE"]["status"] == "success"


def test_services_and_production_from_the_configuration(engine):
    config = config_from_mapping(
        {
            "services": {"codedeploy": {"checkout-app/blue": "checkout-blue", "checkout-app": "checkout"}},
            "production": {"deployment_group_pattern": "^(blue|green)$"},
            "teams": {"checkout": "payments"},
        },
        environ={},
    )
    stream = [
        event("deployment", "d-1", "SUCCESS", "2024-05-01T10:00:00Z", group="blue"),
        event("deployment", "d-2", "SUCCESS", "2024-05-01T10:00:00Z", group="green"),
        event("deployment", "d-3", "SUCCESS", "2024-05-01T10:00:00Z", group="checkout-prod"),
        event("deployment", "d-4", "SUCCESS", "2024-05-01T10:00:00Z", app="search", group="green"),
    ]
    assert ingest.ingest_payloads(engine, stream, config).quarantined == []
    rows = deployments(engine)
    got = {key: (r["service"], r["team"], r["environment"], r["production"]) for key, r in rows.items()}
    assert got == {
        "codedeploy:d-1": ("checkout-blue", None, "production", True),
        "codedeploy:d-2": ("checkout", "payments", "production", True),
        "codedeploy:d-3": ("checkout", "payments", "checkout-prod", False),
        "codedeploy:d-4": ("search", None, "production", True),
    }


def test_bad_events_are_quarantined_naming_the_field(engine, config):
    bad_state = event("deployment", "d-1", "DONE", "2024-05-01T10:00:00Z")
    no_id = event("deployment", "d-2", "SUCCESS", "2024-05-01T10:00:00Z")
    del no_id["detail"]["deploymentId"]
    instance_stop = event("instance", "d-3", "STOP", "2024-05-01T10:00:00Z")  # not an instance state
    api_call = {"source": "aws.codedeploy", "detail-type": "AWS API Call via CloudTrail", "detail": {}}
    summary = ingest.ingest_payloads(engine, [bad_state, no_id, instance_stop, api_call], config)
    errors = sorted(q.error for q in summary.quarantined)
    assert len(errors) == 3
    assert any("detail.state" in e and "DONE" in e for e in errors)
    assert any("detail.deploymentId" in e for e in errors)
    assert any("detail.state" in e and "STOP" in e for e in errors)
    assert (summary.stored, summary.ignored) == (1, 1) and deployments(engine) == {}  # all archived, nothing projected


def story(config_services: dict | None = None) -> tuple[list[dict], object]:
    """myPipeline's execution (its Prod stage's CodeDeploy action failed with d-ABCDEF123, then succeeded
    with d-ABCDEF456) and those two deployments' own events, plus a deployment outside any pipeline."""
    config = config_from_mapping({"services": config_services or {}}, environ={})
    own = [
        event("deployment", "d-ABCDEF123", "START", "2024-05-01T10:06:45Z"),
        event("instance", "d-ABCDEF123", "FAILURE", "2024-05-01T10:09:00Z"),
        event("deployment", "d-ABCDEF123", "FAILURE", "2024-05-01T10:09:25Z"),
        event("deployment", "d-ABCDEF456", "START", "2024-05-01T10:20:05Z"),
        event("instance", "d-ABCDEF456", "SUCCESS", "2024-05-01T10:23:00Z"),
        event("deployment", "d-ABCDEF456", "SUCCESS", "2024-05-01T10:23:40Z"),
        event("deployment", "d-HOTFIX", "START", "2024-05-01T15:00:00Z"),
        event("deployment", "d-HOTFIX", "SUCCESS", "2024-05-01T15:04:00Z"),
    ]
    return pipeline_events() + own, config


def counted(engine) -> tuple[set[str], set[str]]:
    """(DORA's window deployments, the pipeline report's deployments) of 2024-05-01."""
    dora = load_dora_frames(engine, *DAY, Scope())
    pipes = load_pipeline_frames(engine, *DAY, Scope())
    return set(dora.deployments["id"]), set(pipes.deployments["id"])


@pytest.mark.parametrize("order", [1, -1])
def test_a_deployment_run_by_the_pipeline_counts_once(engine, order):
    """Linked by the action's external id (the services differ: no time rule can apply)."""
    stream, config = story()
    assert ingest.ingest_payloads(engine, stream[::order], config).quarantined == []
    rows = deployments(engine)
    assert rows["codedeploy:d-ABCDEF456"]["status"] == "success" and rows[PIPELINE_DEPLOYMENT]["status"] == "success"
    assert rows["codedeploy:d-ABCDEF456"]["service"] == "checkout-app" != rows[PIPELINE_DEPLOYMENT]["service"]
    dora, pipes = counted(engine)
    assert dora == {PIPELINE_DEPLOYMENT, "codedeploy:d-HOTFIX"}
    # the failed first attempt is no longer the action's external id and has another service: counted
    assert pipes == {"codedeploy:d-ABCDEF123", PIPELINE_DEPLOYMENT, "codedeploy:d-HOTFIX"}


def test_without_the_action_the_pipeline_spans_the_deployment_of_the_same_service(engine):
    stream, config = story({"pipelines": {"myPipeline": "checkout"}, "codedeploy": {"checkout-app": "checkout"}})
    no_actions = [e for e in stream if e["detail-type"] != "CodePipeline Action Execution State Change"]
    assert ingest.ingest_payloads(engine, no_actions, config).quarantined == []
    dora, pipes = counted(engine)
    assert dora == {PIPELINE_DEPLOYMENT, "codedeploy:d-HOTFIX"}
    assert pipes == {PIPELINE_DEPLOYMENT, "codedeploy:d-HOTFIX"}  # the failed attempt ran inside it too


def succeeds_in_prod(event: dict) -> bool:
    """The Prod stage's, its action's or the execution's SUCCEEDED."""
    detail = event["detail"]
    return detail["state"] == "SUCCEEDED" and (detail.get("stage") == "Prod" or "stage" not in detail)


def test_a_pipeline_deployment_that_does_not_count_does_not_hide_the_codedeploy_one(engine):
    """DORA drops a CodeDeploy deployment only for a CodePipeline deployment DORA counts."""
    stream, config = story()
    failed = [e for e in stream if not succeeds_in_prod(e)]
    assert ingest.ingest_payloads(engine, failed, config).quarantined == []
    rows = deployments(engine)
    assert rows[PIPELINE_DEPLOYMENT]["status"] != "success"
    dora, _ = counted(engine)
    assert dora == {"codedeploy:d-ABCDEF456", "codedeploy:d-HOTFIX"}


def test_a_bad_deployment_group_pattern_is_refused():
    with pytest.raises(ConfigError, match=r"production\.deployment_group_pattern"):
        config_from_mapping({"production": {"deployment_group_pattern": "(prod"}}, environ={})
