"""The server's own metrics (`GET /metrics`) against the real app and store: counters by label after
webhooks and gate calls, the newest event's age read from the store, the optional token, multiprocess
mode (files summed over processes; a real two-worker uvicorn); and the alert rules shipped for them,
checked and unit-tested with promtool."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, update

from collector.config import config_from_mapping
from collector.models import raw_events
from collector.timeutil import utcnow
from collector.webhooks import create_app
from gates.service import load_policies
from gates.views import build_router
from gatewatch import api, metrics
from tests import prometheus_server
from tests.conftest import fixture_path
from tests.processes import descendants, free_port, until, wait_until_healthy
from tests.test_gate_actions import Hook
from tests.test_gate_api import AUTH, TOKEN, write_policies

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus"
GITHUB_SECRET = "gh-metrics-s3cret"
EVENTS_TOKEN = "ev-metrics-t0ken"
Samples = dict[tuple[str, frozenset], float]
ROLLBACK = {"on_fail": "rollback"}


def record(i: int) -> dict:
    """A generic deployment record."""
    return {
        "type": "deployment",
        "id": f"d{i}",
        "service": "api",
        "environment": "production",
        "status": "success",
        "finished_at": "2024-05-01T10:00:00Z",
    }


def scrape(client, headers: dict | None = None) -> Samples:
    """Every sample of /metrics by (name, labels)."""
    res = client.get("/metrics", headers=headers or {})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain")
    return parse(res.text)


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes (counters are per process: other tests count too)."""
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def app_config(**extra) -> api.Config:
    return config_from_mapping(
        {"webhooks": {"github_secret": GITHUB_SECRET, "events_token": EVENTS_TOKEN}, "gates": {"token": TOKEN}} | extra,
        environ={},
    )


@pytest.fixture
def policy_dir(tmp_path):
    return write_policies(tmp_path / "policies")


@pytest.fixture
def client(engine, policy_dir):
    config = app_config()
    app = create_app(engine, config, routers=[build_router(engine, config, load_policies(policy_dir))])
    with TestClient(app) as c:
        yield c


def github(client, body: bytes, event: str = "deployment", secret: str = GITHUB_SECRET):
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/github", content=body, headers={"X-GitHub-Event": event, "X-Hub-Signature-256": signature}
    )


def test_webhooks_are_counted_by_endpoint_code_source_and_outcome(client, engine):
    before = scrape(client)
    body = fixture_path("github/deployment.json").read_bytes()
    assert github(client, body).status_code == 200
    assert github(client, body).json()["duplicates"] == 1
    assert github(client, b"{not json").status_code == 422
    assert github(client, body, secret="wrong").status_code == 401
    events = "\n".join(json.dumps(record(i)) for i in range(3))
    res = client.post("/events", content=events, headers={"Authorization": f"Bearer {EVENTS_TOKEN}"})
    assert res.status_code == 200 and res.json()["stored"] == 3
    after = scrape(client)

    received = "gatewatch_webhooks_received_total"
    assert delta(before, after, received, endpoint="github", code="200") == 2
    assert delta(before, after, received, endpoint="github", code="422") == 1
    assert delta(before, after, received, endpoint="github", code="401") == 1
    assert delta(before, after, received, endpoint="events", code="200") == 1
    payloads = "gatewatch_webhook_payloads_total"
    assert delta(before, after, payloads, source="github", outcome="stored") == 1
    assert delta(before, after, payloads, source="github", outcome="duplicate") == 1
    assert delta(before, after, payloads, source="github", outcome="quarantined") == 1
    assert delta(before, after, payloads, source="generic", outcome="stored") == 3
    # Latency is observed for every request that reached the store (not for the refused one).
    assert delta(before, after, "gatewatch_ingest_duration_seconds_count", endpoint="github") == 3
    assert delta(before, after, "gatewatch_ingest_duration_seconds_bucket", endpoint="github", le="+Inf") == 3
    assert delta(before, after, "gatewatch_ingest_duration_seconds_sum", endpoint="github") > 0


