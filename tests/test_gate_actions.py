"""Automated rollback actions: CodeDeploy and CodePipeline through botocore's Stubber (request shapes checked
against the service models, enum values by hand), webhooks against real HTTP servers on 127.0.0.1, and the
once-per-decision rule on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from sqlalchemy import select

from collector.config import config_from_mapping
from collector.gate_decisions import get_decision
from collector.models import gate_decisions
from collector.timeutil import utcnow
from gates.policy import PolicyError, policy_from_mapping
from gatewatch import api

ALWAYS = {"timezone": "UTC", "allow": ["Mon-Sun 00:00-24:00"]}
FROZEN = {"timezone": "UTC", "freeze": [{"from": "2000-01-01", "to": "2100-01-01", "reason": "test freeze"}]}
CURRENT = "0b5e4c3a-1111-4222-8333-944455556666"
TARGET = "7d1f2e3c-aaaa-4bbb-8ccc-dddd00001111"
OLDER = "1a2b3c4d-0000-4000-8000-000000000001"
ROLLBACK_EXECUTION = "9e8d7c6b-5a49-4838-a7b6-c5d4e3f2a1b0"


def gate(actions: list, decision: str = "rollback"):
    """A policy whose single deploy-window check gives `decision`, with `actions`."""
    check = {
        "deploy_window": ALWAYS if decision == "promote" else FROZEN,
        "on_fail": "hold" if decision == "hold" else "rollback",
    }
    return policy_from_mapping({"name": "checkout-prod", "checks": [check], "actions": actions})


def context(engine, **params) -> tuple:
    """The store and the request a pipeline sends for deployment deploy-812 of checkout."""
    return engine, api.GateRequest("deploy-812", "checkout", params=params)


def evaluate(policy, ctx: tuple, key: str, clients=None) -> api.StoredDecision:
    """The service API's gate evaluation of `ctx`'s request under `key`."""
    engine, request = ctx
    return api.evaluate_gate(
        engine, config_from_mapping({}, environ={}), policy, dataclasses.replace(request, key=key), clients=clients
    )


class Hook:
    """A real HTTP server on 127.0.0.1 (port 0) answering each request with the next scripted status
    (then `default`), after `delay` seconds; it records every request."""

    def __init__(self, answers=(), default: int = 200, delay: float = 0.0):
        self.answers, self.default, self.delay = list(answers), default, delay
        self.requests: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                time.sleep(hook.delay)
                status = hook.answers.pop(0) if hook.answers else hook.default
                echo = json.dumps(dict(self.headers)).encode()  # a receiver that echoes headers back
                self.send_response(status)
                self.send_header("Content-Length", str(len(echo)))
                self.end_headers()
                self.wfile.write(echo)

            do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Hook:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def stubbed(service: str):
    client = boto3.session.Session().client(service, region_name="eu-west-1")
    return client, Stubber(client)


def factory(**clients):
    calls: list[tuple[str, str | None]] = []

    def make(service: str, region: str | None):
        calls.append((service, region))
        return clients[service]

    make.calls = calls
    return make


def stored_row(engine, decision_id: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(gate_decisions).where(gate_decisions.c.id == decision_id)).mappings().one())


# --- CodeDeploy -------------------------------------------------------------------------------------------


def test_codedeploy_stop_asks_for_automatic_rollback_with_the_callers_deployment_id(engine):
    client, stub = stubbed("codedeploy")
    model = client.meta.service_model
    assert "Pending" in model.shape_for("StopStatus").enum
    stub.add_response(
        "stop_deployment",
        {"status": "Pending", "statusMessage": "Stopping, rolling back"},
        {"deploymentId": "d-ABCDEF123", "autoRollbackEnabled": True},
    )
    clients = factory(codedeploy=client)
    with stub:
        stored = evaluate(
            gate([{"codedeploy_stop": {"region": "eu-west-1"}}]),
            context(engine, codedeploy_deployment_id="d-ABCDEF123"),
            "job-1",
            clients=clients,
        )
        stub.assert_no_pending_responses()
    assert stored.decision == "rollback" and clients.calls == [("codedeploy", "eu-west-1")]
    (outcome,) = stored.actions
    assert outcome["type"] == "codedeploy_stop" and outcome["target"] == "d-ABCDEF123"
    assert outcome["status"] == "ok" and outcome["attempts"] == 1 and outcome["seconds"] >= 0
    assert "Pending" in outcome["detail"] and outcome["started_at"].endswith("+00:00")
    assert get_decision(engine, decision_id=stored.id).actions == stored.actions


def test_codedeploy_policy_id_wins_and_a_missing_id_fails_loudly_without_a_call(engine, caplog):
    client, stub = stubbed("codedeploy")
    stub.add_response(
        "stop_deployment", {"status": "Succeeded"}, {"deploymentId": "d-POLICY0001", "autoRollbackEnabled": True}
    )
    with stub:
        stored = evaluate(
            gate([{"codedeploy_stop": {"deployment_id": "d-POLICY0001"}}]),
            context(engine, codedeploy_deployment_id="d-OTHER"),
            "k1",
            clients=factory(codedeploy=client),
        )
        stub.assert_no_pending_responses()
    assert stored.actions[0]["status"] == "ok" and stored.actions[0]["target"] == "d-POLICY0001"
    with caplog.at_level(logging.WARNING, logger="gates.actions"), stub:
        missing = evaluate(gate([{"codedeploy_stop": {}}]), context(engine), "k2", clients=factory(codedeploy=client))
    (outcome,) = missing.actions
    assert outcome["status"] == "failed" and outcome["target"] is None
    assert "codedeploy_deployment_id" in outcome["error"] and "deployment_id" in outcome["error"]
    assert any(r.levelno >= logging.ERROR and "codedeploy_stop" in r.getMessage() for r in caplog.records)


def test_an_aws_error_is_recorded_as_failed_with_the_service_message(engine, caplog):
    client, stub = stubbed("codedeploy")
    errors = [s.name for s in client.meta.service_model.operation_model("StopDeployment").error_shapes]
    assert "DeploymentAlreadyCompletedException" in errors
    stub.add_client_error(
        "stop_deployment",
        "DeploymentAlreadyCompletedException",
        "The deployment d-ABCDEF123 has already completed.",
        400,
        expected_params={"deploymentId": "d-ABCDEF123", "autoRollbackEnabled": True},
    )
    with caplog.at_level(logging.WARNING, logger="gates.actions"), stub:
        stored = evaluate(
            gate([{"codedeploy_stop": {"deployment_id": "d-ABCDEF123"}}]),
            context(engine),
            "k",
            clients=factory(codedeploy=client),
        )
    (outcome,) = stored.actions
    assert outcome["status"] == "failed" and "detail" not in outcome
    assert outcome["error"] == (
        "StopDeployment: DeploymentAlreadyCompletedException: The deployment d-ABCDEF123 has already completed."
    )
    assert get_decision(engine, decision_id=stored.id).actions[0]["status"] == "failed"
    assert [r for r in caplog.records if r.levelno == logging.ERROR and "DeploymentAlreadyCompleted" in r.getMessage()]


# --- CodePipeline -----------------------------------------------------------------------------------------


def test_codepipeline_rollback_finds_the_latest_succeeded_execution_other_than_the_current(engine):
    client, stub = stubbed("codepipeline")
    statuses = client.meta.service_model.shape_for("PipelineExecutionStatus").enum
    assert {"Succeeded", "Failed", "InProgress"} <= set(statuses)
    t0 = utcnow()
    page1 = [
        {"pipelineExecutionId": CURRENT, "status": "Succeeded", "startTime": t0},
        {"pipelineExecutionId": "2c3d4e5f-0000-4000-8000-000000000002", "status": "Failed", "startTime": t0},
    ]
    page2 = [
        {"pipelineExecutionId": TARGET, "status": "Succeeded", "startTime": t0},
        {"pipelineExecutionId": OLDER, "status": "Succeeded", "startTime": t0},
    ]
    stub.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": page1, "nextToken": "page-2"},
        {"pipelineName": "checkout-pipeline", "maxResults": 100},
    )
    stub.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": page2},
        {"pipelineName": "checkout-pipeline", "maxResults": 100, "nextToken": "page-2"},
    )
    stub.add_response(
        "rollback_stage",
        {"pipelineExecutionId": ROLLBACK_EXECUTION},
        {"pipelineName": "checkout-pipeline", "stageName": "Deploy-EU", "targetPipelineExecutionId": TARGET},
    )
    clients = factory(codepipeline=client)
    action = {"codepipeline_rollback": {"pipeline": "checkout-pipeline", "stage": "Deploy-EU"}}
    with stub:
        stored = evaluate(gate([action]), context(engine, pipeline_execution_id=CURRENT), "k", clients=clients)
        stub.assert_no_pending_responses()
    (outcome,) = stored.actions
    assert outcome["status"] == "ok", outcome
    assert outcome["target"] == "checkout-pipeline/Deploy-EU" and clients.calls == [("codepipeline", None)]
    assert TARGET in outcome["detail"] and ROLLBACK_EXECUTION in outcome["detail"] and CURRENT in outcome["detail"]


def test_codepipeline_rollback_to_a_given_execution_skips_the_listing(engine):
    client, stub = stubbed("codepipeline")
    stub.add_response(
        "rollback_stage",
        {"pipelineExecutionId": ROLLBACK_EXECUTION},
        {"pipelineName": "search-pipeline", "stageName": "Prod", "targetPipelineExecutionId": OLDER},
    )
    action = {
        "codepipeline_rollback": {
            "pipeline": "search-pipeline",
            "stage": "Prod",
            "target_execution_id": OLDER,
            "region": "eu-central-1",
        }
    }
    clients = factory(codepipeline=client)
    with stub:
        stored = evaluate(gate([action]), context(engine), "k", clients=clients)
        stub.assert_no_pending_responses()
    assert stored.actions[0]["status"] == "ok" and clients.calls == [("codepipeline", "eu-central-1")]
    assert f"to {OLDER} (given)" in stored.actions[0]["detail"]


def test_a_failed_rollback_stage_does_not_stop_the_next_action_and_nothing_to_roll_back_to_fails(engine):
    client, stub = stubbed("codepipeline")
    errors = [s.name for s in client.meta.service_model.operation_model("RollbackStage").error_shapes]
    assert "UnableToRollbackStageException" in errors
    stub.add_client_error(
        "rollback_stage",
        "UnableToRollbackStageException",
        "Stage Prod cannot be rolled back",
        400,
        expected_params={"pipelineName": "p", "stageName": "Prod", "targetPipelineExecutionId": OLDER},
    )
    stub.add_response(
        "list_pipeline_executions",
        {
            "pipelineExecutionSummaries": [
                {"pipelineExecutionId": CURRENT, "status": "Succeeded"},
                {"pipelineExecutionId": TARGET, "status": "Failed"},
            ]
        },
        {"pipelineName": "p", "maxResults": 100},
    )
    actions = [
        {"codepipeline_rollback": {"pipeline": "p", "stage": "Prod", "target_execution_id": OLDER}},
        {"codepipeline_rollback": {"pipeline": "p", "stage": "Prod"}},
    ]
    with Hook() as hook, stub:
        stored = evaluate(
            gate([*actions, {"webhook": {"url": hook.url}}]),
            context(engine, pipeline_execution_id=CURRENT),
            "k",
            clients=factory(codepipeline=client),
        )
        stub.assert_no_pending_responses()
    assert [a["status"] for a in stored.actions] == ["failed", "failed", "ok"]
    assert stored.actions[0]["error"].startswith("RollbackStage: UnableToRollbackStageException: Stage Prod")
    assert (
        stored.actions[1]["error"]
        == f"no Succeeded execution of p that is not a rollback to roll back to other than the current {CURRENT}"
    )
    assert len(hook.requests) == 1


# --- Webhooks ---------------------------------------------------------------------------------------------


def test_webhook_retries_503s_then_delivers_the_decision_json(engine):
    with Hook(answers=[503, 503]) as hook:
        stored = evaluate(gate([{"webhook": {"url": hook.url, "backoff": "0.05s"}}]), context(engine), "job-7")
    (outcome,) = stored.actions
    assert outcome["status"] == "ok" and outcome["attempts"] == 3 and outcome["detail"] == "HTTP 200 after 3 attempts"
    assert len(hook.requests) == 3 and {r["method"] for r in hook.requests} == {"POST"}
    assert len({r["body"] for r in hook.requests}) == 1  # every retry sends the same body
    body = json.loads(hook.requests[-1]["body"])
    expected = stored.to_dict() | {"actions": []}  # the decision as it stood when the action ran
    assert body == json.loads(json.dumps(expected, default=str))
    assert body["decision"] == "rollback" and body["key"] == "job-7" and body["id"] == stored.id
    headers = hook.requests[-1]["headers"]
    assert headers["Content-Type"] == "application/json" and headers["Idempotency-Key"] == stored.id


def test_webhook_that_always_fails_gives_up_within_max_time(engine):
    with Hook(default=503) as hook:
        stored = evaluate(
            gate([{"webhook": {"url": hook.url, "retries": 20, "backoff": "0.1s", "max_time": "1s"}}]),
            context(engine),
            "k",
        )
    (outcome,) = stored.actions
    assert outcome["status"] == "failed" and "HTTP 503" in outcome["error"] and "max_time 1s" in outcome["error"]
    assert 2 <= outcome["attempts"] < 21 and outcome["attempts"] == len(hook.requests)
    assert outcome["seconds"] <= 1.0  # the bound is the policy's, not a speed target


def test_webhook_retries_are_bounded_and_client_errors_are_not_retried(engine):
    with Hook(default=500) as hook:
        out = evaluate(gate([{"webhook": {"url": hook.url, "retries": 2, "backoff": "0.01s"}}]), context(engine), "a")
    assert out.actions[0]["attempts"] == 3 == len(hook.requests)
    assert out.actions[0]["error"] == "HTTP 500 Internal Server Error; gave up after 3 attempts (retries: 2)"
    with Hook(default=404) as hook:
        out = evaluate(gate([{"webhook": {"url": hook.url, "method": "PUT"}}]), context(engine), "b")
    assert out.actions[0]["attempts"] == 1 == len(hook.requests) and hook.requests[0]["method"] == "PUT"
    assert out.actions[0]["error"] == "HTTP 404 Not Found (attempt 1; not retried)"


def test_webhook_connection_errors_and_timeouts_are_retried_then_reported(engine):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_address[1]}/hook"
    closed.server_close()  # nothing listens there any more
    out = evaluate(gate([{"webhook": {"url": url, "retries": 1, "backoff": "0.01s"}}]), context(engine), "a")
    assert out.actions[0]["status"] == "failed" and out.actions[0]["attempts"] == 2
    assert "connection failed" in out.actions[0]["error"] and "refused" in out.actions[0]["error"].lower()
    with Hook(delay=1.5) as hook:
        out = evaluate(
            gate([{"webhook": {"url": hook.url, "timeout": 0.2, "retries": 1, "backoff": "0.01s"}}]),
            context(engine),
            "b",
        )
    assert out.actions[0]["status"] == "failed" and out.actions[0]["attempts"] == 2
    assert "timed out" in out.actions[0]["error"]


def test_header_variables_are_expanded_and_never_logged_or_stored(engine, caplog, monkeypatch):
    secret, url_secret = "s3cr3t-hook-token-0042", "url-token-9931"
    monkeypatch.setenv("GW_TEST_HOOK_TOKEN", secret)
    monkeypatch.setenv("GW_TEST_URL_TOKEN", url_secret)
    with Hook(answers=[503]) as hook, caplog.at_level(logging.DEBUG):
        policy = gate(
            [
                {
                    "webhook": {
                        "url": hook.url + "?token=${GW_TEST_URL_TOKEN}",
                        "backoff": "0.01s",
                        "headers": {"Authorization": "Bearer ${GW_TEST_HOOK_TOKEN}", "X-Team": "payments"},
                    }
                }
            ]
        )
        stored = evaluate(policy, context(engine), "k")
    assert stored.actions[0]["status"] == "ok" and len(hook.requests) == 2
    sent = hook.requests[-1]
    assert sent["headers"]["Authorization"] == f"Bearer {secret}" and sent["headers"]["X-Team"] == "payments"
    assert sent["path"] == f"/hook?token={url_secret}"
    assert stored.actions[0]["target"].endswith("?token=${GW_TEST_URL_TOKEN}")
    assert any("retrying" in r.getMessage() for r in caplog.records)  # the retry was logged ...
    row = json.dumps(stored_row(engine, stored.id), default=str)
    for text in (secret, url_secret):  # ... without the secrets, which are nowhere in the store either
        assert text not in caplog.text and text not in row and text not in json.dumps(stored.actions)


def test_an_unset_header_variable_fails_without_sending(engine, monkeypatch):
    monkeypatch.delenv("GW_TEST_UNSET_TOKEN", raising=False)
    with Hook() as hook:
        headers = {"Authorization": "Bearer ${GW_TEST_UNSET_TOKEN}"}
        stored = evaluate(gate([{"webhook": {"url": hook.url, "headers": headers}}]), context(engine), "k")
    (outcome,) = stored.actions
    assert outcome["status"] == "failed" and outcome["attempts"] == 0 and hook.requests == []
    assert outcome["error"] == (
        "webhook headers.Authorization: environment variable GW_TEST_UNSET_TOKEN is not set; nothing was sent"
    )


# --- Once per decision ------------------------------------------------------------------------------------


def test_a_replayed_decision_runs_no_action_again(engine):
    client, stub = stubbed("codedeploy")
    stub.add_response(
        "stop_deployment", {"status": "Pending"}, {"deploymentId": "d-ONCE00001", "autoRollbackEnabled": True}
    )
    with Hook() as hook, stub:
        policy = gate([{"codedeploy_stop": {"deployment_id": "d-ONCE00001"}}, {"webhook": {"url": hook.url}}])
        first = evaluate(policy, context(engine), "job-9", clients=factory(codedeploy=client))
        again = [evaluate(policy, context(engine), "job-9", clients=factory(codedeploy=client)) for _ in range(2)]
        stub.assert_no_pending_responses()
    assert first.first and [a["status"] for a in first.actions] == ["ok", "ok"]
    assert len(hook.requests) == 1  # a second StopDeployment would have found the Stubber empty
    assert all(not a.first and a.id == first.id and a.actions == first.actions for a in again)


def test_two_racing_calls_on_one_key_act_once(engine):
    with Hook(delay=0.05) as hook:
        policy = gate([{"webhook": {"url": hook.url}}])
        barrier, results = threading.Barrier(2), []

        def call():
            barrier.wait()
            results.append(evaluate(policy, context(engine), "race"))

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(r.first for r in results) == [False, True] and len(hook.requests) == 1


def test_promote_and_hold_run_no_rollback_actions_and_hold_actions_run_on_the_first_hold_only(engine):
    with Hook() as hook:
        promoted = evaluate(gate([{"webhook": {"url": hook.url}}], "promote"), context(engine), "p")
        held = evaluate(gate([{"webhook": {"url": hook.url}}], "hold"), context(engine), "h")
        assert promoted.decision == "promote" and held.decision == "hold"
        assert promoted.actions == [] == held.actions and hook.requests == []
        on_hold = gate([{"webhook": {"url": hook.url}, "on": ["hold"]}], "hold")
        first = evaluate(on_hold, context(engine), "h2")
        second = evaluate(on_hold, context(engine), "h2")
    assert first.actions[0]["status"] == "ok" and len(hook.requests) == 1
    assert second.first and second.attempt == 2 and second.actions == []


def test_cli_prints_each_action_and_action_failed_on_stderr_with_the_decisions_exit_code(
    tmp_path, store_url, gatewatch
):
    with Hook(default=503) as failing, Hook() as ok:
        policy = {
            "name": "checkout-prod",
            "checks": [{"deploy_window": FROZEN, "on_fail": "rollback"}],
            "actions": [
                {"webhook": {"url": ok.url}},
                {"webhook": {"url": failing.url, "max_time": "0.5s", "backoff": "0.1s"}},
            ],
        }
        (tmp_path / "gate.yaml").write_text(yaml.safe_dump(policy))
        res = gatewatch("--db", store_url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"), "--key", "cli-1")
        again = gatewatch("--db", store_url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"), "--key", "cli-1")
    assert res.returncode == 1 and again.returncode == 1
    assert f"action ok     webhook               {ok.url}: HTTP 200 after 1 attempt" in res.stdout
    assert f"action failed webhook               {failing.url}: HTTP 503" in res.stdout
    assert f"ACTION FAILED (attempt 1 of 3): webhook {failing.url}: HTTP 503" in res.stderr
    # the same key again: the decision stands, the failed webhook is re-attempted, the ok one is not re-run
    assert f"action failed webhook               {failing.url}: HTTP 503" in again.stdout
    assert "(attempt 2 of 3)" in again.stdout and "stored earlier for this key" in again.stdout
    assert f"ACTION FAILED (attempt 2 of 3): webhook {failing.url}: HTTP 503" in again.stderr
    assert len(ok.requests) == 1


def test_cli_param_gives_the_action_its_deployment_id_and_a_bad_param_is_a_usage_error(tmp_path, store_url, gatewatch):
    """`--param` reaches the action: StopDeployment goes (as botocore sends it) to a local endpoint."""
    with Hook() as endpoint:
        policy = {
            "name": "checkout-prod",
            "checks": [{"deploy_window": FROZEN, "on_fail": "rollback"}],
            "actions": [{"codedeploy_stop": {"region": "eu-west-1"}}],
        }
        (tmp_path / "gate.yaml").write_text(yaml.safe_dump(policy))
        args = ("--db", store_url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"), "--json")
        env = {"AWS_ENDPOINT_URL_CODEDEPLOY": endpoint.url.rsplit("/", 1)[0], "AWS_MAX_ATTEMPTS": "1"}
        res = gatewatch(*args, "--param", "codedeploy_deployment_id=d-ABC123XYZ", env=env)
        bad = gatewatch(*args, "--param", "codedeploy_deployment_id", env=env)
    assert res.returncode == 1, res.stderr
    assert [json.loads(r["body"]) for r in endpoint.requests] == [
        {"deploymentId": "d-ABC123XYZ", "autoRollbackEnabled": True}
    ]
    assert endpoint.requests[0]["headers"]["X-Amz-Target"] == "CodeDeploy_20141006.StopDeployment"
    assert json.loads(res.stdout)["actions"][0]["status"] == "ok"
    assert bad.returncode == 2 and "--param 'codedeploy_deployment_id': expected NAME=VALUE" in bad.stderr


# --- Policy validation ------------------------------------------------------------------------------------


def test_actions_parse_with_defaults_and_yaml_on():
    raw = yaml.safe_load("""
