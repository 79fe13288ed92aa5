"""`collect codedeploy`: an application's deployments read with botocore's Stubber (moto's CodeDeploy
lacks deployments' rollback facts; Stubber checks every request and response against the service
model), archived one per deployment, projected with rollbacks whatever the order of the EventBridge
events of the same deployments, and rebuilt by a replay; AWS errors as messages with an exit status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlalchemy import select

from collector import ingest
from collector.history import codedeploy as history
from collector.models import raw_events
from gatewatch import api
from gatewatch.errors import ConfigError, SourceUnavailable
from tests.conftest import dump_projections
from tests.test_source_codedeploy import event

APP = "checkout-app"
SINCE = datetime(2024, 4, 1, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
FAILED_AT = T0 + timedelta(minutes=9, seconds=25, milliseconds=123)  # EventBridge stamps 10:09:25Z
ROLLBACK_MESSAGE = "Automatic rollback triggered by failed deployment d-ORIG."


def client():
    return boto3.client("codedeploy", region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 1}))


def info(deployment: str, status: str, group: str = "checkout-prod", **extra) -> dict:
    """A DeploymentInfo as BatchGetDeployments returns it (API_DeploymentInfo.html's fields)."""
    out = {
        "applicationName": APP,
        "deploymentGroupName": group,
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        "deploymentId": deployment,
        "status": status,
        "creator": "user",
        "createTime": T0,
        "startTime": T0 + timedelta(seconds=5),
        "revision": {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "app.zip", "bundleType": "zip"}},
        "computePlatform": "Server",
    }
    out.update(extra)
    return out


def rollback_story(failed_at: datetime = FAILED_AT) -> list[dict]:
    """d-ORIG fails at `failed_at` and CodeDeploy rolls it back with d-RB; d-STAGE still runs."""
    return [
        info(
            "d-ORIG",
            "Failed",
            completeTime=failed_at,
            errorInformation={"code": "HEALTH_CONSTRAINTS", "message": "The overall deployment failed"},
            rollbackInfo={"rollbackDeploymentId": "d-RB", "rollbackMessage": ROLLBACK_MESSAGE},
        ),
        info(
            "d-RB",
            "Succeeded",
            creator="codeDeployRollback",
            createTime=T0 + timedelta(minutes=9, seconds=30),
            startTime=T0 + timedelta(minutes=9, seconds=31),
            completeTime=T0 + timedelta(minutes=12),
            rollbackInfo={"rollbackTriggeringDeploymentId": "d-ORIG", "rollbackMessage": ROLLBACK_MESSAGE},
        ),
        info("d-STAGE", "InProgress", group="checkout-staging"),
    ]


def story_events() -> list[dict]:
    """The same deployments' EventBridge events (the published example, re-dated)."""
    return [
        event("deployment", "d-ORIG", "START", "2024-05-01T10:00:05Z"),
        event("instance", "d-ORIG", "FAILURE", "2024-05-01T10:09:00Z"),
        event("deployment", "d-ORIG", "FAILURE", "2024-05-01T10:09:25Z"),
        event("deployment", "d-RB", "START", "2024-05-01T10:09:31Z"),
        event("deployment", "d-RB", "SUCCESS", "2024-05-01T10:12:00Z"),
        event("deployment", "d-STAGE", "START", "2024-05-01T10:00:05Z", group="checkout-staging"),
    ]


def stub_reads(stubber: Stubber, infos: list[dict], groups: list[str] | None = None) -> None:
    """ListDeploymentGroups (unless `groups` are given), ListDeployments per group, BatchGetDeployments."""
    by_group: dict[str, list[str]] = {}
    for one in infos:
        by_group.setdefault(one["deploymentGroupName"], []).append(one["deploymentId"])
    if groups is None:
        groups = sorted(by_group)
        stubber.add_response(
            "list_deployment_groups",
            {"applicationName": APP, "deploymentGroups": groups},
            {"applicationName": APP},
        )
    ids = []
    for group in groups:
        stubber.add_response(
            "list_deployments",
            {"deployments": by_group.get(group, [])},
            {"applicationName": APP, "deploymentGroupName": group, "createTimeRange": {"start": SINCE}},
        )
        ids += by_group.get(group, [])
    wanted = {one["deploymentId"]: one for one in infos}
    for start in range(0, len(ids), 25):
        chunk = ids[start : start + 25]
        stubber.add_response(
            "batch_get_deployments", {"deploymentsInfo": [wanted[i] for i in chunk]}, {"deploymentIds": chunk}
        )


