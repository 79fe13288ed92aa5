"""The CodePipeline Lambda invoke handler for gates, called as a plain function with the published job
event, a real store, policies with CSV canary data, and botocore's Stubber checking each request's shape
against the CodePipeline service model (enum values and key patterns asserted here, Stubber skips them)."""

from __future__ import annotations

import copy
import json
import logging
import re
import socket
import uuid
from datetime import datetime, timedelta

import boto3
import botocore.session
import numpy as np
import pandas as pd
import pytest
import yaml
from botocore.stub import ANY, Stubber
from sqlalchemy import select

from collector.models import canary_runs, gate_decisions
from collector.timeutil import utcnow
from gates import aws_lambda
from tests.conftest import fixture_path

PUBLISHED = json.loads(fixture_path("aws/codepipeline-lambda-invoke-job.json").read_text())
MODEL = botocore.session.get_session().get_service_model("codepipeline")
FAILURE_TYPES = MODEL.shape_for("FailureType").enum
OUTPUT_KEY = re.compile(
    MODEL.operation_model("PutJobSuccessResult").input_shape.members["outputVariables"].key.metadata["pattern"]
)
MESSAGE_MAX = MODEL.shape_for("Message").metadata["max"]
TOKEN_MAX = MODEL.shape_for("ContinuationToken").metadata["max"]
SECRETS = {
    "accessKeyId": f"ASIA{uuid.uuid4().hex[:16].upper()}",
    "secretAccessKey": f"secret-{uuid.uuid4().hex}",
    "sessionToken": f"session-{uuid.uuid4().hex}",
}
GATE = "checkout-prod"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_policy(folder, shift: float = 1.0, freeze: bool = False, prometheus_port: int | None = None) -> None:
    """The gate `checkout-prod`: a canary on CSV samples (or an unreachable Prometheus) and a window."""
    rng = np.random.default_rng(11)
    rows = [
        {"metric": "latency", "group": g, "value": v}
        for g, s in (("baseline", 1.0), ("canary", shift))
        for v in rng.normal(100 * s, 5, 100)
    ]
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)
    metric = {
        "name": "latency",
        "direction": "increase",
        "tolerance": 0.1,
        "critical": True,
        "query": 'latency{job="api", {scope}}',
    }
    (folder / "canary.cfg").write_text(yaml.safe_dump({"metrics": [metric]}))
    canary = (
        {
            "config": "canary.cfg",
            "prometheus": {
                "url": f"http://127.0.0.1:{prometheus_port}",
                "baseline": 'version="v1"',
                "canary": 'version="v2"',
            },
        }
        if prometheus_port
        else {"config": "canary.cfg", "data": "samples.csv"}
    )
    window = {"timezone": "Europe/Berlin", "allow": ["Mon-Sun 00:00-24:00"]}
    if freeze:
        window["freeze"] = [{"from": "2000-01-01", "to": "2999-12-31", "reason": "release freeze"}]
    policy = {
        "name": GATE,
        "checks": [{"canary": canary, "on_fail": "rollback"}, {"deploy_window": window, "on_fail": "hold"}],
    }
    (folder / "gate.yaml").write_text(yaml.safe_dump(policy))


@pytest.fixture
def gates(tmp_path, engine, store_url, monkeypatch, caplog):
    """A policy folder in GATEWATCH_GATE_POLICIES, the store in GATEWATCH_DB; logs captured."""
    folder = tmp_path / "gates"
    folder.mkdir()
    write_policy(folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWATCH_CONFIG", raising=False)
    monkeypatch.setenv("GATEWATCH_DB", store_url)
    monkeypatch.setenv("GATEWATCH_GATE_POLICIES", str(folder))
    caplog.set_level(logging.DEBUG)
    return folder


def job_event(params, job_id: str | None = None, token: str | None = None) -> dict:
    """The published event with a fresh job id, our UserParameters and distinctive credentials."""
    event = copy.deepcopy(PUBLISHED)
    job = event["CodePipeline.job"]
    job["id"] = job_id or str(uuid.uuid4())
    job["data"]["artifactCredentials"] = dict(SECRETS)
    job["data"]["actionConfiguration"]["configuration"]["UserParameters"] = (
        params if isinstance(params, str) else json.dumps(params)
    )
    if token is None:
        del job["data"]["continuationToken"]
    else:
        job["data"]["continuationToken"] = token
    return event


class Pipeline:
    """A Stubber-backed CodePipeline client that also records the exact requests sent."""

    def __init__(self):
        self.client = boto3.client("codepipeline", region_name="us-east-1")
        self.stub = Stubber(self.client)
        self.sent: list[tuple[str, dict]] = []
        self.client.meta.events.register("provide-client-params.codepipeline.*", self._record)
        self.stub.activate()

    def _record(self, params, model, **_):
        self.sent.append((model.name, copy.deepcopy(params)))

    def expect(self, operation: str, params: dict, error: str | None = None) -> None:
        if error:
            self.stub.add_client_error(
                operation, service_error_code=error, http_status_code=400, expected_params=params
            )
        else:
            self.stub.add_response(operation, {}, expected_params=params)

    def call(self, event: dict) -> dict:
        result = aws_lambda.handler(event, None, client=self.client)
        self.stub.assert_no_pending_responses()
        return result

    def last(self) -> dict:
        return self.sent[-1][1]


def decisions(engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(gate_decisions).order_by(gate_decisions.c.key, gate_decisions.c.attempt)
            ).mappings()
        ]