def test_gate_calls_are_counted_by_gate_and_decision(client):
    before = scrape(client)
    for gate, key in [("checkout-prod", "m-1"), ("checkout-prod", "m-1"), ("regressed", "m-2"), ("waiting", "m-3")]:
        assert client.post(f"/v1/gates/{gate}/evaluate", json={"key": key}, headers=AUTH).status_code == 200
    assert client.post("/v1/gates/broken/evaluate", json={"key": "m-4"}, headers=AUTH).status_code == 422
    assert client.post("/v1/gates/checkout-prod/evaluate", json={"key": "m-5"}).status_code == 401
    after = scrape(client)

    evaluations = "gatewatch_gate_evaluations_total"
    assert delta(before, after, evaluations, gate="checkout-prod", decision="promote") == 2  # the replay too
    assert delta(before, after, evaluations, gate="regressed", decision="rollback") == 1
    assert delta(before, after, evaluations, gate="waiting", decision="hold") == 1
    assert delta(before, after, evaluations, gate="broken", decision="promote") == 0
    assert delta(before, after, "gatewatch_gate_errors_total", gate="broken", error="config") == 1
    seconds = "gatewatch_gate_evaluation_duration_seconds_count"
    assert [delta(before, after, seconds, gate=g) for g in ("checkout-prod", "regressed", "broken")] == [2, 1, 1]


def test_gate_actions_are_counted_by_kind_and_outcome(engine, policy_dir):
    with Hook(answers=[400], default=200) as hook:  # the first call is refused (not retried), the next ok
        for name in ("notify-a", "notify-b"):
            policy = {
                "name": name,
                "checks": [
                    {
                        "canary": {"config": "../data/canary.yaml", "data": "../data/regressed.csv"},
                        "on_fail": "rollback",
                    }
                ],
                "actions": [{"webhook": {"url": hook.url}}],
            }
            (policy_dir / f"{name}.yaml").write_text(yaml.safe_dump(policy))
        config = app_config()
        app = create_app(engine, config, routers=[build_router(engine, config, load_policies(policy_dir))])
        with TestClient(app) as client:
            before = scrape(client)
            for name in ("notify-a", "notify-b"):
                res = client.post(f"/v1/gates/{name}/evaluate", json={"key": f"act-{name}"}, headers=AUTH)
                assert res.json()["decision"] == "rollback"
            after = scrape(client)
    assert len(hook.requests) == 2
    actions = "gatewatch_gate_actions_total"
    assert delta(before, after, actions, kind="webhook", outcome="failed") == 1
    assert delta(before, after, actions, kind="webhook", outcome="ok") == 1


def test_newest_event_age_per_source_is_read_from_the_store(client, engine):
    before = scrape(client)
    assert not [k for k in before if k[0] == "gatewatch_newest_event_age_seconds"]  # an empty store: no series
    assert github(client, fixture_path("github/deployment.json").read_bytes()).status_code == 200
    with engine.begin() as conn:
        conn.execute(update(raw_events).values(received_at=utcnow() - timedelta(hours=2)))
    age = scrape(client)[("gatewatch_newest_event_age_seconds", frozenset({("source", "github")}))]
    assert 7200 <= age < 7200 + 600

    # The collector on its own, with a fixed clock: the exact age of the newest of each source.
    newest = api.newest_event_times(engine)
    assert set(newest) == {"github"}
    collector = metrics.NewestEventAge(
        lambda: api.newest_event_times(engine), lambda: newest["github"] + timedelta(seconds=90)
    )
    (family,) = collector.collect()
    assert [(s.labels, s.value) for s in family.samples] == [({"source": "github"}, 90.0)]


def test_a_store_that_is_down_is_counted_and_leaves_the_age_out():
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    config = app_config()
    with TestClient(create_app(dead, config, routers=[build_router(dead, config, None)])) as client:
        before = scrape(client)
        assert client.get("/healthz").status_code == 503
        body = fixture_path("github/deployment.json").read_bytes()
        assert github(client, body).status_code == 503
        after = scrape(client)
    errors = "gatewatch_store_errors_total"
    assert delta(before, after, errors, operation="health") == 1
    assert delta(before, after, errors, operation="ingest") == 1
    assert delta(before, after, errors, operation="metrics") == 1  # the scrape before the last one
    assert delta(before, after, "gatewatch_webhooks_received_total", endpoint="github", code="503") == 1
    assert not [k for k in after if k[0] == "gatewatch_newest_event_age_seconds"]


