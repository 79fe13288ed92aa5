"""The gate service over HTTP (`gates.views`): FastAPI's TestClient over a real store and real policy
files with CSV canary data; one real `gatewatch serve` (schemathesis: tests/test_http_contract.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from collector.config import config_from_mapping
from collector.models import canary_runs, gate_decisions
from collector.webhooks import create_app
from gates.service import load_policies
from gates.views import build_router
from tests.processes import free_port, wait_until_healthy

TOKEN = "gate-t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CANARY = {"metrics": [{"name": "latency", "direction": "increase", "tolerance": 0.1, "critical": True}]}
GATES = ("checkout-prod", "regressed", "waiting", "broken")
GATING_HOOKS = ("confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion")


def samples(path: Path, canary_shift: float, n: int = 100) -> None:
    rng = np.random.default_rng(4)
    rows = [
        {"metric": "latency", "group": g, "value": v}
        for g, s in (("baseline", 1.0), ("canary", canary_shift))
        for v in rng.normal(100 * s, 5, n)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)


def write_policies(root: Path) -> Path:
    """A policy folder (root/gates) with four gates over CSV data in root/data: healthy canary
    (promote), regressed (rollback), too few samples (hold), and one whose data file is missing (a
    policy error at evaluation)."""
    folder, data = root / "gates", root / "data"
    folder.mkdir(parents=True)
    data.mkdir()
    (data / "canary.yaml").write_text(yaml.safe_dump(CANARY))
    samples(data / "healthy.csv", 1.0)
    samples(data / "regressed.csv", 1.4)
    samples(data / "sparse.csv", 1.0, n=3)
    for name, csv in (
        ("checkout-prod", "healthy.csv"),
        ("regressed", "regressed.csv"),
        ("waiting", "sparse.csv"),
        ("broken", "missing.csv"),
    ):
        policy = {
            "name": name,
            "checks": [{"canary": {"config": "../data/canary.yaml", "data": f"../data/{csv}"}, "on_fail": "rollback"}],
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(policy))
    return folder


@pytest.fixture
def policy_dir(tmp_path):
    return write_policies(tmp_path / "policies")


def make_app(engine, policy_dir, token: str | None = TOKEN, with_policies: bool = True):
    config = config_from_mapping({"gates": {"token": token}} if token else {}, environ={})
    policies = load_policies(policy_dir) if with_policies else None
    return create_app(engine, config, routers=[build_router(engine, config, policies)])


@pytest.fixture
def client(engine, policy_dir):
    with TestClient(make_app(engine, policy_dir)) as c:
        yield c


def stored_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(gate_decisions).order_by(gate_decisions.c.attempt)).mappings()]


def test_every_gate_route_needs_the_token(client, engine):
    body = {"deployment_id": "d-1"}
    calls = [
        ("post", "/v1/gates/checkout-prod/evaluate", {"json": body}),
        ("get", "/v1/gates", {}),
        ("get", f"/v1/decisions/{uuid.uuid4()}", {}),
        ("get", "/v1/argo/checkout-prod?deployment_id=d-1", {}),
        ("post", "/v1/argo/checkout-prod", {"json": body}),
    ]
    for method, path, kwargs in calls:
        missing = getattr(client, method)(path, **kwargs)
        wrong = getattr(client, method)(path, headers={"Authorization": "Bearer nope"}, **kwargs)
        basic = getattr(client, method)(path, headers={"Authorization": f"Basic {TOKEN}"}, **kwargs)
        assert (missing.status_code, wrong.status_code, basic.status_code) == (401, 401, 401), path
        assert missing.headers["www-authenticate"] == "Bearer"
    # authentication comes before validation and before the gate lookup
    assert client.post("/v1/gates/nope/evaluate", json={"bogus": 1}).status_code == 401
    assert stored_rows(engine) == []


def test_without_a_configured_token_or_policies_the_routes_answer_503(engine, policy_dir):
    with TestClient(make_app(engine, policy_dir, token=None)) as c:
        res = c.post("/v1/gates/checkout-prod/evaluate", json={"key": "k"}, headers=AUTH)
        assert res.status_code == 503 and "GATEWATCH_GATE_TOKEN" in res.json()["detail"]
    with TestClient(make_app(engine, policy_dir, with_policies=False)) as c:
        for res in (
            c.post("/v1/gates/checkout-prod/evaluate", json={"key": "k"}, headers=AUTH),
            c.get("/v1/gates", headers=AUTH),
        ):
            assert res.status_code == 503 and "GATEWATCH_GATE_POLICIES" in res.json()["detail"]
            assert "--policies" in res.json()["detail"]


def test_healthy_canary_promotes_and_a_retry_returns_the_stored_decision(client, engine, policy_dir):
    body = {"deployment_id": "deploy-9", "service": "checkout", "key": "job-1", "params": {"stage": "prod"}}
    first = client.post("/v1/gates/checkout-prod/evaluate", json=body, headers=AUTH)
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["decision"] == "promote" and out["replayed"] is False and out["attempt"] == 1
    assert out["key"] == "job-1" and out["gate"] == "checkout-prod" and out["deployment_id"] == "deploy-9"
    assert [c["status"] for c in out["checks"]] == ["pass"] and out["evidence"]["canary_run_id"]
    samples(policy_dir.parent / "data" / "healthy.csv", 1.4)  # the data regresses, but the key's decision is final
    again = client.post("/v1/gates/checkout-prod/evaluate", json=body, headers=AUTH).json()
    assert again["id"] == out["id"] and again["decision"] == "promote" and again["replayed"] is True
    assert len(stored_rows(engine)) == 1
    read = client.get(f"/v1/decisions/{out['id']}", headers=AUTH)
    assert read.status_code == 200 and read.json()["id"] == out["id"] and read.json()["decision"] == "promote"
    assert read.json()["checks"] == out["checks"]
    assert client.get(f"/v1/decisions/{uuid.uuid4()}", headers=AUTH).status_code == 404
    assert client.get("/v1/decisions/not-a-uuid", headers=AUTH).status_code == 422


def test_regressed_canary_is_a_200_rollback_and_the_default_key_is_gate_and_deployment(client):
    res = client.post("/v1/gates/regressed/evaluate", json={"deployment_id": "deploy-10"}, headers=AUTH)
    assert res.status_code == 200
    out = res.json()
    assert out["decision"] == "rollback" and out["key"] == "regressed:deploy-10"
    assert out["reasons"][0].startswith("canary: canary fail")


def test_unknown_gate_is_404_naming_the_known_ones(client):
    res = client.post("/v1/gates/checkout-dev/evaluate", json={"key": "k"}, headers=AUTH)
    assert res.status_code == 404
    detail = res.json()["detail"]
    assert "checkout-dev" in detail and all(n in detail for n in ("broken", "checkout-prod", "regressed", "waiting"))


def test_invalid_bodies_are_422_naming_the_field(client, engine):
    def loc(body) -> list:
        res = client.post("/v1/gates/checkout-prod/evaluate", json=body, headers=AUTH)
        assert res.status_code == 422, res.text
        return [e["loc"] for e in res.json()["detail"]]

    assert loc({"key": "k", "deploymentId": "d"}) == [["body", "deploymentId"]]
    assert loc({"key": "k", "params": [1, 2]}) == [["body", "params"]]
    assert loc({"key": 7}) == [["body", "key"]]
    assert loc({"key": "x" * 256}) == [["body", "key"]]
    assert loc({"key": "a\x00b"}) == [["body", "key"]]
    assert loc({"service": "checkout"}) == [["body", "key"]]  # neither key nor deployment_id
    res = client.post(
        "/v1/gates/checkout-prod/evaluate", content=b"{not json", headers=AUTH | {"Content-Type": "application/json"}
    )
    assert res.status_code == 422
    broken = client.post("/v1/gates/broken/evaluate", json={"key": "k"}, headers=AUTH)
    assert broken.status_code == 422 and "missing.csv" in broken.json()["detail"]
    assert stored_rows(engine) == []


def test_a_hold_is_evaluated_again_under_the_same_key(client, engine, policy_dir):
    held = client.post("/v1/gates/waiting/evaluate", json={"key": "k-hold"}, headers=AUTH).json()
    assert held["decision"] == "hold" and held["attempt"] == 1 and held["checks"][0]["status"] == "nodata"
    samples(policy_dir.parent / "data" / "sparse.csv", 1.0)  # enough samples now
    promoted = client.post("/v1/gates/waiting/evaluate", json={"key": "k-hold"}, headers=AUTH).json()
    assert promoted["decision"] == "promote" and promoted["attempt"] == 2 and promoted["id"] != held["id"]


def test_gates_lists_names_and_checks(client):
    res = client.get("/v1/gates", headers=AUTH)
    assert res.status_code == 200
    gates = {g["name"]: g for g in res.json()["gates"]}
    assert sorted(gates) == ["broken", "checkout-prod", "regressed", "waiting"]
    assert gates["checkout-prod"]["checks"] == [
        {"name": "canary", "type": "canary", "on_fail": "rollback", "on_missing_data": "hold"}
    ]


def flagger(client, gate: str, hook: str, checksum: str, metadata: dict | None = None, headers=None):
    payload = {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": checksum,
        "metadata": {"token": TOKEN} if metadata is None else metadata,
    }
    return client.post(f"/v1/flagger/{gate}/{hook}", json=payload, headers=headers or {})


def test_flagger_answers_2xx_only_when_it_should_go_on(client):
    expected = {
        "checkout-prod": ("promote", 200, 409),
        "regressed": ("rollback", 403, 200),
        "waiting": ("hold", 409, 409),
    }
    for gate, (decision, gating, rollback) in expected.items():
        answers = {hook: flagger(client, gate, hook, f"rev-{gate}") for hook in (*GATING_HOOKS, "rollback")}
        for hook, res in answers.items():
            assert res.status_code == (rollback if hook == "rollback" else gating), (gate, hook, res.text)
            out = res.json()
            assert out["decision"] == decision and out["hook"] == hook and out["reasons"]
        if decision != "hold":  # one decision per revision: every hook sees the same one
            assert len({r.json()["id"] for r in answers.values()}) == 1
        assert answers["rollout"].json()["key"] == f"flagger:test/podinfo:rev-{gate}"


def test_flagger_keys_by_revision_and_reads_scopes_from_metadata(client, engine, policy_dir):
    first = flagger(client, "checkout-prod", "confirm-promotion", "abc123").json()
    samples(policy_dir.parent / "data" / "healthy.csv", 1.4)
    same = flagger(client, "checkout-prod", "confirm-promotion", "abc123")
    assert same.status_code == 200 and same.json()["id"] == first["id"]
    new_revision = flagger(client, "checkout-prod", "confirm-promotion", "def456")
    assert new_revision.status_code == 403 and new_revision.json()["decision"] == "rollback"
    meta = {"token": TOKEN, "service": "checkout", "deployment_id": "deploy-77", "baseline": 'version="v1"'}
    assert flagger(client, "regressed", "rollback", "r1", meta).status_code == 200
    rows = {r["key"]: r for r in stored_rows(engine)}
    assert rows["flagger:test/podinfo:abc123"]["service"] == "podinfo"  # default: the canary's name
    assert rows["flagger:test/podinfo:r1"]["service"] == "checkout"
    assert rows["flagger:test/podinfo:r1"]["deployment_id"] == "deploy-77"
    assert not any(TOKEN in json.dumps(r, default=str) for r in rows.values())  # the token is never stored


def test_flagger_authentication_and_validation(client, engine):
    assert flagger(client, "checkout-prod", "rollout", "c1", metadata={}).status_code == 401
    assert flagger(client, "checkout-prod", "rollout", "c1", metadata={"token": "wrong"}).status_code == 401
    assert flagger(client, "checkout-prod", "rollout", "c1", metadata={}, headers=AUTH).status_code == 200
    assert stored_rows(engine)[0]["key"] == "flagger:test/podinfo:c1"
    missing = client.post(
        "/v1/flagger/checkout-prod/rollout", json={"name": "podinfo", "namespace": "test", "metadata": {"token": TOKEN}}
    )
    assert missing.status_code == 422 and [e["loc"] for e in missing.json()["detail"]] == [["body", "checksum"]]
    bad_hook = flagger(client, "checkout-prod", "post-rollout", "c1")
    assert bad_hook.status_code == 422 and bad_hook.json()["detail"][0]["loc"] == ["path", "hook"]
    bad_meta = flagger(client, "checkout-prod", "rollout", "c2", metadata={"token": TOKEN, "service": ""})
    assert bad_meta.status_code == 422 and bad_meta.json()["detail"][0]["loc"] == ["body", "metadata", "service"]
    unknown = flagger(client, "nope", "rollout", "c1")
    assert unknown.status_code == 404 and "checkout-prod" in unknown.json()["detail"]


def test_argo_web_metric_is_200_with_the_verdict_in_the_body(client, engine):
    got = client.get("/v1/argo/checkout-prod", params={"key": "ro-1-abc", "service": "checkout"}, headers=AUTH)
    assert got.status_code == 200
    verdict = got.json()
    assert verdict["decision"] == "promote" and verdict["promote"] is True and verdict["rollback"] is False
    with engine.connect() as conn:
        score = conn.execute(select(canary_runs.c.score)).scalar_one()
    assert verdict["score"] == pytest.approx(score) and 0 <= verdict["score"] <= 100
    posted = client.post("/v1/argo/regressed", json={"key": "ro-1-def"}, headers=AUTH).json()
    assert posted["decision"] == "rollback" and posted["rollback"] is True and posted["promote"] is False
    held = client.post("/v1/argo/waiting", json={"key": "ro-1-ghi"}, headers=AUTH).json()
    assert held["decision"] == "hold" and not held["promote"] and not held["rollback"] and held["score"] is None
    assert client.get("/v1/argo/checkout-prod", params={"key": "k", "extra": "1"}, headers=AUTH).status_code == 422
    stored = client.get(f"/v1/decisions/{verdict['id']}", headers=AUTH).json()
    assert stored["key"] == "ro-1-abc" and stored["decision"] == "promote"


def test_openapi_declares_the_gate_routes_and_their_answers(client):
    doc = client.get("/openapi.json").json()
    evaluate = doc["paths"]["/v1/gates/{name}/evaluate"]["post"]
    assert {"200", "401", "404", "422", "503"} <= set(evaluate["responses"])
    assert evaluate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/DecisionOut")
    request = doc["components"]["schemas"]["EvaluateRequest"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]) == {"deployment_id", "service", "key", "baseline", "canary", "params"}
    hook = doc["paths"]["/v1/flagger/{name}/{hook}"]["post"]
    assert {"200", "403", "409"} <= set(hook["responses"])


def test_gate_service_in_a_real_gatewatch_serve(tmp_path):
    folder = write_policies(tmp_path / "policies")
    db, port = tmp_path / "served.db", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env["GATEWATCH_GATE_TOKEN"] = TOKEN
    exe = Path(sys.executable).with_name("gatewatch")
    proc = subprocess.Popen(
        [str(exe), "--db", f"sqlite:///{db}", "serve", "--port", str(port), "--policies", str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(f"{base}/healthz", proc)
        res = httpx.post(f"{base}/v1/gates/regressed/evaluate", json={"key": "live-1"}, headers=AUTH)
        assert res.status_code == 200 and res.json()["decision"] == "rollback"
        again = httpx.post(f"{base}/v1/gates/regressed/evaluate", json={"key": "live-1"}, headers=AUTH)
        assert again.json()["id"] == res.json()["id"] and again.json()["replayed"] is True
        hook = httpx.post(
            f"{base}/v1/flagger/regressed/rollback",
            json={"name": "podinfo", "namespace": "test", "checksum": "x1", "metadata": {"token": TOKEN}},
        )
        assert hook.status_code == 200
        assert httpx.get(f"{base}/v1/gates", headers={"Authorization": "Bearer no"}).status_code == 401
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert "4 gate(s)" in stderr and TOKEN not in stderr
    with create_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM gate_decisions")).scalar_one() == 2


def test_serve_refuses_an_invalid_policy_folder(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: g\nchecks: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    exe = Path(sys.executable).with_name("gatewatch")
    res = subprocess.run(
        [
            str(exe),
            "--db",
            f"sqlite:///{tmp_path / 's.db'}",
            "serve",
            "--port",
            str(free_port()),
            "--policies",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "bad.yaml" in res.stderr and "checks" in res.stderr
    assert "Traceback" not in res.stderr
