"""No secret ever leaks: webhook-action and notification secrets (a header value with a newline, a URL
with a space, a receiver echoing the request in its reason phrase) and credentials in Prometheus and
store URLs are absent from logs (tracebacks included), CLI output, HTTP answers and stored rows, on
SQLite and PostgreSQL; real HTTP receivers on 127.0.0.1 and the installed command."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from collector.config import config_from_mapping
from collector.db import create_store_engine
from collector.models import canary_runs
from collector.redaction import mask_url, remember, scrub
from collector.telemetry import prometheus
from collector.webhooks import create_app
from gates.notify import Notifier
from gates.service import load_policies
from gates.views import build_router
from tests import prometheus_server
from tests.prometheus_server import CANARY_CONFIG

from .test_gate_actions import FROZEN, Hook, context, evaluate, gate, stored_row
from .test_notify import AT, NOTE, rows, settings

TOKEN = "gate-t0ken-for-secret-tests"


def nowhere(secret: str, *texts: str) -> None:
    """`secret`, and its form without surrounding whitespace, appear in none of `texts`."""
    for form in {secret, secret.strip()}:
        for text in texts:
            assert form not in text, f"{form!r} leaked in {text[:500]!r}"


class Echo:
    """A receiver on 127.0.0.1 that answers `status` with a reason phrase echoing the request's path and
    Authorization header (as a careless or hostile server may)."""

    def __init__(self, status: int = 400):
        self.requests: list[dict] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                echo.requests.append({"path": self.path, "headers": dict(self.headers)})
                self.send_response(status, f"bad {self.path} {self.headers.get('Authorization')}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Echo:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the masking and scrubbing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql+psycopg://gw:Sekr3t-pw@db:5432/gw", "postgresql+psycopg://gw:***@db:5432/gw"),
        ("postgresql://gw:Sek@r3t@db/gw", "postgresql://gw:***@db/gw"),  # an unescaped @ in the password
        ("postgresql://gw:Sek/r3t@db/gw", "postgresql://gw:***@db/gw"),  # an unescaped / in the password
        ("postgresql://gw@db/gw?password=Sekr3t&sslmode=require", "postgresql://gw@db/gw?password=***&sslmode=require"),
        ("http://prom:Sekr3t@prom:9090", "http://prom:***@prom:9090"),
        ("https://prom/x?access_token=Sekr3t&step=1", "https://prom/x?access_token=***&step=1"),
        ("sqlite:///gatewatch.db", "sqlite:///gatewatch.db"),
        ("http://prom:9090/select/0", "http://prom:9090/select/0"),
    ],
)
def test_mask_url_hides_passwords_and_token_parameters(url, shown):
    assert mask_url(url) == shown


def test_scrub_replaces_every_form_of_a_remembered_secret():
    remember("scrub-Me-0451 two\n", "${GW_TEST_SCRUB}")
    text = "a scrub-Me-0451 two\n b 'scrub-Me-0451 two\\n' c scrub-Me-0451%20two d scrub-Me-0451 two"
    assert scrub(text) == "a ${GW_TEST_SCRUB} b '${GW_TEST_SCRUB}' c ${GW_TEST_SCRUB} d ${GW_TEST_SCRUB}"
    assert scrub("x abcdef y", [("abcdef", "***")]) == "x *** y"


# --- webhook actions ---------------------------------------------------------------------------------------


def test_a_secret_with_a_trailing_newline_is_stripped_and_sent(engine, caplog, monkeypatch):
    """A secret mounted from a file ends with a newline: it is sent without it, and shown nowhere."""
    secret = "tok-trailing-4242"
    monkeypatch.setenv("GW_TEST_HOOK_SECRET", secret + "\n")
    with Hook() as hook, caplog.at_level(logging.DEBUG):
        headers = {"Authorization": "Bearer ${GW_TEST_HOOK_SECRET}"}
        stored = evaluate(gate([{"webhook": {"url": hook.url, "headers": headers}}]), context(engine), "nl")
    assert stored.actions[0]["status"] == "ok", stored.actions
    assert hook.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    nowhere(secret, caplog.text, json.dumps(stored.actions), json.dumps(stored_row(engine, stored.id), default=str))


def test_a_secret_with_an_inner_line_break_is_refused_naming_the_variable(engine, caplog, monkeypatch):
    secret = "tok-inner-4242\nX-Injected: yes"
    monkeypatch.setenv("GW_TEST_HOOK_SECRET", secret)
    with Hook() as hook, caplog.at_level(logging.DEBUG):
        headers = {"Authorization": "Bearer ${GW_TEST_HOOK_SECRET}"}
        stored = evaluate(gate([{"webhook": {"url": hook.url, "headers": headers}}]), context(engine), "inner")
    (outcome,) = stored.actions
    assert outcome["status"] == "failed" and outcome["attempts"] == 0 and hook.requests == []
    assert "GW_TEST_HOOK_SECRET holds a line break" in outcome["error"] and "nothing was sent" in outcome["error"]
    assert "Traceback" not in caplog.text
    row = json.dumps(stored_row(engine, stored.id), default=str)
    for part in ("tok-inner-4242", "X-Injected: yes"):
        nowhere(part, caplog.text, json.dumps(stored.actions), row)


def test_a_url_variable_with_a_space_is_refused_without_showing_it(engine, caplog, monkeypatch):
    with Hook() as hook, caplog.at_level(logging.DEBUG):
        monkeypatch.setenv("GW_TEST_HOOK_PATH", "sec ret-path-7731")
        stored = evaluate(gate([{"webhook": {"url": hook.url + "/${GW_TEST_HOOK_PATH}"}}]), context(engine), "space")
    (outcome,) = stored.actions
    assert outcome["status"] == "failed" and hook.requests == []
    assert outcome["error"] == (
        f"webhook url {hook.url}/${{GW_TEST_HOOK_PATH}} holds whitespace: percent-encode it (%20); nothing was sent"
    )
    row = json.dumps(stored_row(engine, stored.id), default=str)
    for part in ("sec ret-path-7731", "ret-path-7731"):
        nowhere(part, caplog.text, json.dumps(stored.actions), row)


def test_credentials_in_a_webhook_url_are_refused_without_showing_them(engine, monkeypatch):
    with Hook() as hook:
        monkeypatch.setenv("GW_TEST_HOOK_CRED", "user:Url-pw-6161")
        url = hook.url.replace("http://", "http://${GW_TEST_HOOK_CRED}@")
        stored = evaluate(gate([{"webhook": {"url": url}}]), context(engine), "userinfo")
    (outcome,) = stored.actions
    assert outcome["status"] == "failed" and "holds credentials" in outcome["error"] and hook.requests == []
    nowhere("Url-pw-6161", json.dumps(stored.actions), json.dumps(stored_row(engine, stored.id), default=str))


def test_a_receiver_echoing_the_path_and_header_in_its_reason_phrase_leaks_nothing(engine, caplog, monkeypatch):
    path_secret, header_secret = "path-tok-5150", "hdr-tok-8086"
    monkeypatch.setenv("GW_TEST_HOOK_TOKEN", header_secret)
    with Echo() as echo, caplog.at_level(logging.DEBUG):
        monkeypatch.setenv("GW_TEST_HOOK_PATH", path_secret)
        headers = {"Authorization": "Bearer ${GW_TEST_HOOK_TOKEN}"}
        action = {"url": echo.url + "/${GW_TEST_HOOK_PATH}", "headers": headers}
        stored = evaluate(gate([{"webhook": action}]), context(engine), "e")
    (outcome,) = stored.actions
    assert echo.requests[0]["path"] == f"/hook/{path_secret}"  # the receiver did echo them ...
    assert outcome["status"] == "failed" and outcome["error"].startswith("HTTP 400 bad ")
    row = json.dumps(stored_row(engine, stored.id), default=str)
    for secret in (path_secret, header_secret):  # ... and neither is shown
        nowhere(secret, caplog.text, json.dumps(stored.actions), row)


def test_an_unexpected_error_quoting_a_secret_is_logged_as_a_scrubbed_traceback(engine, caplog, monkeypatch):
    from gates import actions

    monkeypatch.setenv("GW_TEST_HOOK_SECRET", "boom-tok-2468")

    def raises(action, stored, ctx, clients):
        raise RuntimeError(f"unexpected, with {actions._expand('${GW_TEST_HOOK_SECRET}', 'url')} in its text")

    monkeypatch.setitem(actions.RUNNERS, "webhook", raises)
    with caplog.at_level(logging.DEBUG):
        stored = evaluate(gate([{"webhook": {"url": "http://127.0.0.1:9/hook"}}]), context(engine), "boom")
    (outcome,) = stored.actions
    assert outcome["error"] == "RuntimeError: unexpected, with ${GW_TEST_HOOK_SECRET} in its text"
    assert "Traceback" in caplog.text and "RuntimeError: unexpected, with ${GW_TEST_HOOK_SECRET}" in caplog.text
    nowhere("boom-tok-2468", caplog.text, json.dumps(stored_row(engine, stored.id), default=str))


def test_the_gate_api_answer_and_row_hold_no_secret(engine, tmp_path, monkeypatch, caplog):
    secret = "api-tok-inner-3131\nnext"
    monkeypatch.setenv("GW_TEST_HOOK_SECRET", secret)
    with Echo() as echo, caplog.at_level(logging.DEBUG):
        folder = tmp_path / "gates"
        folder.mkdir()
        policy = {
            "name": "checkout-prod",
            "checks": [{"deploy_window": FROZEN, "on_fail": "rollback"}],
            "actions": [
                {"webhook": {"url": echo.url, "headers": {"Authorization": "Bearer ${GW_TEST_HOOK_SECRET}"}}},
                {"webhook": {"url": echo.url, "headers": {"Authorization": "Bearer api-literal-2929"}}},
            ],
        }
        (folder / "checkout-prod.yaml").write_text(yaml.safe_dump(policy))
        config = config_from_mapping({"gates": {"token": TOKEN}}, environ={})
        app = create_app(engine, config, routers=[build_router(engine, config, load_policies(folder))])
        with TestClient(app) as client:
            res = client.post(
                "/v1/gates/checkout-prod/evaluate", json={"key": "api-1"}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
    assert res.status_code == 200, res.text
    actions = res.json()["actions"]
    assert [a["status"] for a in actions] == ["failed", "failed"] and len(echo.requests) == 1
    assert "GW_TEST_HOOK_SECRET" in actions[0]["error"] and actions[1]["error"].startswith("HTTP 400")
    row = json.dumps(stored_row(engine, res.json()["id"]), default=str)
    for part in ("api-tok-inner-3131", "api-literal-2929"):
        nowhere(part, res.text, row, caplog.text)


def test_the_cli_shows_no_secret_and_no_traceback(tmp_path, store_url, gatewatch):
    with Echo() as echo:
        policy = {
            "name": "checkout-prod",
            "checks": [{"deploy_window": FROZEN, "on_fail": "rollback"}],
            "actions": [
                {"webhook": {"url": echo.url, "headers": {"Authorization": "Bearer ${GW_TEST_HOOK_SECRET}"}}},
                {"webhook": {"url": echo.url + "/${GW_TEST_HOOK_PATH}"}},
            ],
        }
        (tmp_path / "gate.yaml").write_text(yaml.safe_dump(policy))
        env = {"GW_TEST_HOOK_SECRET": "cli-tok-1212\n", "GW_TEST_HOOK_PATH": "cli-path-3434"}
        args = ("--db", store_url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"))
        res = gatewatch(*args, "--key", "cli-1", env=env)
        as_json = gatewatch(*args, "--key", "cli-2", "--json", env=env)
    assert res.returncode == 1 == as_json.returncode, res.stderr  # the rollback decision's exit code
    assert res.stderr.count("ACTION FAILED") == 2 and "HTTP 400" in res.stderr
    assert echo.requests[0]["headers"]["Authorization"] == "Bearer cli-tok-1212"  # sent stripped
    assert "Traceback" not in res.stderr + as_json.stderr
    assert [a["status"] for a in json.loads(as_json.stdout)["actions"]] == ["failed", "failed"]
    engine = create_store_engine(store_url)
    try:
        from collector.models import gate_decisions

        with engine.connect() as conn:
            stored = json.dumps([dict(r) for r in conn.execute(select(gate_decisions)).mappings()], default=str)
    finally:
        engine.dispose()
    for secret in ("cli-tok-1212", "cli-path-3434"):
        nowhere(secret, res.stdout, res.stderr, as_json.stdout, as_json.stderr, stored)


# --- notifications -----------------------------------------------------------------------------------------


def test_notification_secrets_are_nowhere(engine, caplog, monkeypatch):
    monkeypatch.setenv("GW_TEST_NOTE_SECRET", "note-tok-inner-7070\nnext")
    monkeypatch.setenv("GW_TEST_NOTE_TOKEN", "note-tok-9797")
    with Echo() as echo, caplog.at_level(logging.DEBUG):
        monkeypatch.setenv("GW_TEST_NOTE_URL", f"{echo.url}/note-path-6464")
        monkeypatch.setenv("GW_TEST_NOTE_SPACE", f"{echo.url}/note space-5353")
        channels = {
            "inner": {"type": "webhook", "url": echo.url, "headers": {"X-Token": "${GW_TEST_NOTE_SECRET}"}},
            "echoed": {
                "type": "webhook",
                "url": "${GW_TEST_NOTE_URL}",
                "headers": {"Authorization": "Bearer ${GW_TEST_NOTE_TOKEN}"},
            },
            "space": {"type": "slack", "url": "${GW_TEST_NOTE_SPACE}"},
        }
        sent = Notifier(engine, settings(channels, routes=[{"channels": list(channels)}])).send(NOTE, now=AT)
    assert sorted(r["status"] for r in sent) == ["failed"] * 3 and len(echo.requests) == 1
    errors = {r["channel"]: r["error"] for r in sent}
    assert "GW_TEST_NOTE_SECRET holds a line break" in errors["inner"]
    assert "${GW_TEST_NOTE_SPACE} holds whitespace" in errors["space"]
    stored = json.dumps(rows(engine), default=str)
    for secret in ("note-tok-inner-7070", "note-tok-9797", "note-path-6464", "note space-5353", "space-5353"):
        nowhere(secret, caplog.text, stored)


# --- Prometheus and store URLs ----------------------------------------------------------------------------


def test_a_prometheus_password_or_token_is_not_in_errors_or_logs(caplog):
    from analysis.canary import config_from_mapping as canary_config

    port = prometheus_server.free_port()
    with caplog.at_level(logging.DEBUG):
        for url in (f"http://gate:Prom-pw-8080@127.0.0.1:{port}", f"http://127.0.0.1:{port}/?token=Prom-tok-9090"):
            got = prometheus.fetch(
                canary_config(CANARY_CONFIG), url, 'version="v1"', 'version="v2"', AT, AT.replace(minute=5)
            )
            assert got.unavailable and all("127.0.0.1" in e for e in got.errors.values())
            nowhere("Prom-pw-8080", json.dumps(got.errors))
            nowhere("Prom-tok-9090", json.dumps(got.errors))
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("collector", "gates", "gatewatch")))
    assert "canary metric" in ours
    nowhere("Prom-pw-8080", caplog.text, ours)
    nowhere("Prom-tok-9090", ours)  # urllib3's own DEBUG/retry lines quote the request's query string


def test_a_prometheus_password_is_not_printed_or_stored_by_canary_run(tmp_path, store_url, gatewatch):
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(CANARY_CONFIG))
    url = f"http://gate:Prom-pw-4711@127.0.0.1:{prometheus_server.free_port()}"
    args = ["--db", store_url, "-v", "canary", "run", "--config", str(tmp_path / "canary.yaml")]
    args += ["--start", "30m", "--baseline", 'version="v1"', "--canary", 'version="v2"', "--prometheus", url]
    res = gatewatch(*args)
    as_json = gatewatch(*args, "--json")
    assert res.returncode == 3 == as_json.returncode, res.stderr  # nodata
    assert "gate:***@127.0.0.1" in res.stdout + res.stderr
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            stored = json.dumps([dict(r) for r in conn.execute(select(canary_runs)).mappings()], default=str)
    finally:
        engine.dispose()
    assert "gate:***@127.0.0.1" in stored
    nowhere("Prom-pw-4711", res.stdout, res.stderr, as_json.stdout, as_json.stderr, stored)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://gw:Db-pw-1234@127.0.0.1:1/none",
        "postgresql://gw@127.0.0.1:1/none?password=Db-pw-1234",
        "postgresql://gw:Db-pw-1234@127.0.0.1:notaport/none",
        "not a url Db-pw-1234",
    ],
)
def test_a_store_password_is_not_in_cli_errors(url, gatewatch):
    for command in (["db", "current"], ["dora"]):
        res = gatewatch("--db", url, *command)
        assert res.returncode != 0 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
        nowhere("Db-pw-1234", res.stdout, res.stderr)


def test_a_store_password_is_masked_where_the_store_is_shown(store_url, gatewatch):
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite URLs hold no password")
    with_password = store_url.replace("://postgres@", "://postgres:Db-pw-5678@")
    assert with_password != store_url
    res = gatewatch("--db", with_password, "db", "current")
    nowhere("Db-pw-5678", res.stdout, res.stderr)
    assert "postgres:***@" in res.stdout + res.stderr


def test_healthz_shows_neither_the_store_url_nor_the_drivers_error(caplog):
    dead = create_store_engine("postgresql+psycopg://gw:Health-pw-77@127.0.0.1:1/none")
    with caplog.at_level(logging.DEBUG), TestClient(create_app(dead, config_from_mapping({}, environ={}))) as c:
        res = c.get("/healthz")
    assert res.status_code == 503 and res.json() == {"status": "error", "store": "unreachable"}
    assert "store unreachable at postgresql+psycopg://gw:***@127.0.0.1:1/none" in caplog.text  # for the operator
    nowhere("Health-pw-77", res.text, caplog.text)