name: g
checks: [{deploy_window: {timezone: UTC}, on_fail: rollback}]
actions:
  - codedeploy_stop: {region: eu-west-1}
  - codepipeline_rollback: {pipeline: checkout-pipeline, stage: Deploy-EU}
    on: [rollback, hold]
  - webhook: {url: "https://hooks.example.com/gate", timeout: 2s, max_time: 1m}
""")
    a, b, c = policy_from_mapping(raw).actions
    assert (a.type, a.on, dict(a.settings)) == (
        "codedeploy_stop",
        ("rollback",),
        {"deployment_id": None, "region": "eu-west-1"},
    )
    assert b.on == ("rollback", "hold") and b.settings.target_execution_id is None
    assert dict(c.settings) == {
        "url": "https://hooks.example.com/gate",
        "method": "POST",
        "headers": {},
        "timeout": timedelta(seconds=2),
        "max_time": timedelta(minutes=1),
        "retries": 3,
        "backoff": timedelta(seconds=0.5),
    }


@pytest.mark.parametrize(
    "actions, message",
    [
        ({"webhook": {"url": "http://x"}}, "actions: expected a list"),
        (
            [{"webhook": {"url": "http://x"}}, {"codepipeline_rollback": {"pipeline": "p"}}],
            "actions[1].codepipeline_rollback.stage: required",
        ),
        ([{"codepipeline_rollback": {"stage": "s"}}], "actions[0].codepipeline_rollback.pipeline: required"),
        (
            [{"codepipeline_rollback": {"pipeline": "bad name!", "stage": "s"}}],
            "actions[0].codepipeline_rollback.pipeline:",
        ),
        (
            [{"codepipeline_rollback": {"pipeline": "p", "stage": "s", "target_execution_id": "last-good"}}],
            "actions[0].codepipeline_rollback.target_execution_id:",
        ),
        ([{"codedeploy_stop": {"deploymentId": "d-1"}}], "actions[0].codedeploy_stop: unknown key(s) ['deploymentId']"),
        (
            [{"codedeploy_stop": {"deployment_id": 12}}],
            "actions[0].codedeploy_stop.deployment_id: expected a non-empty",
        ),
        ([{"webhook": {}}], "actions[0].webhook.url: required"),
        ([{"webhook": {"url": "ftp://x"}}], "actions[0].webhook.url: expected an http:// or https:// URL"),
        ([{"webhook": {"url": "http://x", "method": "GET"}}], "actions[0].webhook.method: expected one of POST"),
        ([{"webhook": {"url": "http://x", "timeout": "soon"}}], "actions[0].webhook.timeout: expected a duration"),
        ([{"webhook": {"url": "http://x", "max_time": 0}}], "actions[0].webhook.max_time: expected a positive"),
        ([{"webhook": {"url": "http://x", "retries": -1}}], "actions[0].webhook.retries: expected a whole number"),
        ([{"webhook": {"url": "http://x", "headers": {"Bad Name": "v"}}}], "actions[0].webhook.headers: 'Bad Name'"),
        ([{"webhook": {"url": "http://x", "headers": {"X-A": "a\r\nX-B: b"}}}], "actions[0].webhook.headers.X-A:"),
        ([{"slack": {"url": "http://x"}}], "actions[0]: expected exactly one of codedeploy_stop"),
        ([{"webhook": {"url": "http://x"}, "codedeploy_stop": {}}], "actions[0]: expected exactly one of"),
        ([{"webhook": {"url": "http://x"}, "on": ["promote"]}], "actions[0].on: expected a list of rollback, hold"),
        (["webhook"], "actions[0]: expected a mapping"),
    ],
)
def test_action_validation_names_the_field(actions, message):
    with pytest.raises(PolicyError) as err:
        policy_from_mapping({"name": "g", "checks": [{"deploy_window": ALWAYS, "on_fail": "hold"}], "actions": actions})
    assert message in str(err.value)


def test_codepipeline_rollback_never_targets_a_rollback_or_failed_execution_and_says_which_it_skipped(engine):
    client, stub = stubbed("codepipeline")
    t0 = utcnow()
    manual, automated = "3c4d5e6f-0000-4000-8000-000000000003", "4d5e6f70-0000-4000-8000-000000000004"
    listed = [
        {"pipelineExecutionId": CURRENT, "status": "Failed", "startTime": t0},
        # Succeeded, but each restored an older release: rolling back "to" them redeploys that one.
        {
            "pipelineExecutionId": manual,
            "status": "Succeeded",
            "startTime": t0,
            "trigger": {"triggerType": "ManualRollback", "triggerDetail": "arn:aws:iam::123456789012:user/ops"},
        },
        {"pipelineExecutionId": automated, "status": "Succeeded", "startTime": t0, "executionType": "ROLLBACK"},
        {"pipelineExecutionId": "5e6f7081-0000-4000-8000-000000000005", "status": "Failed", "startTime": t0},
        {
            "pipelineExecutionId": TARGET,
            "status": "Succeeded",
            "startTime": t0,
            "trigger": {"triggerType": "Webhook", "triggerDetail": "arn:aws:codestar-connections:x"},
        },
    ]
    stub.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": listed},
        {"pipelineName": "checkout-pipeline", "maxResults": 100},
    )
    stub.add_response(
        "rollback_stage",
        {"pipelineExecutionId": ROLLBACK_EXECUTION},
        {"pipelineName": "checkout-pipeline", "stageName": "Prod", "targetPipelineExecutionId": TARGET},
    )
    action = {"codepipeline_rollback": {"pipeline": "checkout-pipeline", "stage": "Prod"}}
    with stub:
        stored = evaluate(
            gate([action]),
            context(engine, pipeline_execution_id=CURRENT),
            "k",
            clients=factory(codepipeline=client),
        )
        stub.assert_no_pending_responses()
    (outcome,) = stored.actions
    assert outcome["status"] == "ok", outcome
    assert f"to {TARGET} (latest Succeeded, not a rollback" in outcome["detail"]
    assert f"skipped rollback executions {manual}, {automated}" in outcome["detail"]


def test_codepipeline_rollback_with_only_rollback_executions_left_fails_naming_them(engine):
    client, stub = stubbed("codepipeline")
    only = {
        "pipelineExecutionId": OLDER,
        "status": "Succeeded",
        "startTime": utcnow(),
        "trigger": {"triggerType": "AutomatedRollback", "triggerDetail": CURRENT},
    }
    stub.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [only]},
        {"pipelineName": "checkout-pipeline", "maxResults": 100},
    )
    action = {"codepipeline_rollback": {"pipeline": "checkout-pipeline", "stage": "Prod"}}
    with stub:
        stored = evaluate(gate([action]), context(engine), "k", clients=factory(codepipeline=client))
        stub.assert_no_pending_responses()
    (outcome,) = stored.actions
    assert outcome["status"] == "failed"
    assert "that is not a rollback" in outcome["error"] and f"skipped rollback executions {OLDER}" in outcome["error"]
