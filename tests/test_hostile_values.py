"""Issue 19 §2: one bad value never sinks its batch. A value no column can hold (an integer beyond the
column's range, a string over its length or with a NUL) or a NaN/Infinity is quarantined with the field
named, the rest of the batch is stored, and SQLite and PostgreSQL end with the same rows; over HTTP the
answer is 422 (never 503, which senders retry forever), from `gatewatch ingest` exit 1."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from collector import ingest
from collector.column_limits import misfit
from collector.config import config_from_mapping
from collector.db import create_store_engine, dispose_engines, upgrade
from collector.models import changes, metadata, raw_events
from collector.webhooks import create_app
from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_store_url, dump_projections
from tests.test_webhooks import SECRETS, sign

CHANGE = '{"type":"change","id":"c-bad","service":"api","committed_at":"2024-05-01T10:00:00Z"'
# (case, the bad line, what its quarantine reason must say)
CASES = [
    ("int beyond 64 bits", CHANGE + ',"pr":1180591620717411303424}', "field 'pr': expected an integer from"),
    ("int beyond 32 bits", CHANGE + ',"pr":3000000000}', "field 'pr': expected an integer from"),
    ("negative int beyond 64 bits", CHANGE + ',"pr":-99999999999999999999}', "field 'pr': expected an integer"),
    ("id over 255 chars", CHANGE.replace('"c-bad"', json.dumps("c" * 256)) + "}", "field 'id': expected a string of"),
    ("service over 255", CHANGE.replace('"api"', json.dumps("s" * 300)) + "}", "field 'service': expected a string"),
    ("NUL in service", CHANGE.replace('"api"', '"a\\u0000pi"') + "}", "field 'service': expected a string without NUL"),
    ("NUL in id", CHANGE.replace('"c-bad"', '"c\\u0000bad"') + "}", "field 'id': expected a string without NUL"),
    ("NaN in a count", CHANGE + ',"pr":NaN}', "field 'pr': expected a finite number"),
    ("Infinity elsewhere", CHANGE + ',"extra":{"scores":[1.5,Infinity]}}', "field 'extra.scores.1': expected a finite"),
    ("-Infinity", CHANGE + ',"duration":-Infinity}', "field 'duration': expected a finite number"),
    ("float overflow", CHANGE + ',"pr":1e999}', "field 'pr': expected a finite number"),
]
IDS = [case[0] for case in CASES]


def good_lines(n: int = 100) -> list[str]:
    return [
        json.dumps(
            {
                "type": "change",
                "id": f"c{i}",
                "service": "api",
                "committed_at": f"2024-05-01T10:{i % 60:02d}:00Z",
                "pr": i,
            }
        )
        for i in range(n)
    ]


@pytest.fixture
def stores(tmp_path):
    """A migrated SQLite store and a migrated PostgreSQL store, to compare what each ends with."""
    if not POSTGRES_URL:
        pytest.skip("GATEWATCH_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_store_url()
    urls = {"sqlite": f"sqlite:///{tmp_path / 'store.db'}", "postgresql": url}
    engines = {name: create_store_engine(u) for name, u in urls.items()}
    for engine in engines.values():
        upgrade(engine)
    try:
        yield urls, engines
    finally:
        for engine in engines.values():
            engine.dispose()
        dispose_engines()
        _drop_schema(schema)


def stored(engine) -> dict:
    """What a store holds, without what differs by nature between stores (serial ids, receive times)."""
    with engine.connect() as conn:
        raw = [
            (r.source, r.kind, r.dedupe_key, r.payload, r.status, r.error)
            for r in conn.execute(select(raw_events).order_by(raw_events.c.dedupe_key))
        ]
    return {"raw_events": raw, **dump_projections(engine)}


def quarantined(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(raw_events.c.payload, raw_events.c.error).where(raw_events.c.status != "ok")).all()


@pytest.mark.postgres
@pytest.mark.parametrize(("case", "bad", "reason"), CASES, ids=IDS)
def test_cli_one_bad_line_among_100_is_quarantined_alone_alike_on_both_stores(stores, tmp_path, case, bad, reason):
    from gatewatch.cli import cli

    lines = good_lines()
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join([*lines[:50], bad, *lines[50:]]) + "\n")
    urls, engines = stores
    for url in urls.values():
        result = CliRunner().invoke(cli, ["--db", url, "ingest", str(path), "--json"])
        assert result.exit_code == 1, result.output  # documented: 1 = something quarantined (still archived)
        summary = json.loads(result.stdout)
        assert (summary["stored"], summary["quarantined"]) == (100, 1)
        (entry,) = summary["quarantine"]
        assert entry["origin"] == f"{path}:51" and reason in entry["error"], entry
    assert stored(engines["sqlite"]) == stored(engines["postgresql"])
    assert len(stored(engines["sqlite"])["changes"]) == 100
    (row,) = quarantined(engines["postgresql"])
    assert row.payload == bad  # archived exactly as received


def test_installed_command_stores_the_good_lines_of_a_file_with_every_kind_of_bad_one(store_url, tmp_path, gatewatch):
    lines = good_lines()
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines[:40] + [bad for _, bad, _ in CASES] + lines[40:]) + "\n")
    res = gatewatch("--db", store_url, "ingest", str(path), "--json")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    summary = json.loads(res.stdout)
    assert (summary["stored"], summary["quarantined"]) == (100, len(CASES))
    assert [q["origin"] for q in summary["quarantine"]] == [f"{path}:{41 + i}" for i in range(len(CASES))]
    for (_, _, reason), entry in zip(CASES, summary["quarantine"], strict=True):
        assert reason in entry["error"]


def post_events(client: TestClient, body: str):
    return client.post("/events", content=body.encode(), headers={"Authorization": "Bearer ev-t0ken"})


def app_client(engine) -> TestClient:
    config = config_from_mapping({"webhooks": SECRETS}, environ={})
    return TestClient(create_app(engine, config))


@pytest.mark.postgres
@pytest.mark.parametrize(("case", "bad", "reason"), CASES, ids=IDS)
def test_http_bad_value_is_422_with_the_field_and_the_rest_of_the_body_is_stored(stores, case, bad, reason):
    _, engines = stores
    answers = {}
    for name, engine in engines.items():
        with app_client(engine) as client:
            res = post_events(client, bad)
            assert res.status_code == 422, res.text
            assert reason in res.json()["detail"][0]
            res = post_events(client, "\n".join([*good_lines(3), bad[:-1] + ',"again":true}', *good_lines(5)[3:]]))
            assert res.status_code == 422, res.text
            answers[name] = res.json()
            assert (answers[name]["stored"], answers[name]["quarantined"]) == (5, 1)
    assert answers["sqlite"] == answers["postgresql"]
    assert stored(engines["sqlite"]) == stored(engines["postgresql"])


GITHUB_CASES = [
    ("pull_request.closed.json", "pull_request", ("pull_request", "number"), 1180591620717411303424),
    ("pull_request.closed.json", "pull_request", ("pull_request", "number"), float("nan")),
    ("workflow_run.completed.json", "workflow_run", ("workflow_run", "run_attempt"), 2**63),
    ("workflow_run.completed.json", "workflow_run", ("repository", "full_name"), "org/" + "r" * 300),
    ("workflow_run.completed.json", "workflow_run", ("workflow_run", "head_branch"), "main\x00"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("name", "event", "path", "value"), GITHUB_CASES)
def test_github_webhook_with_a_value_no_column_holds_is_422_naming_the_field(stores, name, event, path, value):
    from tests.conftest import fixture_path

    payload = json.loads(fixture_path(f"github/{name}").read_text())
    if event == "pull_request":  # a merged pull request is a change
        payload["pull_request"].update(merged=True, merged_at="2024-05-01T10:00:00Z")
    payload[path[0]][path[1]] = value
    body = json.dumps(payload).encode()
    _, engines = stores
    for engine in engines.values():
        with app_client(engine) as client:
            headers = {"X-GitHub-Event": event, "X-Hub-Signature-256": "sha256=" + sign(SECRETS["github_secret"], body)}
            res = client.post("/webhooks/github", content=body, headers=headers)
            assert res.status_code == 422, res.text
            assert f"field '{'.'.join(path)}'" in res.json()["detail"][0]
            (row,) = quarantined(engine)
            assert row.payload == body.decode()
    assert stored(engines["sqlite"]) == stored(engines["postgresql"])


def test_a_value_the_checks_miss_is_isolated_by_the_store_and_quarantined_with_its_message(engine, config, monkeypatch):
    """The safety net: should a value reach the store that it refuses, only its payload is quarantined."""
    monkeypatch.setattr(ingest, "_check_fits", lambda upd, payload: None)
    bad = [CASES[0][1], CASES[5][1].replace("c-bad", "c-nul")]
    lines = good_lines(10)
    envelopes = [ingest.Envelope(text, origin=f"t:{i}") for i, text in enumerate([*lines[:5], *bad, *lines[5:]], 1)]
    summary = ingest.ingest(engine, envelopes, config)
    refused = {q.origin: q.error for q in summary.quarantined}
    if engine.dialect.name == "sqlite":  # SQLite takes the NUL and the 64-bit overflow fails in the driver
        assert summary.stored == 11 and list(refused) == ["t:6"]
    else:
        assert summary.stored == 10 and list(refused) == ["t:6", "t:7"]
        assert "NUL" in refused["t:7"]
    assert refused["t:6"].startswith("the store refused this payload (")
    assert "[SQL" not in refused["t:6"] and "\n" not in refused["t:6"]
    with engine.connect() as conn:
        assert conn.execute(select(changes.c.id).where(changes.c.id.like("c%"))).scalars().all() == sorted(
            [f"c{i}" for i in range(10)] + (["c-nul"] if engine.dialect.name == "sqlite" else [])
        )
    assert {r.error for r in quarantined(engine)} == set(refused.values())


def test_a_race_on_the_payload_by_payload_path_is_still_retried(engine, config, monkeypatch):
    """_store_each re-raises a race (not a bad value) so `store` retries it rather than quarantining."""
    from sqlalchemy.exc import IntegrityError

    calls = []
    real = ingest._store_each

    def flaky(eng, batch):
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: raw_events.dedupe_key"))
        return real(eng, batch)

    monkeypatch.setattr(ingest, "_check_fits", lambda upd, payload: None)
    monkeypatch.setattr(ingest, "_store_each", flaky)
    summary = ingest.ingest(engine, [ingest.Envelope(CASES[0][1]), ingest.Envelope(good_lines(1)[0])], config)
    assert len(calls) == 2 and summary.stored == 1 and len(summary.quarantined) == 1


def test_every_column_type_is_one_the_limits_understand():
    """The check reads the table definitions; a column of a type it does not know would go unchecked."""
    from sqlalchemy import Boolean, DateTime, Float, Integer, LargeBinary, String

    for table in metadata.tables.values():
        for column in table.columns:
            kind = getattr(column.type, "impl", column.type)
            assert isinstance(kind, (String, Integer, Float, Boolean, DateTime, LargeBinary)), (table, column)


def test_misfit_reads_lengths_and_ranges_from_the_columns():
    assert misfit(changes.c.pr, 2**31 - 1) is None
    assert misfit(changes.c.pr, 2**31) == "an integer from -2147483648 to 2147483647"
    assert misfit(changes.c.pr, -(2**31)) is None
    assert misfit(changes.c.service, "s" * 255) is None
    assert misfit(changes.c.service, "s" * 256) == "a string of at most 255 characters"
    assert misfit(changes.c.title, "t" * 100_000) is None  # Text has no length
    assert misfit(changes.c.title, "a\x00") == "a string without NUL (U+0000) characters"
    assert misfit(raw_events.c.kind, "k" * 65) == "a string of at most 64 characters"
    assert misfit(changes.c.pr, True) is None and misfit(changes.c.pr, None) is None
