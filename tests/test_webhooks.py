"""The webhook receiver against a real store: signatures, limits, quarantine, dedupe, health."""

from __future__ import annotations

import hashlib
import hmac
import io
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from collector import ingest
from collector.config import config_from_mapping
from collector.db import create_store_engine
from collector.models import deployments, incidents, pipeline_runs, raw_events
from collector.webhooks import create_app
from tests.conftest import fixture_path

SECRETS = {
    "github_secret": "gh-s3cret",
    "gitlab_token": "gl-t0ken",
    "pagerduty_secret": "pd-s3cret",
    "events_token": "ev-t0ken",
}


CONFIG = config_from_mapping({}, environ={})


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def client(engine):
    config = config_from_mapping({"webhooks": {**SECRETS, "max_body_bytes": 64 * 1024}}, environ={})
    with TestClient(create_app(engine, config)) as c:
        yield c


def rows(engine, table):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table)).mappings()]


def test_github_signed_delivery_is_archived_and_projected(client, engine):
    body = fixture_path("github/deployment.json").read_bytes()
    res = client.post(
        "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "deployment", "X-Hub-Signature-256": "sha256=" + sign("gh-s3cret", body)},
    )
    assert res.status_code == 200, res.text
    assert res.json()["stored"] == 1
    (raw,) = rows(engine, raw_events)
    assert (raw["source"], raw["kind"], raw["status"]) == ("github", "deployment", "ok")
    assert raw["payload"] == body.decode()  # exactly as received
    (dep,) = rows(engine, deployments)
    assert dep["id"] == "github:Codertocat/Hello-World:deployment:145988746" and dep["status"] == "pending"
    # A redelivery of the same body is a duplicate, still 200.
    again = client.post(
        "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "deployment", "X-Hub-Signature-256": "sha256=" + sign("gh-s3cret", body)},
    )
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert len(rows(engine, raw_events)) == 1


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", "sha256=" + sign("wrong", b"x")])
def test_github_bad_or_missing_signature_is_401_and_stores_nothing(client, engine, signature):
    body = fixture_path("github/push.json").read_bytes()
    headers = {"X-GitHub-Event": "push"} | ({"X-Hub-Signature-256": signature} if signature else {})
    res = client.post("/webhooks/github", content=body, headers=headers)
    assert res.status_code == 401
    assert rows(engine, raw_events) == []


def test_gitlab_token(client, engine):
    body = fixture_path("gitlab/deployment_hook.succeeded.json").read_bytes()
    assert client.post("/webhooks/gitlab", content=body, headers={"X-Gitlab-Token": "nope"}).status_code == 401
    res = client.post(
        "/webhooks/gitlab", content=body, headers={"X-Gitlab-Token": "gl-t0ken", "X-Gitlab-Event": "Deployment Hook"}
    )
    assert res.status_code == 200, res.text
    (dep,) = rows(engine, deployments)
    assert dep["source"] == "gitlab" and dep["status"] == "success" and dep["production"] is True


def test_pagerduty_signature_with_key_rotation(client, engine):
    body = fixture_path("incidents/pagerduty.incident.triggered.v3.json").read_bytes()
    header = f"v1={sign('old-secret', body)}, v1={sign('pd-s3cret', body)}"
    res = client.post("/webhooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": header})
    assert res.status_code == 200, res.text
    (inc,) = rows(engine, incidents)
    assert inc["id"] == "pagerduty:PFQZPSY" and inc["status"] == "triggered"
    bad = client.post("/webhooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": f"v1={sign('old', body)}"})
    assert bad.status_code == 401


def test_events_endpoint_takes_generic_ndjson_and_eventbridge_objects(client, engine):
    records = [
        {
            "type": "deployment",
            "id": "d1",
            "service": "api",
            "environment": "production",
            "status": "success",
            "finished_at": "2024-05-01T10:00:00Z",
        },
        {"type": "incident", "id": "i1", "service": "api", "opened_at": "2024-05-01T11:00:00Z"},
    ]
    body = "\n".join(json.dumps(r) for r in records).encode()
    assert client.post("/events", content=body).status_code == 401
    assert client.post("/events", content=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    res = client.post("/events", content=body, headers={"Authorization": "Bearer ev-t0ken"})
    assert res.status_code == 200 and res.json()["stored"] == 2
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "CodePipeline Pipeline Execution State Change",
        "source": "aws.codepipeline",
        "account": "1",
        "time": "2024-05-01T09:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"pipeline": "api", "execution-id": "x1", "state": "STARTED", "version": 1},
    }
    res = client.post("/events", json=event, headers={"Authorization": "Bearer ev-t0ken"})
    assert res.status_code == 200 and res.json()["by_source"] == {"codepipeline": 1}


