"""CodePipeline API backfill with botocore's Stubber, which checks every request and response
against the real service model; the history projects into the rows EventBridge events give."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber
from click.testing import CliRunner

from collector import ingest
from collector.errors import ConfigError, SourceUnavailable
from collector.history import codepipeline as history
from tests.conftest import dump_projections

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
SHA = "3f1c2e9b7a6d5c4b3a2918273645546372819aab"
RUN = "codepipeline:myPipeline:exec-new"


def client():
    return boto3.client("codepipeline", region_name="us-east-1",
                        config=BotoConfig(retries={"max_attempts": 1}))


def summary(execution_id: str, start: datetime, end: datetime, status: str = "Succeeded", **extra) -> dict:
    return {"pipelineExecutionId": execution_id, "status": status, "startTime": start, "lastUpdateTime": end,
            "sourceRevisions": [{"actionName": "Source", "revisionId": SHA, "revisionSummary": "Fix totals"}],
            "trigger": {"triggerType": "Webhook", "triggerDetail": "arn:aws:codestar-connections:x"}, **extra}


def action(stage: str, name: str, category: str, provider: str, start: datetime, end: datetime, status: str,
           external: str, execution_id: str = "exec-new", n: int = 0) -> dict:
    return {"pipelineExecutionId": execution_id, "actionExecutionId": f"{stage}-{name}-{n}", "pipelineVersion": 3,
            "stageName": stage, "actionName": name, "startTime": start, "lastUpdateTime": end, "status": status,
            "input": {"actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"}},
            "output": {"executionResult": {"externalExecutionId": external, "externalExecutionSummary": "done"}}}


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


NEW_ACTIONS = [
    action("Prod", "Deploy", "Deploy", "CodeDeploy", at(1201), at(1425), "Succeeded", "d-456", n=1),
    action("Prod", "Deploy", "Deploy", "CodeDeploy", at(401), at(570), "Failed", "d-123", n=0),
    action("Build", "Build", "Build", "CodeBuild", at(21), at(400), "Succeeded", "build:1"),
    action("Source", "Source", "Source", "CodeStarSourceConnection", at(1), at(20), "Succeeded", SHA),
]


def stub_history(stubber: Stubber, since_cutoff: bool = True) -> None:
    """Two pages of executions (newest first); the third execution is older than `since`."""
    stubber.add_response("list_pipeline_executions",
                         {"pipelineExecutionSummaries": [summary("exec-new", T0, at(1425))], "nextToken": "page-2"},
                         {"pipelineName": "myPipeline", "maxResults": 100})
    stubber.add_response("list_action_executions",
                         {"actionExecutionDetails": NEW_ACTIONS[:2], "nextToken": "more"},
                         {"pipelineName": "myPipeline", "filter": {"pipelineExecutionId": "exec-new"},
                          "maxResults": 100})
    stubber.add_response("list_action_executions", {"actionExecutionDetails": NEW_ACTIONS[2:]},
                         {"pipelineName": "myPipeline", "filter": {"pipelineExecutionId": "exec-new"},
                          "maxResults": 100, "nextToken": "more"})
    older = summary("exec-old", T0 - timedelta(days=2), T0 - timedelta(days=2) + timedelta(minutes=9),
                    status="Failed")
    ancient = summary("exec-ancient", T0 - timedelta(days=40), T0 - timedelta(days=40) + timedelta(minutes=9))
    stubber.add_response("list_pipeline_executions",
                         {"pipelineExecutionSummaries": [older, ancient]},
                         {"pipelineName": "myPipeline", "maxResults": 100, "nextToken": "page-2"})
    stubber.add_response("list_action_executions",
                         {"actionExecutionDetails": [action("Build", "Build", "Build", "CodeBuild",
                                                            older["startTime"], older["lastUpdateTime"],
                                                            "Failed", "build:0", "exec-old")]},
                         {"pipelineName": "myPipeline", "filter": {"pipelineExecutionId": "exec-old"},
                          "maxResults": 100})


def test_backfill_pages_through_history_and_stops_at_since(engine, config):
    cp = client()
    with Stubber(cp) as stubber:
        stub_history(stubber)
        done = []
        summary_ = history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=30), done.append)
        stubber.assert_no_pending_responses()
    assert summary_.stored == 2 and summary_.quarantined == [] and len(done) == 2
    rows = dump_projections(engine)
    runs = {r["id"]: r for r in rows["pipeline_runs"]}
    assert set(runs) == {RUN, "codepipeline:myPipeline:exec-old"}
    new = runs[RUN]
    assert (new["status"], new["started_at"], new["finished_at"], new["revision"], new["trigger"]) == (
        "succeeded", T0, at(1425), SHA, "Webhook")
    assert runs["codepipeline:myPipeline:exec-old"]["status"] == "failed"
    stages = {r["id"]: r for r in rows["stage_runs"]}
    prod = stages[f"{RUN}:stage:Prod"]
    assert (prod["status"], prod["failed_once"], prod["started_at"], prod["finished_at"]) == (
        "succeeded", True, at(401), at(1425))
    deploy = {r["id"]: r for r in rows["action_runs"]}[f"{RUN}:stage:Prod:action:Deploy"]
    assert (deploy["status"], deploy["external_id"], deploy["failed_once"]) == ("succeeded", "d-456", True)
    (dep,) = rows["deployments"]
    assert (dep["id"], dep["status"], dep["finished_at"], dep["environment"]) == (RUN, "success", at(1425),
                                                                                  "production")
    assert (RUN, SHA) in {(d["deployment_id"], d["change_id"]) for d in rows["deployment_changes"]}
    # Archived as received from the API, one payload per execution.
    assert all(json.loads(p)["pipelineName"] == "myPipeline" for p in raw_payloads(engine))


def raw_payloads(engine):
    from sqlalchemy import select

    from collector.models import raw_events
    with engine.connect() as conn:
        return conn.execute(select(raw_events.c.payload)).scalars().all()


def test_running_the_backfill_again_stores_nothing_new(engine, config):
    for expected_stored in (2, 0):
        cp = client()
        with Stubber(cp) as stubber:
            stub_history(stubber)
            result = history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=30))
        assert result.stored == expected_stored
    assert result.duplicates == 2


def test_history_gives_the_rows_eventbridge_events_give(engine, config, tmp_path):
    """The same execution seen through the API and through EventBridge projects identically."""
    cp = client()
    with Stubber(cp) as stubber:
        stubber.add_response("list_pipeline_executions",
                             {"pipelineExecutionSummaries": [summary("exec-new", T0, at(1425))]},
                             {"pipelineName": "myPipeline", "maxResults": 100})
        stubber.add_response("list_action_executions", {"actionExecutionDetails": NEW_ACTIONS},
                             {"pipelineName": "myPipeline", "filter": {"pipelineExecutionId": "exec-new"},
                              "maxResults": 100})
        history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=1))
    from_api = dump_projections(engine)

    def event(kind, time, **detail):
        return {"version": "0", "id": f"{kind}-{time}-{detail}", "detail-type": f"CodePipeline {kind} Execution State Change",
                "source": "aws.codepipeline", "account": "1", "time": time.isoformat(), "region": "us-east-1",
                "resources": [], "detail": {"pipeline": "myPipeline", "version": 3, "execution-id": "exec-new",
                                            "start-time": T0.isoformat(),
                                            "execution-trigger": {"trigger-type": "Webhook"}, **detail}}

    def act(stage, name, category, provider, start, end, state, external):
        kind = {"owner": "AWS", "category": category, "provider": provider, "version": "1"}
        return [event("Action", start, stage=stage, action=name, state="STARTED", type=kind),
                event("Action", end, stage=stage, action=name, state=state, type=kind,
                      **{"execution-result": {"external-execution-id": external}})]

    stream = [event("Pipeline", T0, state="STARTED")]
    stream += [event("Stage", at(1), stage="Source", state="STARTED"), event("Stage", at(20), stage="Source",
                                                                              state="SUCCEEDED")]
    stream += act("Source", "Source", "Source", "CodeStarSourceConnection", at(1), at(20), "SUCCEEDED", SHA)
    stream += [event("Stage", at(21), stage="Build", state="STARTED"), event("Stage", at(400), stage="Build",
                                                                              state="SUCCEEDED")]
    stream += act("Build", "Build", "Build", "CodeBuild", at(21), at(400), "SUCCEEDED", "build:1")
    stream += [event("Stage", at(401), stage="Prod", state="STARTED"),
               event("Stage", at(570), stage="Prod", state="FAILED"),
               event("Stage", at(1201), stage="Prod", state="RESUMED"),
               event("Stage", at(1425), stage="Prod", state="SUCCEEDED")]
    stream += act("Prod", "Deploy", "Deploy", "CodeDeploy", at(401), at(570), "FAILED", "d-123")
    stream += act("Prod", "Deploy", "Deploy", "CodeDeploy", at(1201), at(1425), "SUCCEEDED", "d-456")
    stream += [event("Pipeline", at(1425), state="SUCCEEDED")]
    from collector.db import create_store_engine, upgrade
    other = create_store_engine(f"sqlite:///{tmp_path / 'events.db'}")
    upgrade(other)
    assert ingest.ingest_payloads(other, stream, config).quarantined == []
    from_events = dump_projections(other)
    other.dispose()
    assert from_events == from_api


def test_aws_errors_become_clear_messages(engine, config):
    cp = client()
    with Stubber(cp) as stubber:
        stubber.add_client_error("list_pipeline_executions", "PipelineNotFoundException", "no such pipeline")
        with pytest.raises(ConfigError, match="pipeline 'ghost' not found"):
            history.backfill(engine, config, cp, ["ghost"], T0)
    cp = client()
    with Stubber(cp) as stubber:
        stubber.add_client_error("list_pipeline_executions", "ThrottlingException", "slow down", 400)
        with pytest.raises(SourceUnavailable, match="ThrottlingException"):
            history.backfill(engine, config, cp, ["myPipeline"], T0)


def test_cli_collect_codepipeline(store_url, monkeypatch):
    from gatewatch.cli import cli

    cp = client()
    stubber = Stubber(cp)
    stub_history(stubber)
    stubber.activate()
    seen = {}

    def fake_client(region, endpoint_url):
        seen.update(region=region, endpoint_url=endpoint_url)
        return cp

    monkeypatch.setattr(history, "make_client", fake_client)
    now = T0 + timedelta(days=1)
    monkeypatch.setattr("gatewatch.cli.collect.utcnow", lambda: now)
    result = CliRunner().invoke(cli, ["--db", store_url, "collect", "codepipeline", "--pipeline", "myPipeline",
                                      "--since", "30d", "--region", "eu-west-1", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{"):])
    assert out["stored"] == 2 and out["by_source"] == {"codepipeline": 2}
    assert seen == {"region": "eu-west-1", "endpoint_url": None}
    bad = CliRunner().invoke(cli, ["--db", store_url, "collect", "codepipeline", "--pipeline", "p", "--since", "x"])
    assert isinstance(bad.exception, ConfigError) and "--since" in str(bad.exception)  # main() maps it to exit 2