def collect(engine, config, infos: list[dict], groups: list[str] | None = None, **kwargs):
    cd = client()
    with Stubber(cd) as stubber:
        stub_reads(stubber, infos, groups)
        summary = api.backfill_codedeploy(engine, config, cd, APP, SINCE, groups, **kwargs)
        stubber.assert_no_pending_responses()
    return summary


def deployments(engine) -> dict[str, dict]:
    return {row["id"][len("codedeploy:") :]: row for row in dump_projections(engine)["deployments"]}


def test_a_failed_deployment_and_its_automatic_rollback(engine, config):
    summary = collect(engine, config, rollback_story())
    assert summary.quarantined == [] and summary.stored == 3 and summary.by_source == {"codedeploy": 3}
    rows = deployments(engine)
    got = {
        d: (r["status"], r["status_at"], r["started_at"], r["finished_at"], r["is_rollback"], r["rollback_of"])
        for d, r in rows.items()
    }
    assert got == {
        "d-ORIG": ("rolled_back", FAILED_AT, T0 + timedelta(seconds=5), FAILED_AT, False, None),
        "d-RB": (
            "success",
            T0 + timedelta(minutes=12),
            T0 + timedelta(minutes=9, seconds=31),
            T0 + timedelta(minutes=12),
            True,
            "codedeploy:d-ORIG",
        ),
        "d-STAGE": ("in_progress", T0 + timedelta(seconds=5), T0 + timedelta(seconds=5), None, False, None),
    }
    described = {d: (r["source"], r["service"], r["environment"], r["production"]) for d, r in rows.items()}
    assert described["d-RB"] == ("codedeploy", APP, "production", True)
    assert described["d-STAGE"] == ("codedeploy", APP, "checkout-staging", False)
    with engine.connect() as conn:
        archived = conn.execute(select(raw_events.c.source, raw_events.c.kind, raw_events.c.payload)).all()
    assert {(s, k) for s, k, _ in archived} == {("codedeploy", "deployment-info")}
    original = next(json.loads(p) for _, _, p in archived if '"d-ORIG"' in p)
    assert original["deploymentInfo"]["completeTime"] == "2024-05-01T10:09:25.123000+00:00"


@pytest.mark.parametrize(
    "failed_at",
    [FAILED_AT, FAILED_AT.replace(microsecond=0), FAILED_AT - timedelta(seconds=2, milliseconds=123)],
    ids=["later", "same-second", "event-stamped-2s-later"],
)
@pytest.mark.parametrize("order", ["events-first", "api-first", "interleaved"])
def test_the_eventbridge_events_in_any_order_give_the_same_rows(engine, another_engine, config, failed_at, order):
    """The FAILURE event never undoes rolled_back, whether EventBridge stamped it before, at or after
    the API's completeTime."""
    events = story_events()
    if order == "events-first":
        ingest.ingest_payloads(engine, events, config)
        collect(engine, config, rollback_story(failed_at))
    elif order == "api-first":
        collect(engine, config, rollback_story(failed_at))
        ingest.ingest_payloads(engine, events[::-1], config)
    else:
        ingest.ingest_payloads(engine, events[::2], config)
        collect(engine, config, rollback_story(failed_at))
        ingest.ingest_payloads(engine, events[1::2], config)
    collect(another_engine, config, rollback_story(failed_at))
    ingest.ingest_payloads(another_engine, events, config)
    rows = deployments(engine)
    assert rows == deployments(another_engine)
    assert (rows["d-ORIG"]["status"], rows["d-ORIG"]["finished_at"]) == ("rolled_back", failed_at)
    assert (rows["d-RB"]["is_rollback"], rows["d-RB"]["rollback_of"]) == (True, "codedeploy:d-ORIG")
    assert rows["d-STAGE"]["status"] == "in_progress"