def test_malformed_body_is_quarantined_and_answered_422(client, engine):
    body = b'{"type": "deployment", "id": "d9", "status": "exploded"'
    res = client.post("/events", content=body, headers={"Authorization": "Bearer ev-t0ken"})
    assert res.status_code == 422
    assert "expected JSON" in res.json()["detail"][0]
    (raw,) = rows(engine, raw_events)
    assert raw["status"] == "quarantined" and raw["payload"] == body.decode()
    body = json.dumps(
        {
            "type": "deployment",
            "id": "d9",
            "service": "s",
            "environment": "production",
            "status": "exploded",
            "finished_at": "2024-01-01T00:00:00Z",
        }
    ).encode()
    res = client.post("/events", content=body, headers={"Authorization": "Bearer ev-t0ken"})
    assert res.status_code == 422 and "field 'status'" in res.json()["detail"][0]


def test_body_over_the_limit_is_413_and_not_stored(client, engine):
    body = b"{" + b" " * (70 * 1024) + b"}"
    res = client.post("/events", content=body, headers={"Authorization": "Bearer ev-t0ken"})
    assert res.status_code == 413

    def chunks():  # no Content-Length: the limit applies to the bytes actually read
        for _ in range(70):
            yield b" " * 1024

    res = client.post("/events", content=chunks(), headers={"Authorization": "Bearer ev-t0ken"})
    assert res.status_code == 413
    assert rows(engine, raw_events) == []


def test_unconfigured_secret_is_503_naming_the_variable(engine):
    with TestClient(create_app(engine, config_from_mapping({}, environ={}))) as c:
        res = c.post("/webhooks/github", content=b"{}")
    assert res.status_code == 503 and "GATEWATCH_GITHUB_SECRET" in res.json()["detail"]


def test_healthz(client, engine):
    assert client.get("/healthz").json() == {"status": "ok", "store": "ok"}
    dead = create_store_engine("postgresql://nobody@127.0.0.1:1/none")
    with TestClient(create_app(dead, config_from_mapping({}, environ={}))) as c:
        res = c.get("/healthz")
    assert res.status_code == 503 and res.json()["status"] == "error"


def test_openapi_document_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/webhooks/github", "/webhooks/gitlab", "/webhooks/pagerduty", "/events", "/healthz"} <= set(paths)


def _deployment_review() -> dict:
    """A `deployment_review` (requested) delivery as GitHub documents it: the waiting run, its jobs, reviewers."""
    run = json.loads(fixture_path("github/workflow_run.requested.json").read_text())
    waiting = dict(run["workflow_run"], status="waiting", conclusion=None)
    job = {
        "id": 399444496,
        "name": "deploy",
        "status": "waiting",
        "conclusion": None,
        "environment": "production",
        "html_url": waiting["html_url"] + "/job/399444496",
        "created_at": waiting["created_at"],
        "updated_at": waiting["updated_at"],
    }
    return {
        "action": "requested",
        "environment": "production",
        "since": waiting["updated_at"],
        "requestor": run["sender"],
        "reviewers": [{"type": "User", "reviewer": run["sender"]}],
        "workflow_job_run": job,
        "workflow_job_runs": [job],
        "workflow": run["workflow"],
        "workflow_run": waiting,
        "repository": run["repository"],
        "sender": run["sender"],
    }


def test_a_deployment_review_is_the_same_event_from_a_file_and_from_the_webhook(client, engine):
    body = json.dumps(_deployment_review()).encode()
    from_file = ingest.ingest(engine, ingest.read_stream(io.StringIO(body.decode()), "review.json"), CONFIG)
    (raw,) = rows(engine, raw_events)
    assert (raw["source"], raw["kind"], from_file.ignored) == ("github", "deployment_review", 1)
    res = client.post(
        "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "deployment_review", "X-Hub-Signature-256": "sha256=" + sign("gh-s3cret", body)},
    )
    assert res.status_code == 200 and res.json()["duplicates"] == 1  # the same payload, recognised the same way
    assert rows(engine, pipeline_runs) == [] and rows(engine, deployments) == []
    # The workflow run it carries, delivered as a workflow_run event, is a run.
    run = fixture_path("github/workflow_run.requested.json").read_text()
    ingest.ingest(engine, ingest.read_stream(io.StringIO(run), "run.json"), CONFIG)
    assert len(rows(engine, pipeline_runs)) == 1


def test_a_deployment_protection_rule_is_not_a_new_deployment(engine):
    deployment = json.loads(fixture_path("github/deployment.json").read_text())
    rule = {
        "action": "requested",
        "environment": "production",
        "event": "push",
        "deployment_callback_url": "https://api.github.com/repos/Codertocat/Hello-World/actions/runs/1/deployment_protection_rule",
        "deployment": deployment["deployment"],
        "pull_requests": [],
        "repository": deployment["repository"],
        "sender": deployment["sender"],
    }
    ingest.ingest(engine, ingest.read_stream(io.StringIO(json.dumps(rule)), "rule.json"), CONFIG)
    (raw,) = rows(engine, raw_events)
    assert raw["kind"] == "deployment_protection_rule" and rows(engine, deployments) == []
