"""CodePipeline API backfill with botocore's Stubber, which checks every request and response
against the real service model (enum values checked here, since Stubber does not); the history
projects into the rows EventBridge events give. The CLI against moto's server for what it answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlalchemy import select

from collector import ingest
from collector.history import codepipeline as history
from collector.models import raw_events
from collector.sources import codepipeline as source
from gatewatch.errors import ConfigError, SourceUnavailable
from tests.conftest import dump_projections, fixture_path
from tests.processes import free_port

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SHA = "3f1c2e9b7a6d5c4b3a2918273645546372819aab"
RUN = "codepipeline:myPipeline:exec-new"
PAGE = {"pipelineName": "myPipeline", "maxResults": 100}


def client():
    return boto3.client("codepipeline", region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 1}))


def check_enums(shape, value, path: str) -> None:
    """Every enum-typed string in `value` is one the service model allows."""
    if shape.type_name == "structure":
        for key, item in value.items():
            check_enums(shape.members[key], item, f"{path}.{key}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            check_enums(shape.member, item, f"{path}[{i}]")
    elif shape.type_name == "string" and shape.enum:
        assert value in shape.enum, f"{path}: {value!r} is not one of {shape.enum}"


def respond(stubber: Stubber, operation: str, response: dict, params: dict) -> None:
    """Stubber.add_response after checking the enum values Stubber lets through."""
    meta = stubber.client.meta
    check_enums(
        meta.service_model.operation_model(meta.method_to_api_mapping[operation]).output_shape, response, operation
    )
    stubber.add_response(operation, response, params)


def actions_of(execution_id: str, token: str | None = None) -> dict:
    params = {"pipelineName": "myPipeline", "filter": {"pipelineExecutionId": execution_id}, "maxResults": 100}
    return {**params, "nextToken": token} if token else params


def summary(execution_id: str, start: datetime, end: datetime, status: str = "Succeeded", **extra) -> dict:
    return {
        "pipelineExecutionId": execution_id,
        "status": status,
        "startTime": start,
        "lastUpdateTime": end,
        "sourceRevisions": [{"actionName": "Source", "revisionId": SHA, "revisionSummary": "Fix totals"}],
        "trigger": {"triggerType": "Webhook", "triggerDetail": "arn:aws:codestar-connections:x"},
        **extra,
    }


def action(
    stage: str,
    name: str,
    category: str,
    provider: str,
    start: datetime,
    end: datetime,
    status: str,
    external: str,
    execution_id: str = "exec-new",
    n: int = 0,
) -> dict:
    return {
        "pipelineExecutionId": execution_id,
        "actionExecutionId": f"{stage}-{name}-{n}",
        "pipelineVersion": 3,
        "stageName": stage,
        "actionName": name,
        "startTime": start,
        "lastUpdateTime": end,
        "status": status,
        "input": {"actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"}},
        "output": {"executionResult": {"externalExecutionId": external, "externalExecutionSummary": "done"}},
    }


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


NEW_ACTIONS = [
    action("Prod", "Deploy", "Deploy", "CodeDeploy", at(1201), at(1425), "Succeeded", "d-456", n=1),
    action("Prod", "Deploy", "Deploy", "CodeDeploy", at(401), at(570), "Failed", "d-123", n=0),
    action("Build", "Build", "Build", "CodeBuild", at(21), at(400), "Succeeded", "build:1"),
    action("Source", "Source", "Source", "CodeStarSourceConnection", at(1), at(20), "Succeeded", SHA),
]
OLDER = summary("exec-old", T0 - timedelta(days=2), T0 - timedelta(days=2) + timedelta(minutes=9), status="Failed")
ANCIENT = summary("exec-ancient", T0 - timedelta(days=40), T0 - timedelta(days=40) + timedelta(minutes=9))


def stub_first_page(stubber: Stubber) -> None:
    """Page 1 of executions: the newest, whose actions come in two pages."""
    respond(
        stubber,
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [summary("exec-new", T0, at(1425))], "nextToken": "page-2"},
        PAGE,
    )
    respond(
        stubber,
        "list_action_executions",
        {"actionExecutionDetails": NEW_ACTIONS[:2], "nextToken": "more"},
        actions_of("exec-new"),
    )
    respond(
        stubber, "list_action_executions", {"actionExecutionDetails": NEW_ACTIONS[2:]}, actions_of("exec-new", "more")
    )


def stub_history(stubber: Stubber) -> None:
    """Two pages of executions (newest first); the third execution is older than `since` (30 days)."""
    stub_first_page(stubber)
    respond(
        stubber,
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [OLDER, ANCIENT]},
        {**PAGE, "nextToken": "page-2"},
    )
    respond(
        stubber,
        "list_action_executions",
        {
            "actionExecutionDetails": [
                action(
                    "Build",
                    "Build",
                    "Build",
                    "CodeBuild",
                    OLDER["startTime"],
                    OLDER["lastUpdateTime"],
                    "Failed",
                    "build:0",
                    "exec-old",
                )
            ]
        },
        actions_of("exec-old"),
    )


def raw_payloads(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(select(raw_events.c.payload).order_by(raw_events.c.id)).scalars().all()


def test_the_service_model_enums_are_all_mapped():
    """Every status, category and rollback trigger the API can answer is one the normaliser knows."""
    model = client().meta.service_model
    enum = lambda name: set(model.shape_for(name).enum)  # noqa: E731
    assert set(source.API_STATES) == enum("PipelineExecutionStatus") | enum("ActionExecutionStatus")
    assert {c.lower() for c in enum("ActionCategory")} <= set(source.CATEGORIES)
    assert set(source.CATEGORIES.values()) <= {"source", "build", "test", "deploy", "approval", "invoke"}
    assert enum("TriggerType") >= source.ROLLBACK_TRIGGERS
    with pytest.raises(AssertionError, match="'Oops' is not one of"):  # the enum check above is live
        respond(
            Stubber(client()),
            "list_pipeline_executions",
            {"pipelineExecutionSummaries": [summary("x", T0, T0, status="Oops")]},
            PAGE,
        )


def test_backfill_pages_through_history_and_stops_at_since(engine, config):
    cp = client()
    with Stubber(cp) as stubber:
        stub_history(stubber)
        done = []
        summary_ = history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=30), done.append)
        stubber.assert_no_pending_responses()
    assert summary_.stored == 2 and summary_.quarantined == [] and done == [1, 1]
    rows = dump_projections(engine)
    runs = {r["id"]: r for r in rows["pipeline_runs"]}
    assert set(runs) == {RUN, "codepipeline:myPipeline:exec-old"}  # exec-ancient is older than `since`
    new = runs[RUN]
    assert (
        new["status"],
        new["status_at"],
        new["started_at"],
        new["finished_at"],
        new["revision"],
        new["trigger"],
        new["is_rollback"],
    ) == ("succeeded", at(1425), T0, at(1425), SHA, "Webhook", False)
    old = runs["codepipeline:myPipeline:exec-old"]
    assert (old["status"], old["finished_at"]) == ("failed", OLDER["lastUpdateTime"])
    stages = {r["id"]: r for r in rows["stage_runs"]}
    prod = stages[f"{RUN}:stage:Prod"]
    assert (prod["status"], prod["failed_once"], prod["started_at"], prod["finished_at"]) == (
        "succeeded",
        True,
        at(401),
        at(1425),
    )
    assert (stages[f"{RUN}:stage:Build"]["status"], stages[f"{RUN}:stage:Build"]["failed_once"]) == ("succeeded", False)
    actions = {r["id"]: r for r in rows["action_runs"]}
    deploy = actions[f"{RUN}:stage:Prod:action:Deploy"]
    assert (deploy["status"], deploy["external_id"], deploy["failed_once"], deploy["category"], deploy["provider"]) == (
        "succeeded",
        "d-456",
        True,
        "deploy",
        "CodeDeploy",
    )
    assert (
        actions[f"{RUN}:stage:Source:action:Source"]["category"],
        actions[f"{RUN}:stage:Source:action:Source"]["external_id"],
    ) == ("source", SHA)
    (dep,) = rows["deployments"]  # exec-old never reached Prod
    assert (
        dep["id"],
        dep["status"],
        dep["started_at"],
        dep["finished_at"],
        dep["environment"],
        dep["pipeline_run_id"],
    ) == (RUN, "success", at(401), at(1425), "production", RUN)
    assert (RUN, SHA) in {(d["deployment_id"], d["change_id"]) for d in rows["deployment_changes"]}
    payloads = [json.loads(p) for p in raw_payloads(engine)]
    assert [p["pipelineExecutionSummary"]["pipelineExecutionId"] for p in payloads] == ["exec-new", "exec-old"]
    assert len(payloads[0]["actionExecutionDetails"]) == 4  # both pages of actions in one payload
    assert payloads[0]["pipelineExecutionSummary"]["startTime"] == "2024-05-01T10:00:00+00:00"


def test_running_the_backfill_again_stores_nothing_new(engine, config):
    for expected_stored in (2, 0):
        cp = client()
        with Stubber(cp) as stubber:
            stub_history(stubber)
            result = history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=30))
        assert result.stored == expected_stored
    assert result.duplicates == 2


def test_an_execution_still_running_is_updated_by_the_next_backfill(engine, config):
    """First read in progress (Prod running), then finished: the new content is archived and wins."""
    running = [a for a in NEW_ACTIONS if a["actionExecutionId"] != "Prod-Deploy-1"]
    for status, end, actions, expected in (
        ("InProgress", at(600), running, ("in_progress", "failure")),
        ("Succeeded", at(1425), NEW_ACTIONS, ("succeeded", "success")),
    ):
        cp = client()
        with Stubber(cp) as stubber:
            respond(
                stubber,
                "list_pipeline_executions",
                {"pipelineExecutionSummaries": [summary("exec-new", T0, end, status=status)]},
                PAGE,
            )
            respond(stubber, "list_action_executions", {"actionExecutionDetails": actions}, actions_of("exec-new"))
            assert history.backfill(engine, config, cp, ["myPipeline"], T0).stored == 1
        rows = dump_projections(engine)
        (run,) = rows["pipeline_runs"]
        (dep,) = rows["deployments"]
        assert (run["status"], dep["status"]) == expected
    assert (run["finished_at"], dep["finished_at"]) == (at(1425), at(1425))


def test_an_interrupted_backfill_keeps_the_batches_it_stored(engine, config):
    cp = client()
    with Stubber(cp) as stubber:
        stub_first_page(stubber)
        stubber.add_client_error(
            "list_pipeline_executions",
            "ThrottlingException",
            "Rate exceeded",
            400,
            expected_params={**PAGE, "nextToken": "page-2"},
        )
        with pytest.raises(SourceUnavailable) as err:
            history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=30), batch_size=1)
    message = str(err.value)
    assert "ThrottlingException" in message and "Rate exceeded" in message and "AWS_RETRY_MODE" in message
    assert "1 execution(s) stored before this" in message
    rows = dump_projections(engine)
    assert [r["id"] for r in rows["pipeline_runs"]] == [RUN] and rows["pipeline_runs"][0]["status"] == "succeeded"


def test_archived_times_are_utc_whatever_the_local_zone(engine, config):
    """botocore hands out local-time datetimes; archiving them as UTC keeps the content hash, and so the
    dedupe, the same on every machine."""
    plus2 = timezone(timedelta(hours=2))
    for zone, expected_stored in ((UTC, 1), (plus2, 0)):
        cp = client()
        with Stubber(cp) as stubber:
            respond(
                stubber,
                "list_pipeline_executions",
                {"pipelineExecutionSummaries": [summary("exec-new", T0.astimezone(zone), at(1425).astimezone(zone))]},
                PAGE,
            )
            local = [
                {
                    **a,
                    "startTime": a["startTime"].astimezone(zone),
                    "lastUpdateTime": a["lastUpdateTime"].astimezone(zone),
                }
                for a in NEW_ACTIONS
            ]
            respond(stubber, "list_action_executions", {"actionExecutionDetails": local}, actions_of("exec-new"))
            assert history.backfill(engine, config, cp, ["myPipeline"], T0).stored == expected_stored
    (payload,) = [json.loads(p) for p in raw_payloads(engine)]
    assert payload["pipelineExecutionSummary"]["lastUpdateTime"] == "2024-05-01T10:23:45+00:00"


def test_the_git_source_gives_the_revision_and_rollbacks_are_marked(engine, config):
    """An S3 source's revision is an object version: the CodeCommit source's commit is the revision.
    A rollback execution (executionType ROLLBACK, trigger ManualRollback) marks its run and deployment."""
    two_sources = [
        action("Source", "Artifacts", "Source", "S3", at(1), at(5), "Succeeded", "v3XyZ.version"),
        action("Source", "Code", "Source", "CodeCommit", at(1), at(6), "Succeeded", SHA),
        action("Prod", "Deploy", "Deploy", "CodeDeploy", at(10), at(90), "Succeeded", "d-9"),
    ]
    rollback = summary(
        "exec-new",
        T0,
        at(90),
        executionType="ROLLBACK",
        rollbackMetadata={"rollbackTargetPipelineExecutionId": "exec-old"},
        trigger={"triggerType": "ManualRollback", "triggerDetail": "arn:aws:iam::1:user/ops"},
        sourceRevisions=[
            {"actionName": "Artifacts", "revisionId": "v3XyZ.version"},
            {"actionName": "Code", "revisionId": SHA},
        ],
    )
    cp = client()
    with Stubber(cp) as stubber:
        respond(stubber, "list_pipeline_executions", {"pipelineExecutionSummaries": [rollback]}, PAGE)
        respond(stubber, "list_action_executions", {"actionExecutionDetails": two_sources}, actions_of("exec-new"))
        history.backfill(engine, config, cp, ["myPipeline"], T0)
    rows = dump_projections(engine)
    (run,) = rows["pipeline_runs"]
    (dep,) = rows["deployments"]
    assert (run["revision"], run["trigger"], run["is_rollback"], dep["is_rollback"]) == (
        SHA,
        "ManualRollback",
        True,
        True,
    )
    assert [(d["deployment_id"], d["change_id"]) for d in rows["deployment_changes"]] == [(RUN, SHA)]


def test_a_bad_history_payload_is_quarantined_with_the_field_named(engine, config):
    cp = client()
    with Stubber(cp) as stubber:
        respond(
            stubber, "list_pipeline_executions", {"pipelineExecutionSummaries": [summary("exec-new", T0, T0)]}, PAGE
        )
        respond(stubber, "list_action_executions", {"actionExecutionDetails": []}, actions_of("exec-new"))
        summary_ = history.backfill(engine, config, cp, ["myPipeline"], T0, region="us-east-1")
    assert summary_.quarantined == []
    payload = json.loads(raw_payloads(engine)[0])
    payload["pipelineExecutionSummary"]["status"] = "Paused"  # what a future API might answer
    (q,) = ingest.ingest_payloads(engine, [payload], config, source="codepipeline").quarantined
    assert q.kind == "execution-history" and q.error.startswith(
        "field 'pipelineExecutionSummary.status': expected one of InProgress"
    )


def test_history_gives_the_rows_eventbridge_events_give(engine, another_engine, config):
    """The same execution seen through the API and through EventBridge projects identically (the events
    here carry no `pipeline-execution-attempt`, which the API does not report)."""
    cp = client()
    with Stubber(cp) as stubber:
        respond(
            stubber,
            "list_pipeline_executions",
            {"pipelineExecutionSummaries": [summary("exec-new", T0, at(1425))]},
            PAGE,
        )
        respond(stubber, "list_action_executions", {"actionExecutionDetails": NEW_ACTIONS}, actions_of("exec-new"))
        history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=1))
    from_api = dump_projections(engine)

    def event(kind, time, **detail):
        return {
            "version": "0",
            "id": f"{kind}-{time}-{detail}",
            "detail-type": f"CodePipeline {kind} Execution State Change",
            "source": "aws.codepipeline",
            "account": "1",
            "time": time.isoformat(),
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "pipeline": "myPipeline",
                "version": 3,
                "execution-id": "exec-new",
                "start-time": T0.isoformat(),
                "execution-trigger": {"trigger-type": "Webhook"},
                **detail,
            },
        }

    def act(stage, name, category, provider, start, end, state, external):
        kind = {"owner": "AWS", "category": category, "provider": provider, "version": "1"}
        return [
            event("Action", start, stage=stage, action=name, state="STARTED", type=kind),
            event(
                "Action",
                end,
                stage=stage,
                action=name,
                state=state,
                type=kind,
                **{"execution-result": {"external-execution-id": external}},
            ),
        ]

    stream = [event("Pipeline", T0, state="STARTED")]
    stream += [
        event("Stage", at(1), stage="Source", state="STARTED"),
        event("Stage", at(20), stage="Source", state="SUCCEEDED"),
    ]
    stream += act("Source", "Source", "Source", "CodeStarSourceConnection", at(1), at(20), "SUCCEEDED", SHA)
    stream += [
        event("Stage", at(21), stage="Build", state="STARTED"),
        event("Stage", at(400), stage="Build", state="SUCCEEDED"),
    ]
    stream += act("Build", "Build", "Build", "CodeBuild", at(21), at(400), "SUCCEEDED", "build:1")
    stream += [
        event("Stage", at(401), stage="Prod", state="STARTED"),
        event("Stage", at(570), stage="Prod", state="FAILED"),
        event("Stage", at(1201), stage="Prod", state="RESUMED"),
        event("Stage", at(1425), stage="Prod", state="SUCCEEDED"),
    ]
    stream += act("Prod", "Deploy", "Deploy", "CodeDeploy", at(401), at(570), "FAILED", "d-123")
    stream += act("Prod", "Deploy", "Deploy", "CodeDeploy", at(1201), at(1425), "SUCCEEDED", "d-456")
    stream += [event("Pipeline", at(1425), state="SUCCEEDED")]
    assert ingest.ingest_payloads(another_engine, stream, config).quarantined == []
    from_events = dump_projections(another_engine)
    assert from_events == from_api
    assert from_api["deployments"] and from_api["deployment_changes"]  # the comparison covers them


# --- one execution both ways: the documented EventBridge events and the API (issue 17) ----------------

DOC_EXECUTION = "5e1f7a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
DOC_RUN = f"codepipeline:myPipeline:{DOC_EXECUTION}"
CONNECTION = "arn:aws:codestar-connections:us-west-2:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2"
BUCKET = "codepipeline-us-west-2-BUCKETEXAMPLE"


def on_day(hms: str) -> datetime:
    return datetime.fromisoformat(f"2024-05-01T{hms}+00:00")


def api_action(
    stage: str,
    name: str,
    provider: str,
    start: str,
    end: str,
    status: str,
    result: dict,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    execution_id: str = DOC_EXECUTION,
) -> dict:
    """An ActionExecutionDetail as ListActionExecutions answers it."""

    def artifact(name: str) -> dict:
        return {"name": name, "s3location": {"bucket": BUCKET, "key": f"myPipeline/{name[:10]}/KEYEXAMPLE"}}

    category = {"CodeDeploy": "Deploy", "CodeBuild": "Build"}.get(provider, "Source")
    return {
        "pipelineExecutionId": execution_id,
        "actionExecutionId": f"{name}-{start}",
        "pipelineVersion": 3,
        "stageName": stage,
        "actionName": name,
        "startTime": on_day(start),
        "lastUpdateTime": on_day(end),
        "status": status,
        "input": {
            "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
            "configuration": {},
            "region": "us-west-2",
            "inputArtifacts": [artifact(n) for n in inputs],
        },
        "output": {"outputArtifacts": [artifact(n) for n in outputs], "executionResult": result},
    }


def deployment_result(deployment: str, outcome: str) -> dict:
    return {
        "externalExecutionId": deployment,
        "externalExecutionSummary": f"Deployment {deployment} {outcome}",
        "externalExecutionUrl": f"https://us-west-2.console.aws.amazon.com/codedeploy/home?#/deployments/{deployment}",
    }


BUILD_ID = "checkout-build:1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
DOC_ACTIONS = [  # newest first, as the API lists them
    api_action(
        "Prod", "myAction", "CodeDeploy", "10:20:01", "10:23:45", "Succeeded",
        deployment_result("d-ABCDEF456", "succeeded"), inputs=("BuildArtifact",),
    ),
    api_action(
        "Prod", "myAction", "CodeDeploy", "10:06:41", "10:09:30", "Failed",
        deployment_result("d-ABCDEF123", "failed"), inputs=("BuildArtifact",),
    ),
    api_action(
        "Build", "Build", "CodeBuild", "10:00:21", "10:06:40", "Succeeded",
        {
            "externalExecutionId": BUILD_ID,
            "externalExecutionSummary": "Build succeeded",
            "externalExecutionUrl": "https://console.aws.amazon.com/codebuild/home?region=us-west-2"
            f"#/builds/{BUILD_ID}/view/new",
        },
        inputs=("SourceArtifact",), outputs=("BuildArtifact",),
    ),
    api_action(
        "Source", "Source", "CodeStarSourceConnection", "10:00:01", "10:00:20", "Succeeded",
        {
            "externalExecutionId": SHA,
            "externalExecutionSummary": '{"ProviderType":"GitHub","CommitMessage":"Fix checkout totals"}',
            "externalExecutionUrl": f"https://github.com/acme/checkout/commit/{SHA}",
        },
        outputs=("SourceArtifact",),
    ),
]  # fmt: skip


def pipeline_execution(execution_id: str, trigger: str, detail: str, revisions: list[dict], **extra) -> dict:
    """GetPipelineExecution's answer."""
    return {
        "pipelineExecution": {
            "pipelineName": "myPipeline",
            "pipelineVersion": 3,
            "pipelineExecutionId": execution_id,
            "status": "Succeeded",
            "artifactRevisions": revisions,
            "trigger": {"triggerType": trigger, "triggerDetail": detail},
            "executionMode": "SUPERSEDED",
            **extra,
        }
    }