def test_notifications_are_counted_by_channel_and_outcome(client):
    before = scrape(client)
    metrics.count_notification("slack-oncall", "sent")
    metrics.count_notification("slack-oncall", "sent")
    metrics.count_notification("pagerduty", "failed")
    after = scrape(client)
    notifications = "gatewatch_notifications_total"
    assert delta(before, after, notifications, channel="slack-oncall", outcome="sent") == 2
    assert delta(before, after, notifications, channel="pagerduty", outcome="failed") == 1
    assert delta(before, after, notifications, channel="slack-oncall", outcome="failed") == 0


def test_metrics_need_no_gate_token_but_a_metrics_token_when_one_is_set(engine):
    with TestClient(create_app(engine, app_config())) as client:
        assert client.get("/metrics").status_code == 200
    config = app_config(metrics={"token": "scrape-t0ken"})
    with TestClient(create_app(engine, config)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=AUTH).status_code == 401  # the gate token is not the metrics token
        res = client.get("/metrics", headers={"Authorization": "Bearer scrape-t0ken"})
    assert res.status_code == 200 and "# TYPE gatewatch_gate_evaluations_total counter" in res.text
    assert config_from_mapping({}, environ={"GATEWATCH_METRICS_TOKEN": "t"}).metrics.token == "t"
    assert "zzsecret" not in repr(config_from_mapping({}, environ={"GATEWATCH_METRICS_TOKEN": "zzsecret"}))


WORKER = """
import sys
from gatewatch import metrics
for _ in range(int(sys.argv[1])):
    metrics.count_webhook("github", 200)
    metrics.count_gate_evaluation("checkout-prod", "promote", 0.2)
metrics.count_notification("slack", "failed")
"""
SCRAPE = """
from prometheus_client import generate_latest
from gatewatch import metrics
print(generate_latest(metrics.scrape_registry()).decode())
"""


def test_multiprocess_mode_sums_what_every_process_counted(tmp_path):
    folder = tmp_path / "prometheus-multiproc"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), metrics.MULTIPROCESS_VARIABLE: str(folder)}
    for n in ("3", "4"):  # two "workers", each its own process
        subprocess.run([sys.executable, "-c", WORKER, n], env=env, check=True, timeout=60)
    assert len(list(folder.glob("counter_*.db"))) == 2
    out = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples = parse(out)
    assert samples[("gatewatch_webhooks_received_total", frozenset({("endpoint", "github"), ("code", "200")}))] == 7
    assert (
        samples[("gatewatch_gate_evaluations_total", frozenset({("gate", "checkout-prod"), ("decision", "promote")}))]
        == 7
    )
    assert samples[("gatewatch_gate_evaluation_duration_seconds_count", frozenset({("gate", "checkout-prod")}))] == 7
    assert samples[("gatewatch_notifications_total", frozenset({("channel", "slack"), ("outcome", "failed")}))] == 2


def test_serve_with_two_workers_reports_the_same_summed_counts_from_either(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'served.db'}"  # one store kind: the processes are what is tested
    folder = tmp_path / "prometheus-multiproc"
    folder.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env |= {"GATEWATCH_EVENTS_TOKEN": EVENTS_TOKEN, metrics.MULTIPROCESS_VARIABLE: str(folder)}
    exe = str(Path(sys.executable).with_name("gatewatch"))
    command = [exe, "--log-format", "json", "--db", store_url, "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/healthz", proc, deadline=120)  # three processes import the service
        assert until(lambda: len(descendants(proc.pid)) >= 2, 30)  # the two workers
        for i in range(12):  # a new connection each: the workers share the listening socket
            res = httpx.post(f"{base}/events", json=record(i), headers={"Authorization": f"Bearer {EVENTS_TOKEN}"})
            assert res.status_code == 200, res.text
        scrapes = [parse(httpx.get(f"{base}/metrics").text) for _ in range(6)]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    received = ("gatewatch_webhooks_received_total", frozenset({("endpoint", "events"), ("code", "200")}))
    stored = ("gatewatch_webhook_payloads_total", frozenset({("source", "generic"), ("outcome", "stored")}))
    assert [(s[received], s[stored]) for s in scrapes] == [(12, 12)] * 6
    ages = [s[("gatewatch_newest_event_age_seconds", frozenset({("source", "generic")}))] for s in scrapes]
    assert all(0 <= age < 600 for age in ages)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert any("with 2 workers" in line["message"] for line in lines)
    assert sum(line["logger"] == "uvicorn.access" and "/events" in line["message"] for line in lines) == 12
    assert EVENTS_TOKEN not in stderr