def test_events_alone_know_no_rollback(engine, config):
    """What the API adds: without it the same story is a failure and a success."""
    ingest.ingest_payloads(engine, story_events(), config)
    rows = deployments(engine)
    assert (rows["d-ORIG"]["status"], rows["d-RB"]["is_rollback"], rows["d-RB"]["rollback_of"]) == (
        "failure",
        None,
        None,
    )


def test_running_again_stores_only_what_changed_and_a_replay_rebuilds_the_rows(engine, config):
    collect(engine, config, rollback_story())
    ingest.ingest_payloads(engine, story_events(), config)
    later = rollback_story()
    later[2] = info("d-STAGE", "Succeeded", group="checkout-staging", completeTime=T0 + timedelta(minutes=4))
    summary = collect(engine, config, later)
    assert (summary.stored, summary.duplicates) == (1, 2)
    before = dump_projections(engine)
    assert deployments(engine)["d-STAGE"]["status"] == "success"
    ingest.replay(engine, config)
    assert dump_projections(engine) == before


def test_a_stopped_deployment_rolled_back_and_one_without_a_rollback(engine, config):
    """Stopped (e.g. by an alarm) with a rollback is rolled_back; Failed without one stays a failure;
    a CloudFormation blue/green rollback is a rollback too; Queued is pending at its creation time."""
    infos = [
        info(
            "d-ALARM", "Stopped", completeTime=T0 + timedelta(minutes=3), rollbackInfo={"rollbackDeploymentId": "d-X"}
        ),
        info("d-BROKEN", "Failed", completeTime=T0 + timedelta(minutes=3)),
        info("d-CFN", "Succeeded", creator="CloudFormationRollback", completeTime=T0 + timedelta(minutes=5)),
        info("d-QUEUED", "Queued"),
    ]
    infos[3].pop("startTime")
    assert collect(engine, config, infos).quarantined == []
    rows = deployments(engine)
    got = {d: (r["status"], r["status_at"], r["is_rollback"], r["rollback_of"]) for d, r in rows.items()}
    assert got == {
        "d-ALARM": ("rolled_back", T0 + timedelta(minutes=3), False, None),
        "d-BROKEN": ("failure", T0 + timedelta(minutes=3), False, None),
        "d-CFN": ("success", T0 + timedelta(minutes=5), True, None),
        "d-QUEUED": ("pending", T0, False, None),
    }


def test_deployment_groups_given_many_deployments_are_read_25_at_a_time(engine, config):
    infos = [info(f"d-{n:03d}", "Succeeded", completeTime=T0 + timedelta(minutes=n)) for n in range(30)]
    summary = collect(engine, config, infos, groups=["checkout-prod", "empty-group"])
    assert summary.stored == 30 and len(deployments(engine)) == 30


def test_list_deployments_is_paginated(engine, config):
    cd = client()
    query = {"applicationName": APP, "deploymentGroupName": "checkout-prod", "createTimeRange": {"start": SINCE}}
    with Stubber(cd) as stubber:
        stubber.add_response("list_deployments", {"deployments": ["d-1"], "nextToken": "page2"}, query)
        stubber.add_response("list_deployments", {"deployments": ["d-2"]}, {**query, "nextToken": "page2"})
        stubber.add_response(
            "batch_get_deployments",
            {"deploymentsInfo": [info("d-1", "Created"), info("d-2", "Created")]},
            {"deploymentIds": ["d-1", "d-2"]},
        )
        summary = history.backfill(engine, config, cd, APP, SINCE, ["checkout-prod"])
        stubber.assert_no_pending_responses()
    assert summary.stored == 2 and set(deployments(engine)) == {"d-1", "d-2"}


