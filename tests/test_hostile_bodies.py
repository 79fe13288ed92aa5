"""Hostile bodies (tests/fixtures/hostile/) on every receiving endpoint and through `gatewatch ingest`:
never a 5xx or a traceback, every authenticated body archived as quarantined with its exact bytes, and a
non-ASCII signature or token header is 401."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from collector import payload_text
from collector.config import config_from_mapping
from collector.models import raw_events
from collector.webhooks import create_app
from gatewatch import api
from gatewatch.cli import cli
from gatewatch.errors import GatewatchError
from tests.conftest import fixture_path

SECRETS = {"github_secret": "gh-s3cret", "gitlab_token": "gl-t0ken", "pagerduty_secret": "pd-s3cret"}
CONFIG = config_from_mapping(
    {"webhooks": {**SECRETS, "events_token": "ev-t0ken", "max_body_bytes": 1024 * 1024}, "metrics": {"token": "m"}},
    environ={},
)
CORPUS = {p.name: p.read_bytes() for p in sorted(fixture_path("hostile").iterdir()) if p.suffix in (".json", ".txt")}


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# How each receiving endpoint authenticates a body (the test below checks this lists every one).
AUTH = {
    "/webhooks/github": lambda body: {"X-Hub-Signature-256": "sha256=" + sign("gh-s3cret", body)},
    "/webhooks/gitlab": lambda body: {"X-Gitlab-Token": "gl-t0ken"},
    "/webhooks/pagerduty": lambda body: {"X-PagerDuty-Signature": "v1=" + sign("pd-s3cret", body)},
    "/events": lambda body: {"Authorization": "Bearer ev-t0ken"},
}
# What the reason names, whatever the endpoint.
REASONS = {
    "deep-array.json": "JSON nested deeper than 512 levels",
    "deep-object.json": "JSON nested deeper than 512 levels",
    "invalid-utf8.json": "not valid UTF-8 (byte 0xff at offset 27)",
    "utf16-bom.json": "not valid UTF-8 (byte 0xff at offset 0)",
    "lone-surrogate.json": "a string holds a lone surrogate \\ud800",
    "nul-bytes.json": "expected JSON (Invalid control character",
    "huge-integer.json": "Exceeds the limit (4300 digits)",
    "utf8-bom.json": "Unexpected UTF-8 BOM",
    "empty.json": "body: empty",
    "whitespace.json": "body: empty",
    "one-byte.json": "expected JSON",
    "truncated.json": "expected JSON",
    "null.json": "expected a JSON object, got null",
    "number.json": "expected a JSON object, got a number",
    "string.json": "expected a JSON object, got a string",
    "true.json": "expected a JSON object, got a boolean",
}


def archived(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(raw_events).order_by(raw_events.c.id)).all()


def test_the_corpus_covers_every_receiving_route(engine):
    paths = create_app(engine, CONFIG).openapi()["paths"]
    receiving = {path for path, operations in paths.items() if "post" in operations}
    assert receiving == set(AUTH)
    assert len(CORPUS) >= 22 and set(REASONS) <= set(CORPUS)


@pytest.mark.parametrize("path", sorted(AUTH))
def test_every_hostile_body_is_answered_422_and_archived_with_its_exact_bytes(engine, path):
    with TestClient(create_app(engine, CONFIG), raise_server_exceptions=False) as client:
        for i, (name, body) in enumerate(CORPUS.items(), 1):
            res = client.post(path, content=body, headers=AUTH[path](body))
            assert res.status_code == 422, (name, res.status_code, res.text[:300])
            rows = archived(engine)
            assert len(rows) == i, name  # one more row per request
            row = rows[-1]
            assert row.status == "quarantined" and row.error, name
            assert payload_text.payload_bytes(payload_text.from_archive(row.payload)) == body, name
            assert res.json()["detail"] == [f"{res.json()['quarantine'][0]['origin']}: {row.error}"]
            if name in REASONS:
                assert REASONS[name] in row.error, (name, row.error)
    reasons = {row.payload: row.error for row in archived(engine)}
    if path == "/events":  # the bulk endpoint says why a body holds no event
        assert reasons["hello"].startswith("body: neither JSON nor CSV (a CSV file needs a header row")
        assert reasons["[]"] == "body: holds no event (an empty JSON list or CSV rows)"
    # A replay reads every archived form back and changes nothing.
    before = archived(engine)
    summary = api.replay(engine, CONFIG)
    assert (summary.events, summary.still_quarantined, summary.recovered) == (len(CORPUS), len(CORPUS), 0)
    assert archived(engine) == before


@pytest.mark.parametrize(
    ("path", "header", "value"),
    [
        ("/webhooks/github", "X-Hub-Signature-256", "sha256=é".encode()),
        ("/webhooks/github", "X-Hub-Signature-256", b"sha256=\xe9"),
        ("/webhooks/pagerduty", "X-PagerDuty-Signature", "v1=é, v1=ü".encode()),
        ("/webhooks/gitlab", "X-Gitlab-Token", "gl-t0kén".encode()),
        ("/events", "Authorization", "Bearer ev-t0kén".encode()),
    ],
)
def test_a_non_ascii_signature_or_token_is_401_and_archives_nothing(engine, path, header, value):
    with TestClient(create_app(engine, CONFIG), raise_server_exceptions=False) as client:
        res = client.post(path, content=b"{}", headers={header: value})
        assert res.status_code == 401, res.text
        assert client.get("/metrics", headers={"Authorization": "Bearer é".encode()}).status_code == 401
    assert archived(engine) == []


def test_payload_text_archive_form_round_trips_and_is_never_ambiguous():
    for text in ["{}", "héllo", "a\x00b", "base64:aGk=", "\udcff\udcfe{", "", " "]:
        stored = payload_text.to_archive(text)
        stored.encode("utf-8")  # the store can hold it as text
        assert "\x00" not in stored and payload_text.from_archive(stored) == text
    assert payload_text.to_archive('{"a":"é"}') == '{"a":"é"}'  # valid UTF-8 is kept as is, readable
    assert payload_text.to_archive("a\x00b") == "base64:YQBi"


def test_nesting_depth_is_counted_outside_strings_only():
    assert not payload_text.too_deep("[" * 512 + "]" * 512)
    assert payload_text.too_deep("[" * 513 + "]" * 513)
    assert not payload_text.too_deep(json.dumps({"a": "[" * 10_000, "b": '\\"[{' * 1000}))
    assert payload_text.loads("[" * 512 + "]" * 512) is not None
    with pytest.raises(ValueError, match="nested deeper than 512"):
        payload_text.loads('{"a": "[", "b": ' + "[" * 600)


CRASHED_THE_CLI = ["deep-array.json", "deep-object.json", "invalid-utf8.json", "lone-surrogate.json", "nul-bytes.json"]


def test_gatewatch_ingest_quarantines_what_used_to_crash_it(store_url, tmp_path, gatewatch):
    files = []
    for name in CRASHED_THE_CLI:
        shutil.copy(fixture_path(f"hostile/{name}"), tmp_path / name)
        files.append(str(tmp_path / name))
    res = gatewatch("--db", store_url, "ingest", *files, "--json")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    summary = json.loads(res.stdout)
    assert (summary["stored"], summary["quarantined"]) == (0, len(CRASHED_THE_CLI))
    errors = [q["error"] for q in summary["quarantine"]]
    for name, error in zip(CRASHED_THE_CLI, errors, strict=True):
        assert REASONS[name] in error, (name, error)
    engine = api.open_store(store_url)
    stored = [payload_text.payload_bytes(payload_text.from_archive(r.payload)) for r in archived(engine)]
    assert stored == [fixture_path(f"hostile/{name}").read_bytes() for name in CRASHED_THE_CLI]
    for command in (["replay"], ["quarantine"]):
        res = gatewatch("--db", store_url, *command)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (command, res.stderr)
    groups = json.loads(gatewatch("--db", store_url, "quarantine", "--json").stdout)
    heads = {example["head"] for group in groups for example in group["examples"]}
    assert '{"type":"deployment","id":"\ufffd\ufffd\ufffd","service":"api"}' in heads  # base64 form decoded
    assert '{"type":"deployment","id":"\x00"}\x00' in heads  # NUL bytes (valid UTF-8) as they are


def test_every_hostile_file_through_ingest_is_archived_or_refused_in_one_line(store_url, tmp_path):
    runner = CliRunner()
    for name in CORPUS:
        result = runner.invoke(cli, ["--db", store_url, "ingest", str(fixture_path(f"hostile/{name}"))])
        # A GatewatchError is what the installed command prints as one line with exit 2.
        assert result.exception is None or isinstance(result.exception, (SystemExit, GatewatchError)), (
            name,
            result.exception,
        )
        assert result.exit_code in (0, 1, 2) or isinstance(result.exception, GatewatchError), name


def test_invalid_utf8_on_stdin_is_quarantined_with_its_bytes(store_url):
    body = fixture_path("hostile/invalid-utf8.json").read_bytes()
    result = CliRunner().invoke(cli, ["--db", store_url, "ingest", "-"], input=body)
    assert result.exit_code == 1 and "not valid UTF-8 (byte 0xff at offset 27)" in result.output, result.output
    (row,) = archived(api.open_store(store_url))
    assert payload_text.payload_bytes(payload_text.from_archive(row.payload)) == body