def source_artifact(revision: str) -> dict:
    return {
        "name": "SourceArtifact",
        "revisionId": revision,
        "revisionSummary": '{"ProviderType":"GitHub","CommitMessage":"Fix checkout totals"}',
        "created": on_day("09:58:12"),
        "revisionUrl": f"https://github.com/acme/checkout/commit/{revision}",
    }


def without_attempt(rows: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {table: [{k: v for k, v in r.items() if k != "attempt"} for r in rs] for table, rs in rows.items()}


def test_one_execution_gives_the_same_rows_from_its_events_and_from_the_api(engine, another_engine, config):
    """The documented EventBridge events of one execution into one store; the backfill of the same
    execution, whose summary carries neither trigger nor source revisions (so GetPipelineExecution is
    called), into another. Every projected column is equal except `attempt` (runs and stages): only
    events carry `pipeline-execution-attempt`. Stage times come from the API's action times."""
    events = [json.loads(line) for line in fixture_path("aws/codepipeline-execution.documented.ndjson").open()]
    assert ingest.ingest_payloads(engine, events, config).quarantined == []
    from_events = dump_projections(engine)

    cp = client()
    with Stubber(cp) as stubber:
        bare = {
            "pipelineExecutionId": DOC_EXECUTION,
            "status": "Succeeded",
            "startTime": datetime(2024, 5, 1, 10, 0, 0, 208000, tzinfo=UTC),
            "lastUpdateTime": on_day("10:23:45"),
            "executionMode": "SUPERSEDED",
        }
        respond(stubber, "list_pipeline_executions", {"pipelineExecutionSummaries": [bare]}, PAGE)
        respond(stubber, "list_action_executions", {"actionExecutionDetails": DOC_ACTIONS}, actions_of(DOC_EXECUTION))
        respond(
            stubber,
            "get_pipeline_execution",
            pipeline_execution(DOC_EXECUTION, "Webhook", CONNECTION, [source_artifact(SHA)], executionType="STANDARD"),
            {"pipelineName": "myPipeline", "pipelineExecutionId": DOC_EXECUTION},
        )
        assert history.backfill(another_engine, config, cp, ["myPipeline"], T0).quarantined == []
        stubber.assert_no_pending_responses()
    from_api = dump_projections(another_engine)

    assert without_attempt(from_api) == without_attempt(from_events)
    (run,) = from_events["pipeline_runs"]
    assert (run["id"], run["revision"], run["trigger"], run["is_rollback"], run["attempt"]) == (
        DOC_RUN,
        SHA,
        "Webhook",
        False,
        2,
    )
    assert [(s["name"], s["attempt"]) for s in from_events["stage_runs"]] == [("Build", 1), ("Prod", 2), ("Source", 1)]
    assert {r["attempt"] for r in from_api["pipeline_runs"] + from_api["stage_runs"]} == {None}
    (dep,) = from_api["deployments"]
    assert (dep["id"], dep["status"], dep["started_at"], dep["finished_at"]) == (
        DOC_RUN,
        "success",
        on_day("10:06:41"),
        on_day("10:23:45"),
    )
    assert [(link["deployment_id"], link["change_id"]) for link in from_api["deployment_changes"]] == [(DOC_RUN, SHA)]
    assert len(from_api["action_runs"]) == 3 and len(from_api["stage_runs"]) == 3

    (payload,) = [json.loads(p) for p in raw_payloads(another_engine)]
    assert payload["pipelineExecution"]["trigger"]["triggerType"] == "Webhook"  # archived with the execution
    ingest.replay(another_engine, config)
    assert dump_projections(another_engine) == from_api  # the archive alone rebuilds the same rows


def test_the_source_action_gives_the_revision_when_the_summary_has_none(engine, config):
    """A summary with a trigger but no source revisions: GetPipelineExecution is asked (here it lists no
    artifact revisions), the succeeded CodeCommit action's commit is the revision, the S3 action's object
    version is not. A summary with both needs no GetPipelineExecution call (Stubber refuses unstubbed ones)."""
    actions = [
        api_action("Source", "Artifacts", "S3", "10:00:01", "10:00:05", "Succeeded", {"externalExecutionId": "v3.XyZ"}),
        api_action("Source", "Code", "CodeCommit", "10:00:01", "10:00:06", "Succeeded", {"externalExecutionId": SHA}),
        api_action("Prod", "Deploy", "CodeDeploy", "10:00:10", "10:01:30", "Succeeded", deployment_result("d-9", "ok")),
    ]
    no_revisions = {
        "pipelineExecutionId": DOC_EXECUTION,
        "status": "Succeeded",
        "startTime": on_day("10:00:00"),
        "lastUpdateTime": on_day("10:01:30"),
        "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "arn:aws:iam::123456789012:user/ops"},
    }
    complete = summary("exec-full", T0 - timedelta(hours=1), T0 - timedelta(minutes=50))
    cp = client()
    with Stubber(cp) as stubber:
        respond(stubber, "list_pipeline_executions", {"pipelineExecutionSummaries": [no_revisions, complete]}, PAGE)
        respond(stubber, "list_action_executions", {"actionExecutionDetails": actions}, actions_of(DOC_EXECUTION))
        respond(
            stubber,
            "get_pipeline_execution",
            pipeline_execution(DOC_EXECUTION, "StartPipelineExecution", "arn:aws:iam::123456789012:user/ops", []),
            {"pipelineName": "myPipeline", "pipelineExecutionId": DOC_EXECUTION},
        )
        respond(stubber, "list_action_executions", {"actionExecutionDetails": []}, actions_of("exec-full"))
        assert history.backfill(engine, config, cp, ["myPipeline"], T0 - timedelta(days=1)).stored == 2
        stubber.assert_no_pending_responses()
    runs = {r["id"]: r for r in dump_projections(engine)["pipeline_runs"]}
    assert (runs[DOC_RUN]["revision"], runs[DOC_RUN]["trigger"]) == (SHA, "StartPipelineExecution")
    links = {(d["deployment_id"], d["change_id"]) for d in dump_projections(engine)["deployment_changes"]}
    assert (DOC_RUN, SHA) in links and (DOC_RUN, "v3.XyZ") not in links
    full = [json.loads(p) for p in raw_payloads(engine)][1]
    assert full["pipelineExecutionSummary"]["pipelineExecutionId"] == "exec-full" and "pipelineExecution" not in full


def test_a_rollback_gets_its_trigger_and_commit_from_get_pipeline_execution(engine, config):
    """A rollback execution re-runs only the rolled-back stage (no source action) and its summary names
    neither trigger nor revisions: GetPipelineExecution's trigger, execution type and artifact revision
    (its provider unknown, so only a bare SHA counts) mark the rollback and give its commit."""
    summary_ = {
        "pipelineExecutionId": DOC_EXECUTION,
        "status": "Succeeded",
        "startTime": on_day("11:00:00"),
        "lastUpdateTime": on_day("11:04:00"),
    }
    deploy = api_action(
        "Prod", "myAction", "CodeDeploy", "11:00:01", "11:04:00", "Succeeded", deployment_result("d-7", "ok")
    )
    cp = client()
    with Stubber(cp) as stubber:
        respond(stubber, "list_pipeline_executions", {"pipelineExecutionSummaries": [summary_]}, PAGE)
        respond(stubber, "list_action_executions", {"actionExecutionDetails": [deploy]}, actions_of(DOC_EXECUTION))
        respond(
            stubber,
            "get_pipeline_execution",
            pipeline_execution(
                DOC_EXECUTION,
                "AutomatedRollback",
                "exec-failed",
                [source_artifact(SHA)],
                executionType="ROLLBACK",
                rollbackMetadata={"rollbackTargetPipelineExecutionId": "exec-previous"},
            ),
            {"pipelineName": "myPipeline", "pipelineExecutionId": DOC_EXECUTION},
        )
        history.backfill(engine, config, cp, ["myPipeline"], T0)
        stubber.assert_no_pending_responses()
    rows = dump_projections(engine)
    (run,) = rows["pipeline_runs"]
    (dep,) = rows["deployments"]
    assert (run["trigger"], run["is_rollback"], dep["is_rollback"], run["revision"]) == (
        "AutomatedRollback",
        True,
        True,
        SHA,
    )
    assert [(d["deployment_id"], d["change_id"]) for d in rows["deployment_changes"]] == [(DOC_RUN, SHA)]


@pytest.mark.parametrize("version", ["3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "a" * 40], ids=["version-id", "sha-shaped"])
def test_an_s3_artifact_revision_is_not_a_commit(engine, config, version):
    """An S3 source's artifact revision is an object version: no revision, even one shaped like a SHA
    (the provider of the action that output the artifact decides, as for summaries' source revisions)."""
    actions = [
        api_action(
            "Source", "Source", "S3", "10:00:01", "10:00:05", "Succeeded", {"externalExecutionId": version},
            outputs=("SourceArtifact",),
        )
    ]  # fmt: skip
    cp = client()
    with Stubber(cp) as stubber:
        bare = {"pipelineExecutionId": DOC_EXECUTION, "status": "InProgress", "lastUpdateTime": on_day("10:00:05")}
        respond(stubber, "list_pipeline_executions", {"pipelineExecutionSummaries": [bare]}, PAGE)
        respond(stubber, "list_action_executions", {"actionExecutionDetails": actions}, actions_of(DOC_EXECUTION))
        respond(
            stubber,
            "get_pipeline_execution",
            pipeline_execution(DOC_EXECUTION, "PollForSourceChanges", "Source", [source_artifact(version)]),
            {"pipelineName": "myPipeline", "pipelineExecutionId": DOC_EXECUTION},
        )
        history.backfill(engine, config, cp, ["myPipeline"], T0)
    rows = dump_projections(engine)
    assert (rows["pipeline_runs"][0]["revision"], rows["pipeline_runs"][0]["trigger"]) == (None, "PollForSourceChanges")
    assert rows["deployment_changes"] == []


def test_aws_errors_become_clear_messages(engine, config):
    cp = client()
    with Stubber(cp) as stubber:
        stubber.add_client_error("list_pipeline_executions", "PipelineNotFoundException", "no such pipeline")
        with pytest.raises(ConfigError, match="pipeline 'ghost' not found"):
            history.backfill(engine, config, cp, ["ghost"], T0)
    cp = client()
    with Stubber(cp) as stubber:
        stubber.add_client_error("list_pipeline_executions", "AccessDeniedException", "not allowed")
        with pytest.raises(ConfigError, match="codepipeline:ListPipelineExecutions"):
            history.backfill(engine, config, cp, ["myPipeline"], T0)
    with pytest.raises(ConfigError, match="not a valid pipeline name"):  # botocore's own parameter check
        history.backfill(engine, config, client(), [""], T0)
    assert dump_projections(engine)["pipeline_runs"] == []


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
    monkeypatch.setattr("gatewatch.api.utcnow", lambda: now)
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            store_url,
            "collect",
            "codepipeline",
            "--pipeline",
            "myPipeline",
            "--since",
            "30d",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            "http://127.0.0.1:1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["stored"], out["duplicates"], out["quarantined"], out["by_source"]) == (2, 0, 0, {"codepipeline": 2})
    assert seen == {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:1"}
    stubber.assert_no_pending_responses()
    bad = CliRunner().invoke(cli, ["--db", store_url, "collect", "codepipeline", "--pipeline", "p", "--since", "x"])
    assert isinstance(bad.exception, ConfigError) and "--since" in str(bad.exception)  # main() maps it to exit 2


# --- the command against a real endpoint: moto's server (its ListActionExecutions answers HTTP 500) ---


@pytest.fixture
def moto_url(moto_url):
    """The session's moto server, reset (conftest's moto_url), with the pipelines "quiet" (no executions)
    and "busy" (one) in eu-west-1."""
    url = moto_url
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "eu-west-1"}
    role = boto3.client("iam", endpoint_url=url, **keys).create_role(
        RoleName="pipeline",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "codepipeline.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    cp = boto3.client("codepipeline", endpoint_url=url, **keys)
    for name in ("quiet", "busy"):
        cp.create_pipeline(
            pipeline={
                "name": name,
                "roleArn": role,
                "artifactStore": {"type": "S3", "location": "artifacts"},
                "stages": [
                    {
                        "name": "Source",
                        "actions": [
                            {
                                "name": "Source",
                                "actionTypeId": {
                                    "category": "Source",
                                    "owner": "AWS",
                                    "provider": "CodeCommit",
                                    "version": "1",
                                },
                                "configuration": {"RepositoryName": "app", "BranchName": "main"},
                                "outputArtifacts": [{"name": "src"}],
                            }
                        ],
                    },
                    {
                        "name": "Prod",
                        "actions": [
                            {
                                "name": "Deploy",
                                "actionTypeId": {
                                    "category": "Deploy",
                                    "owner": "AWS",
                                    "provider": "CodeDeploy",
                                    "version": "1",
                                },
                                "inputArtifacts": [{"name": "src"}],
                            }
                        ],
                    },
                ],
            }
        )
    cp.start_pipeline_execution(name="busy")
    return url


def aws_env(monkeypatch, tmp_path, credentials: bool = True) -> dict:
    """An AWS environment of the test's own: no user files, no retries of moto's 500s."""
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    if credentials:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`gatewatch ...` through its console entry point in this process: (exit status, stderr)."""
    from gatewatch.cli import main

    monkeypatch.setattr(sys, "argv", ["gatewatch", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


def test_cli_against_a_real_endpoint(store_url, moto_url, monkeypatch, tmp_path):
    """A pipeline with no executions, read over HTTP by the installed command: an empty summary."""
    env = {**os.environ, **aws_env(monkeypatch, tmp_path)}
    exe = Path(sys.executable).with_name("gatewatch")
    res = subprocess.run(
        [
            str(exe),
            "--db",
            store_url,
            "collect",
            "codepipeline",
            "--pipeline",
            "quiet",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            moto_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["stored"] == 0 and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "case, status, message",
    [
        ("ghost", 2, "error: pipeline 'ghost' not found in region eu-west-1; check --pipeline and --region"),
        ("busy", 5, "error: CodePipeline answered 500 for 'busy': HTTP 500"),
        ("no-credentials", 2, "error: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID"),
        ("unknown-profile", 2, "error: The config profile (nope) could not be found: check AWS_PROFILE"),
        ("no-region", 2, "error: no AWS region: pass --region or set AWS_REGION"),
        ("unreachable", 5, "error: CodePipeline could not be reached: Could not connect to the endpoint URL"),
        ("bad-url", 2, "error: --endpoint-url: Invalid endpoint: localhost:5000"),
    ],
)
def test_cli_aws_errors_are_messages_with_an_exit_status(
    moto_url, monkeypatch, capsys, tmp_path, case, status, message
):
    aws_env(monkeypatch, tmp_path, credentials=case != "no-credentials")
    if case == "unknown-profile":
        monkeypatch.setenv("AWS_PROFILE", "nope")
    region = [] if case == "no-region" else ["--region", "eu-west-1"]
    if case == "no-region":
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
        monkeypatch.delenv("AWS_REGION", raising=False)
    pipeline = {"ghost": "ghost", "busy": "busy"}.get(case, "quiet")
    url = {"unreachable": f"http://127.0.0.1:{free_port()}", "bad-url": "localhost:5000"}.get(case, moto_url)
    code, err = run_main(
        monkeypatch,
        capsys,
        "--db",
        f"sqlite:///{tmp_path / 'store.db'}",
        "collect",
        "codepipeline",
        "--pipeline",
        pipeline,
        *region,
        "--endpoint-url",
        url,
    )
    assert (code, err.startswith(message), "Traceback" in err) == (status, True, False), err