def assert_no_secrets(caplog, engine, event: dict) -> None:
    assert "artifactCredentials" not in event["CodePipeline.job"]["data"]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    stored = json.dumps(decisions(engine), default=str)
    for value in SECRETS.values():
        assert value not in logged and value not in stored


def assert_failure_shape(request: dict) -> None:
    details = request["failureDetails"]
    assert details["type"] in FAILURE_TYPES
    assert 1 <= len(details["message"]) <= MESSAGE_MAX


def test_promote_reports_success_with_output_variables(gates, engine, caplog):
    pipeline, event = (
        Pipeline(),
        job_event({"gate": GATE, "deployment": "codepipeline:checkout-pipeline:e-1", "service": "checkout"}),
    )
    job_id = event["CodePipeline.job"]["id"]
    pipeline.expect(
        "put_job_success_result",
        {
            "jobId": job_id,
            "outputVariables": {
                "decision": "promote",
                "decision_id": ANY,
                "gate": GATE,
                "attempt": "1",
                "canary_score": ANY,
                "canary_verdict": "pass",
                "canary_run_id": ANY,
            },
            "executionDetails": {"summary": ANY, "externalExecutionId": ANY},
        },
    )
    result = pipeline.call(event)
    [row] = decisions(engine)
    assert row["key"] == job_id and row["decision"] == "promote" and row["deployment_id"].endswith(":e-1")
    sent = pipeline.last()
    variables = sent["outputVariables"]
    assert all(OUTPUT_KEY.fullmatch(k) for k in variables) and all(isinstance(v, str) for v in variables.values())
    assert variables["decision_id"] == row["id"] == sent["executionDetails"]["externalExecutionId"]
    with engine.connect() as conn:
        run = conn.execute(select(canary_runs).where(canary_runs.c.id == variables["canary_run_id"])).mappings().one()
    assert float(variables["canary_score"]) == pytest.approx(run["score"], abs=0.005)
    assert sent["executionDetails"]["summary"].startswith("promote: every check passed")
    assert result == {
        "job_id": job_id,
        "key": job_id,
        "decision": "promote",
        "decision_id": row["id"],
        "attempt": 1,
        "reported": "success",
    }
    assert_no_secrets(caplog, engine, event)


def test_regressed_canary_rolls_back_with_a_job_failure(gates, engine, caplog):
    write_policy(gates, shift=1.4)
    pipeline, event = Pipeline(), job_event({"gate": GATE})
    job_id = event["CodePipeline.job"]["id"]
    pipeline.expect(
        "put_job_failure_result",
        {"jobId": job_id, "failureDetails": {"type": "JobFailed", "message": ANY, "externalExecutionId": ANY}},
    )
    result = pipeline.call(event)
    [row] = decisions(engine)
    details = pipeline.last()["failureDetails"]
    assert_failure_shape(pipeline.last())
    assert row["decision"] == "rollback" and details["externalExecutionId"] == row["id"]
    assert details["message"].startswith("rollback: canary: canary fail") and row["id"] in details["message"]
    assert result["reported"] == "failure" and result["failure_type"] == "JobFailed"
    assert_no_secrets(caplog, engine, event)