def test_serve_with_workers_needs_the_multiprocess_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_") and k != metrics.MULTIPROCESS_VARIABLE}
    exe = str(Path(sys.executable).with_name("gatewatch"))
    db = f"sqlite:///{tmp_path / 'x.db'}"
    out = subprocess.run(
        [exe, "--db", db, "serve", "--workers", "2"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and metrics.MULTIPROCESS_VARIABLE in out.stderr and "Traceback" not in out.stderr


def test_json_logs_carry_the_request_id_gate_key_and_decision(tmp_path):
    folder = write_policies(tmp_path / "policies")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env |= {"GATEWATCH_GATE_TOKEN": TOKEN, "GATEWATCH_GITHUB_SECRET": GITHUB_SECRET}
    exe = Path(sys.executable).with_name("gatewatch")
    db = f"sqlite:///{tmp_path / 'served.db'}"
    proc = subprocess.Popen(
        [str(exe), "--log-format", "json", "--db", db, "serve", "--port", str(port), "--policies", str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/healthz", proc)
        res = httpx.post(
            f"{base}/v1/gates/regressed/evaluate",
            json={"key": "log-1", "deployment_id": "deploy-7"},
            headers=AUTH | {"X-Request-ID": "req-abc.123"},
        )
        assert res.status_code == 200 and res.headers["x-request-id"] == "req-abc.123"
        body = fixture_path("github/deployment.json").read_bytes()
        hooked = github(httpx.Client(base_url=base), body)
        assert hooked.status_code == 200
        generated = hooked.headers["x-request-id"]
        assert len(generated) == 32 and int(generated, 16) >= 0
        unsafe = httpx.get(f"{base}/healthz", headers={"X-Request-ID": 'x" injected\\n'})
        assert unsafe.headers["x-request-id"] != 'x" injected\\n'  # not a plain token: replaced
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    (decision,) = [line for line in lines if line.get("decision")]
    assert decision["request_id"] == "req-abc.123" and decision["level"] == "INFO"
    assert (decision["gate"], decision["key"], decision["decision"]) == ("regressed", "log-1", "rollback")
    assert decision["deployment_id"] == "deploy-7" and decision["logger"] == "gates.views"
    access = Counter(line["request_id"] for line in lines if line["logger"] == "uvicorn.access")
    assert access["req-abc.123"] == 1 and access[generated] == 1
    assert any("listening on" in line["message"] for line in lines)
    assert TOKEN not in stderr and GITHUB_SECRET not in stderr


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests():
    promtool = str(prometheus_server.binaries()[1])
    checked = subprocess.run(
        [promtool, "check", "rules", "gatewatch-alerts.yaml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and "SUCCESS: 8 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "gatewatch-alerts.test.yaml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_metric_the_rules_use_is_one_the_server_exposes():
    rules = yaml.safe_load((RULES / "gatewatch-alerts.yaml").read_text())
    used = {
        name.removesuffix("_total")
        for group in rules["groups"]
        for rule in group["rules"]
        for name in re.findall(r"gatewatch_[a-z_]+", rule["expr"])
    }
    exposed = {m._name for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "labels")}
    assert used <= exposed | {"gatewatch_newest_event_age_seconds"}, used - exposed
    assert "gatewatch_newest_event_age_seconds" in used


def test_json_formatter_writes_one_object_with_the_fields():
    import logging

    from gatewatch.logs import REQUEST_ID, JsonFormatter, RequestIdFilter

    entry = logging.LogRecord("gates.views", logging.INFO, __file__, 1, "gate %s decided", ("g",), None)
    entry.gate, entry.decision = "g", "hold"
    token = REQUEST_ID.set("r-1")
    try:
        assert RequestIdFilter().filter(entry)
    finally:
        REQUEST_ID.reset(token)
    line = json.loads(JsonFormatter().format(entry))
    assert line["message"] == "gate g decided" and line["request_id"] == "r-1"
    assert (line["gate"], line["decision"], line["level"], line["logger"]) == ("g", "hold", "INFO", "gates.views")
    assert line["time"].endswith("+00:00") and "key" not in line