def test_an_unknown_status_is_quarantined_naming_the_field(engine, config):
    """Stubber does not check enum values: a status CodeDeploy does not document is the normaliser's to refuse."""
    summary = collect(engine, config, [info("d-ODD", "Oops"), info("d-OK", "Created")])
    (q,) = summary.quarantined
    assert q.source == "codedeploy" and "deploymentInfo.status" in q.error and "Oops" in q.error
    assert summary.stored == 1 and set(deployments(engine)) == {"d-OK"}
    with engine.connect() as conn:
        assert sorted(conn.execute(select(raw_events.c.status)).scalars()) == ["ok", "quarantined"]  # both archived


def test_aws_errors_become_clear_messages(engine, config):
    cd = client()
    with Stubber(cd) as stubber:
        stubber.add_client_error(
            "list_deployment_groups", "ApplicationDoesNotExistException", "No application found for name: ghost"
        )
        with pytest.raises(ConfigError, match="No application found for name: ghost: check --application"):
            history.backfill(engine, config, cd, APP, SINCE)
    cd = client()
    with Stubber(cd) as stubber:
        stubber.add_client_error("list_deployments", "AccessDeniedException", "not authorized")
        with pytest.raises(ConfigError, match="codedeploy:ListDeployments"):
            history.backfill(engine, config, cd, APP, SINCE, ["checkout-prod"])
    cd = client()
    with Stubber(cd) as stubber:
        query = {"applicationName": APP, "deploymentGroupName": "checkout-prod", "createTimeRange": {"start": SINCE}}
        ids = [f"d-{n}" for n in range(26)]
        stubber.add_response("list_deployments", {"deployments": ids}, query)
        stubber.add_response(
            "batch_get_deployments",
            {"deploymentsInfo": [info(i, "Created") for i in ids[:25]]},
            {"deploymentIds": ids[:25]},
        )
        stubber.add_client_error("batch_get_deployments", "ThrottlingException", "Rate exceeded")
        with pytest.raises(SourceUnavailable, match=r"ThrottlingException .*\(25 deployment\(s\) stored before this"):
            history.backfill(engine, config, cd, APP, SINCE, ["checkout-prod"], batch_size=25)
    assert len(deployments(engine)) == 25  # the stored batch is kept


def test_cli_collect_codedeploy(store_url, monkeypatch):
    from gatewatch.cli import cli

    cd, seen = client(), {}
    with Stubber(cd) as stubber:
        stub_reads(stubber, rollback_story()[:2], groups=["checkout-prod"])
        monkeypatch.setattr(history, "make_client", lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs) or cd)
        monkeypatch.setattr("gatewatch.api.utcnow", lambda: SINCE + timedelta(days=30))
        options = f"--application {APP} --deployment-group checkout-prod --region eu-west-1 --endpoint-url http://x"
        result = CliRunner().invoke(cli, ["--db", store_url, "collect", "codedeploy", *options.split(), "--json"])
        assert result.exit_code == 0, result.output
        stubber.assert_no_pending_responses()
    out = json.loads(result.stdout)
    assert (out["stored"], out["quarantined"], out["by_source"]) == (2, 0, {"codedeploy": 2})
    assert seen == {"args": ("eu-west-1", "http://x"), "kwargs": {"service": "codedeploy"}}


def test_cli_with_an_unreachable_endpoint_exits_5(gatewatch, tmp_path):
    options = f"--application {APP} --region eu-west-1 --endpoint-url http://127.0.0.1:1"
    res = gatewatch(
        *f"--db sqlite:///{tmp_path / 'store.db'} collect codedeploy {options}".split(),
        env={"AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": str(tmp_path / "none")},
    )
    assert res.returncode == 5, res.stderr
    assert res.stderr.startswith("error: CodeDeploy could not be reached") and "Traceback" not in res.stderr