def test_hold_continues_and_the_final_call_carries_the_output_variables(gates, engine, caplog):
    write_policy(gates, freeze=True)
    pipeline, first = Pipeline(), job_event({"gate": GATE, "max_wait": "2h"})
    first_id = first["CodePipeline.job"]["id"]
    pipeline.expect("put_job_success_result", {"jobId": first_id, "continuationToken": ANY})
    held = pipeline.call(first)
    token = pipeline.last()["continuationToken"]
    assert set(pipeline.last()) == {"jobId", "continuationToken"} and len(token) <= TOKEN_MAX
    assert held["reported"] == "continuation" and held["decision"] == "hold"
    carried = json.loads(token)
    assert carried["key"] == first_id and utcnow() - datetime.fromisoformat(carried["started"]) < timedelta(minutes=1)

    write_policy(gates)  # the freeze is lifted: CodePipeline's next job (a new id) carries our token
    second = job_event({"gate": GATE, "max_wait": "2h"}, token=token)
    second_id = second["CodePipeline.job"]["id"]
    pipeline.expect(
        "put_job_success_result",
        {
            "jobId": second_id,
            "outputVariables": {
                "decision": "promote",
                "decision_id": ANY,
                "gate": GATE,
                "attempt": "2",
                "canary_score": ANY,
                "canary_verdict": "pass",
                "canary_run_id": ANY,
            },
            "executionDetails": {"summary": ANY, "externalExecutionId": ANY},
        },
    )
    final = pipeline.call(second)
    rows = decisions(engine)
    assert [(r["key"], r["attempt"], r["decision"]) for r in rows] == [(first_id, 1, "hold"), (first_id, 2, "promote")]
    assert pipeline.last()["outputVariables"]["decision_id"] == rows[1]["id"] == final["decision_id"]
    assert_no_secrets(caplog, engine, second)


def test_a_hold_past_max_wait_fails_the_job_with_the_reasons(gates, engine, caplog):
    write_policy(gates, freeze=True)
    pipeline, first = Pipeline(), job_event({"gate": GATE})  # default max_wait: 30m
    pipeline.expect("put_job_success_result", {"jobId": first["CodePipeline.job"]["id"], "continuationToken": ANY})
    pipeline.call(first)
    carried = json.loads(pipeline.last()["continuationToken"])
    carried["started"] = (datetime.fromisoformat(carried["started"]) - timedelta(minutes=31)).isoformat()
    later = job_event({"gate": GATE}, token=json.dumps(carried))
    pipeline.expect(
        "put_job_failure_result",
        {
            "jobId": later["CodePipeline.job"]["id"],
            "failureDetails": {"type": "JobFailed", "message": ANY, "externalExecutionId": ANY},
        },
    )
    result = pipeline.call(later)
    message = pipeline.last()["failureDetails"]["message"]
    assert_failure_shape(pipeline.last())
    assert message.startswith("held: still holding after 31m (max_wait 30m, attempt 2)")
    assert "deploy_window:" in message and "release freeze" in message
    assert (
        result["decision"] == "hold"
        and decisions(engine)[-1]["id"] == pipeline.last()["failureDetails"]["externalExecutionId"]
    )
    assert_no_secrets(caplog, engine, later)


def test_a_hold_on_unreadable_telemetry_fails_as_system_unavailable(gates, engine, caplog):
    port = closed_port()
    write_policy(gates, prometheus_port=port)
    pipeline, event = Pipeline(), job_event({"gate": GATE, "max_wait": "0s"})
    pipeline.expect(
        "put_job_failure_result",
        {
            "jobId": event["CodePipeline.job"]["id"],
            "failureDetails": {"type": "SystemUnavailable", "message": ANY, "externalExecutionId": ANY},
        },
    )
    result = pipeline.call(event)
    message = pipeline.last()["failureDetails"]["message"]
    assert_failure_shape(pipeline.last())
    assert message.startswith("held: ") and "telemetry could not be read" in message
    assert f"127.0.0.1:{port}" in message and "could not be read" in message
    assert result["failure_type"] == "SystemUnavailable" and decisions(engine)[0]["decision"] == "hold"


