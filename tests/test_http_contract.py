"""The HTTP service's contract (issue 19 §5): the gate API refuses a caller without the token before
reading the body, every body is limited to webhooks.max_body_bytes, the OpenAPI document declares
every answer, OPTIONS and other unserved methods get 405 with the right `Allow`, and schemathesis
with every check finds nothing, with the token and without it. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from sqlalchemy import func, select

from collector.config import config_from_mapping
from collector.models import gate_decisions, raw_events
from collector.webhooks import create_app
from gates.service import load_policies
from gates.views import build_router
from tests.test_gate_api import AUTH, GATES, TOKEN, write_policies

LIMIT = 64 * 1024
MIB = b"x" * 2**20
EVENTS_TOKEN = "events-t0ken"
GITLAB_TOKEN = "gitlab-t0ken"
BODY_ROUTES = ("/v1/gates/checkout-prod/evaluate", "/v1/argo/checkout-prod", "/v1/flagger/checkout-prod/rollout")


@pytest.fixture
def app(engine, tmp_path):
    config = config_from_mapping(
        {
            "gates": {"token": TOKEN},
            "webhooks": {
                "max_body_bytes": LIMIT,
                "github_secret": "gh-secret",
                "pagerduty_secret": "pd-secret",
                "gitlab_token": GITLAB_TOKEN,
                "events_token": EVENTS_TOKEN,
            },
        },
        environ={},
    )
    policies = load_policies(write_policies(tmp_path / "policies"))
    return create_app(engine, config, routers=[build_router(engine, config, policies)])


def asgi_post(app, path: str, headers: dict[str, str], chunks: Iterator[bytes]) -> tuple[int, bytes, int]:
    """POST `chunks` straight through the ASGI interface: (status, answer body, bytes the app consumed)."""
    consumed = 0
    source = iter(chunks)
    answer: dict = {"body": b""}

    async def receive() -> dict:
        nonlocal consumed
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["body"], consumed


def two_hundred_mib() -> Iterator[bytes]:
    return itertools.repeat(MIB, 200)


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_an_unauthenticated_large_post_is_refused_before_its_body_is_read(app, engine):
    declared = {"Content-Length": str(200 * 2**20), "Content-Type": "application/json"}
    for path in BODY_ROUTES:
        for auth in ({}, {"Authorization": "Bearer wrong"}):
            if path.startswith("/v1/flagger") and not auth:
                continue  # Flagger may carry its token in the payload: see the next test
            status, body, consumed = asgi_post(app, path, declared | auth, two_hundred_mib())
            assert (status, consumed) == (401, 0), (path, auth, body)
            assert b"gate token" in body
        # chunked (no Content-Length): refused just the same, nothing read
        status, _, consumed = asgi_post(app, path, {"Authorization": "Bearer wrong"}, two_hundred_mib())
        assert (status, consumed) == (401, 0), path
    assert count(engine, gate_decisions) == 0


def test_an_oversized_body_is_413_declared_or_chunked(app, engine):
    declared = {"Content-Length": str(200 * 2**20)} | AUTH
    for path in BODY_ROUTES:
        status, body, consumed = asgi_post(app, path, declared, two_hundred_mib())
        assert (status, consumed) == (413, 0), (path, body)
        assert b"webhooks.max_body_bytes" in body
        status, body, consumed = asgi_post(app, path, AUTH, two_hundred_mib())
        assert status == 413 and b"webhooks.max_body_bytes" in body, path
        assert consumed <= LIMIT + len(MIB)  # stopped at the first chunk over the limit
    # Flagger without a header token: the body is read to find metadata.token, bounded all the same
    status, _, consumed = asgi_post(app, BODY_ROUTES[2], {}, two_hundred_mib())
    assert status == 413 and consumed <= LIMIT + len(MIB)
    # the webhooks keep their order: size, then signature; nothing archived
    for path in ("/webhooks/github", "/events"):
        status, _, consumed = asgi_post(app, path, {}, two_hundred_mib())
        assert status == 413 and consumed <= LIMIT + len(MIB)
    assert count(engine, gate_decisions) == 0 and count(engine, raw_events) == 0


def test_a_body_under_the_limit_is_still_evaluated(app, engine):
    with TestClient(app) as client:
        padded = {"deployment_id": "d-1", "params": {"pad": "x" * (LIMIT // 2)}}
        res = client.post("/v1/gates/checkout-prod/evaluate", json=padded, headers=AUTH)
        assert res.status_code == 200 and res.json()["decision"] == "promote"
        # a header token is checked first, so a wrong one is 401 even with a right token in the payload
        hook = {"name": "web", "namespace": "prod", "checksum": "c1", "metadata": {"token": TOKEN}}
        res = client.post("/v1/flagger/checkout-prod/rollout", json=hook, headers={"Authorization": "Bearer no"})
        assert res.status_code == 401
        assert client.post("/v1/flagger/checkout-prod/rollout", json=hook).status_code == 200
    assert count(engine, gate_decisions) == 2


def test_the_openapi_document_declares_every_answer(app):
    with TestClient(app) as client:
        doc = client.get("/openapi.json").json()
    for path in ("/webhooks/github", "/webhooks/gitlab", "/webhooks/pagerduty", "/events"):
        responses = doc["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "401", "413", "422", "503"}, path
        assert responses["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")
        assert "requestBody" in doc["paths"][path]["post"]
    for path, method in (("/v1/gates/{name}/evaluate", "post"), ("/v1/argo/{name}", "post")):
        assert "413" in doc["paths"][path][method]["responses"]
    request = doc["components"]["schemas"]["EvaluateRequest"]
    assert [branch["required"] for branch in request["anyOf"]] == [["key"], ["deployment_id"]]
    assert set(doc["paths"]["/healthz"]["get"]["responses"]) == {"200", "503"}


def test_options_and_unserved_methods_are_405_naming_every_served_method(app):
    with TestClient(app) as client:
        doc = client.get("/openapi.json").json()
        for path, operations in doc["paths"].items():
            concrete = path.replace("{name}", "checkout-prod").replace("{hook}", "rollout")
            concrete = concrete.replace("{decision_id}", "00000000-0000-0000-0000-000000000000")
            for method in ("OPTIONS", "DELETE", "PATCH"):
                res = client.request(method, concrete, headers=AUTH)
                assert res.status_code == 405, (method, path)
                assert set(res.headers["allow"].split(", ")) == {m.upper() for m in operations}, (method, path)
                assert res.json() == {"detail": "Method Not Allowed"}
        # two routes share /v1/argo/{name}: both methods are named
        assert client.options("/v1/argo/checkout-prod").headers["allow"] == "GET, POST"


def run_schemathesis(
    app, headers: dict[str, str], path_regex: str, examples: int, modes: tuple = tuple(GenerationMode)
) -> set[tuple[str, int]]:
    """Every operation matching `path_regex`, positive and negative cases, every check; the statuses seen.
    A schema-valid request may still be 422 by meaning (a gate whose policy fails to evaluate, an event
    no parser recognises, which is archived as quarantined), so positive data may be answered 422."""
    config = SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}}}
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config).include(path_regex=path_regex)
    seen: set[tuple[str, int]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        named = "{name}" in operation.path  # also aim at the real gates, not only at random names
        strategy = st.one_of(
            [
                operation.as_strategy(mode, path_parameters=fixed)
                for mode in modes
                for fixed in ([None] + [{"name": g} for g in GATES] if named else [None])
            ]
        )

        @given(case=strategy)
        @settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case):
            res = case.call_and_validate(headers=headers)  # every check is enabled by default: `--checks all`
            seen.add((operation.path, res.status_code))  # noqa: B023 - called at once, in this iteration

        exercise()
    return seen


def test_schemathesis_with_every_check_finds_nothing(app, engine):
    """With the gate token for /v1 (the webhook secrets are HMACs schemathesis cannot sign: 401)."""
    seen = run_schemathesis(app, AUTH, "^/(v1|webhooks|events|healthz)", examples=10)
    assert all(status < 500 for _, status in seen), seen
    decided = {path for path, status in seen if status in (200, 403, 409)}
    assert {"/v1/gates/{name}/evaluate", "/v1/argo/{name}"} <= decided, seen
    # gitlab and events authenticate with a plain token: positive and negative bodies with it
    seen = run_schemathesis(app, {"X-Gitlab-Token": GITLAB_TOKEN}, "^/webhooks/gitlab$", 10)
    seen |= run_schemathesis(app, {"Authorization": f"Bearer {EVENTS_TOKEN}"}, "^/events$", 10)
    assert {status for _, status in seen} <= {200, 422} and {200, 422} & {s for _, s in seen}, seen


def test_schemathesis_without_the_token_gets_only_401(app, engine):
    seen = run_schemathesis(app, {}, "^/v1/(gates|argo|decisions)", examples=5)
    assert {status for _, status in seen} == {401}, seen
    assert count(engine, gate_decisions) == 0