@pytest.mark.parametrize(
    "params, token, field",
    [
        ("input_parameter", None, "UserParameters: not valid JSON"),  # the published sample's value
        ({"gate": "search-prod"}, None, "UserParameters.gate 'search-prod': no such gate"),
        ({"gate": GATE, "max_wait": "forever"}, None, "UserParameters.max_wait"),
        ({"gate": GATE, "max_wait": "2d"}, None, "UserParameters.max_wait: at most 24h"),
        ({"gate": GATE, "deploymnet": "d-1"}, None, "unknown key(s) ['deploymnet']"),
        ({"gate": GATE, "policy": "gate.yaml"}, None, "exactly one of 'gate'"),
        ({"policy": "broken.yaml"}, None, "checks[0].on_fail"),
        ({"gate": GATE}, "token_ID", "continuationToken: not one this handler issued"),  # the published token
    ],
)
def test_bad_parameters_report_a_configuration_error(gates, engine, caplog, tmp_path, params, token, field):
    (tmp_path / "broken.yaml").write_text(
        "name: g\nchecks:\n  - deploy_window: {allow: ['Mon 09:00-10:00']}\n    on_fail: page\n"
    )
    pipeline, event = Pipeline(), job_event(params, token=token)
    pipeline.expect(
        "put_job_failure_result",
        {"jobId": event["CodePipeline.job"]["id"], "failureDetails": {"type": "ConfigurationError", "message": ANY}},
    )
    result = pipeline.call(event)
    assert_failure_shape(pipeline.last())
    assert field in pipeline.last()["failureDetails"]["message"]
    assert result["reported"] == "failure" and decisions(engine) == []
    assert_no_secrets(caplog, engine, event)


def test_an_unreachable_store_reports_system_unavailable(gates, engine, monkeypatch, caplog):
    monkeypatch.setenv(
        "GATEWATCH_DB", f"postgresql://gw:db-password-{SECRETS['secretAccessKey']}@127.0.0.1:{closed_port()}/gw"
    )
    pipeline, event = Pipeline(), job_event({"gate": GATE})
    pipeline.expect(
        "put_job_failure_result",
        {"jobId": event["CodePipeline.job"]["id"], "failureDetails": {"type": "SystemUnavailable", "message": ANY}},
    )
    pipeline.call(event)
    message = pipeline.last()["failureDetails"]["message"]
    assert message.startswith("the Gatewatch store could not be reached") and "db-password" not in message
    assert_no_secrets(caplog, engine, event)


def test_an_unexpected_exception_still_posts_a_failure(gates, engine, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("division by zero in a check")

    monkeypatch.setattr(aws_lambda, "evaluate_gate", broken)
    pipeline, event = Pipeline(), job_event({"gate": GATE})
    pipeline.expect(
        "put_job_failure_result",
        {"jobId": event["CodePipeline.job"]["id"], "failureDetails": {"type": "JobFailed", "message": ANY}},
    )
    result = pipeline.call(event)
    assert "ZeroDivisionError: division by zero in a check" in pipeline.last()["failureDetails"]["message"]
    assert result["failure_type"] == "JobFailed"
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    assert_no_secrets(caplog, engine, event)


def test_a_retried_invocation_of_a_reported_job_is_logged_and_returns(gates, engine, caplog):
    pipeline, event = Pipeline(), job_event({"gate": GATE})
    retry = copy.deepcopy(event)
    job_id = event["CodePipeline.job"]["id"]
    success = {"jobId": job_id, "outputVariables": ANY, "executionDetails": ANY}
    pipeline.expect("put_job_success_result", success)
    first = pipeline.call(event)
    write_policy(gates, shift=1.4)  # the data changed, but a retry of the job must not decide again
    pipeline.expect("put_job_success_result", success, error="InvalidJobStateException")
    again = pipeline.call(retry)
    assert again["reported"] == "already_reported" and again["decision_id"] == first["decision_id"]
    assert pipeline.sent[0][1] == pipeline.sent[1][1]  # the same report, not a second decision
    assert len(decisions(engine)) == 1
    assert any("already reported" in r.getMessage() for r in caplog.records)
    assert_no_secrets(caplog, engine, retry)


def test_other_errors_from_codepipeline_raise_so_lambda_retries(gates, engine):
    pipeline, event = Pipeline(), job_event({"gate": GATE})
    pipeline.expect(
        "put_job_success_result",
        {"jobId": event["CodePipeline.job"]["id"], "outputVariables": ANY, "executionDetails": ANY},
        error="JobNotFoundException",
    )
    with pytest.raises(pipeline.client.exceptions.JobNotFoundException):
        aws_lambda.handler(event, None, client=pipeline.client)


def test_an_event_that_is_not_a_job_reports_nothing(gates, caplog):
    pipeline = Pipeline()
    assert pipeline.call({"detail-type": "CodePipeline Pipeline Execution State Change"})["reported"] is None
    assert pipeline.sent == [] and "not a CodePipeline job event" in caplog.text
