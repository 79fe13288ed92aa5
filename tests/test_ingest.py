"""The ingest path: dedupe, quarantine, replay and concurrent writers, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import multiprocessing

import pytest
from sqlalchemy import func, select

from collector import ingest
from collector.db import create_store_engine
from collector.models import raw_events
from collector.sources import generic
from tests.conftest import dump_projections, fixture_path

DEPLOY = {
    "type": "deployment",
    "id": "d1",
    "service": "api",
    "environment": "production",
    "status": "success",
    "started_at": "2024-05-01T10:00:00Z",
    "finished_at": "2024-05-01T10:10:00Z",
    "commits": ["abc1234"],
}
CHANGE = {"type": "change", "id": "abc1234", "service": "api", "committed_at": "2024-05-01T08:00:00Z"}


def raw_rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(raw_events).order_by(raw_events.c.id)).mappings().all()


def test_the_same_payload_twice_is_stored_once(engine, config):
    text = json.dumps(DEPLOY)
    reordered = json.dumps(dict(reversed(list(DEPLOY.items()))), indent=2)  # same content, other bytes
    first = ingest.ingest(engine, [ingest.Envelope(text), ingest.Envelope(text)], config)
    second = ingest.ingest(engine, [ingest.Envelope(reordered)], config)
    assert (first.stored, first.duplicates, second.stored, second.duplicates) == (1, 1, 0, 1)
    (row,) = raw_rows(engine)
    assert (row["source"], row["kind"], row["status"], row["payload"]) == ("generic", "deployment", "ok", text)
    assert row["dedupe_key"].startswith("generic:") and row["received_at"].tzinfo is not None
    assert len(dump_projections(engine)["deployments"]) == 1


def test_unparseable_and_unknown_payloads_are_quarantined_not_dropped(engine, config):
    bodies = ["{not json", "[1, 2]", json.dumps({"hello": "world"}), json.dumps(["a"])]
    summary = ingest.ingest(engine, [ingest.Envelope(b, origin=f"b{i}") for i, b in enumerate(bodies)], config)
    assert (summary.stored, len(summary.quarantined), summary.exit_code) == (0, 4, 1)
    errors = {q.origin: q.error for q in summary.quarantined}
    assert errors["b0"].startswith("body: expected JSON")
    assert errors["b1"] == "body: expected a JSON object, got an array"
    assert errors["b2"].startswith("unrecognised payload: expected an AWS EventBridge event (CodePipeline, CodeDeploy")
    rows = raw_rows(engine)
    assert [r["payload"] for r in rows] == bodies  # exactly as received
    assert {r["status"] for r in rows} == {"quarantined"}


def test_a_forced_source_that_does_not_match_is_quarantined(engine, config):
    summary = ingest.ingest(engine, [ingest.Envelope(json.dumps({"hello": 1}), source="generic")], config)
    (q,) = summary.quarantined
    assert q.source == "generic" and "not recognised as a generic payload" in q.error


def test_replay_rebuilds_the_same_rows(engine, config):
    ingest.ingest_payloads(
        engine,
        [CHANGE, DEPLOY, dict(DEPLOY, id="d2", status="rolled_back", finished_at="2024-05-02T00:00:00Z")],
        config,
    )
    before = dump_projections(engine)
    summary = ingest.replay(engine, config)
    assert summary.events == 3 and summary.recovered == 0
    assert dump_projections(engine) == before
    assert summary.rows["deployments"] == 2 and summary.rows["deployment_changes"] == 2


def test_replay_retries_quarantined_payloads_after_a_parser_fix(engine, config, monkeypatch):
    real = generic.normalise

    def broken(kind, payload, cfg):
        if kind == "deployment":
            raise KeyError("environment")  # a parser bug
        return real(kind, payload, cfg)

    monkeypatch.setattr(generic, "normalise", broken)
    summary = ingest.ingest_payloads(engine, [DEPLOY, CHANGE], config)
    (q,) = summary.quarantined
    assert "internal error in the generic normaliser (KeyError" in q.error
    assert dump_projections(engine)["deployments"] == []

    monkeypatch.setattr(generic, "normalise", real)  # the fix ships
    result = ingest.replay(engine, config)
    assert (result.recovered, result.still_quarantined) == (1, 0)
    assert {r["status"] for r in raw_rows(engine)} == {"ok"}
    assert [r["error"] for r in raw_rows(engine)] == [None, None]
    rebuilt = dump_projections(engine)

    fresh = create_store_engine(
        f"sqlite:///{engine.url.database}.fresh" if engine.dialect.name == "sqlite" else "sqlite://"
    )
    from collector.db import upgrade

    upgrade(fresh)
    ingest.ingest_payloads(fresh, [DEPLOY, CHANGE], config)
    assert rebuilt == dump_projections(fresh)  # the same rows as a first ingest with the fixed parser
    fresh.dispose()


def test_replay_quarantines_what_a_new_config_rejects_and_reports_it(engine, config, monkeypatch):
    ingest.ingest_payloads(engine, [DEPLOY], config)

    def strict(kind, payload, cfg):
        from gatewatch.errors import PayloadError

        raise PayloadError("environment", "a known environment", payload["environment"])

    monkeypatch.setattr(generic, "normalise", strict)
    result = ingest.replay(engine, config)
    assert result.newly_quarantined == 1
    (row,) = raw_rows(engine)
    assert row["status"] == "quarantined" and row["error"].startswith("field 'environment'")
    assert dump_projections(engine)["deployments"] == []


def test_read_stream_handles_blank_lines_and_reports_bad_lines_by_number(engine, config):
    text = "\n" + json.dumps(DEPLOY) + "\n\n{broken\n" + json.dumps(CHANGE) + "\n"
    summary = ingest.ingest(engine, ingest.read_stream(io.StringIO(text), "f.ndjson"), config)
    assert summary.stored == 2  # the broken line is counted once, as quarantined
    (q,) = summary.quarantined
    assert q.origin == "f.ndjson:4"


INCIDENT = {
    "type": "incident",
    "id": "inc-1",
    "service": "api",
    "opened_at": "2024-05-01T11:00:00Z",
    "status": "triggered",
}


def test_ndjson_whose_first_line_is_broken_is_still_read_line_by_line(engine, config):
    # A truncated first record (a log rotated mid-write): the valid records after it must reach the tables.
    text = '{"type": "deployment", "id": "d0", "serv\n' + "\n".join(json.dumps(r) for r in (DEPLOY, CHANGE, INCIDENT))
    summary = ingest.ingest(engine, ingest.read_stream(io.StringIO(text + "\n"), "f.ndjson"), config)
    assert (summary.stored, len(summary.quarantined), summary.duplicates) == (3, 1, 0)
    assert summary.to_dict()["by_source"] == {"generic": 3}  # the broken line is not also "stored"
    (q,) = summary.quarantined
    assert q.origin == "f.ndjson:1" and q.error.startswith("body: expected JSON")
    rows = dump_projections(engine)
    assert [d["id"] for d in rows["deployments"]] == ["d1"]
    assert [c["id"] for c in rows["changes"]] == ["abc1234"] and [i["id"] for i in rows["incidents"]] == ["inc-1"]
    assert [r["status"] for r in raw_rows(engine)] == ["quarantined", "ok", "ok", "ok"]


def test_a_broken_pretty_printed_object_stays_one_quarantined_payload(engine, config):
    # Lines of a pretty-printed document are not records: one payload, quarantined whole.
    text = json.dumps(DEPLOY, indent=2)[:-2] + "\n"  # its closing brace lost
    summary = ingest.ingest(engine, ingest.read_stream(io.StringIO(text), "f.json"), config)
    assert (summary.stored, len(summary.quarantined)) == (0, 1)
    assert summary.quarantined[0].origin == "f.json"
    assert [r["payload"] for r in raw_rows(engine)] == [text]


def _ingest_in_process(url: str, payloads: list, config) -> None:
    eng = create_store_engine(url)
    ingest.ingest_payloads(eng, payloads, config)
    eng.dispose()


def test_two_processes_ingesting_the_same_events_agree(engine, config, store_url):
    payloads = [dict(DEPLOY, id=f"d{i}", commits=[f"c{i:07d}"]) for i in range(300)]
    payloads += [dict(CHANGE, id=f"c{i:07d}") for i in range(300)]
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_ingest_in_process, args=(store_url, order, config)) for order in (payloads, payloads[::-1])
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(raw_events)).scalar_one() == 600
    rows = dump_projections(engine)
    assert len(rows["deployments"]) == 300 and len(rows["changes"]) == 300
    assert len(rows["deployment_changes"]) == 300


SENDERS = {
    "circleci.workflow-completed": "a CircleCI webhook",
    "jenkins.notification": "a Jenkins Notification plugin event",
    "buildkite.build-finished": "a Buildkite webhook",
    "opsgenie.alert-create": "an Opsgenie webhook",
    "argocd.app-sync-succeeded": "an Argo CD notification",
}


@pytest.mark.parametrize("name", SENDERS)
def test_a_sender_without_an_adapter_is_named_not_reported_as_a_broken_generic_record(engine, config, name):
    text = fixture_path(f"senders/{name}.json").read_text()
    summary = ingest.ingest(engine, ingest.read_stream(io.StringIO(text), f"{name}.json"), config)
    (q,) = summary.quarantined
    assert (q.source, q.kind, summary.stored) == ("unknown", "unknown", 0)
    assert q.error.startswith(f"unrecognised payload: looks like {SENDERS[name]}; Gatewatch has no adapter")
    assert [r["payload"] for r in raw_rows(engine)] == [text]  # archived as received


def test_an_object_with_an_unknown_type_and_no_generic_field_is_unrecognised(engine, config):
    summary = ingest.ingest(engine, [ingest.Envelope(json.dumps({"type": "release", "name": "v2"}))], config)
    (q,) = summary.quarantined
    assert q.error.startswith("unrecognised payload: expected an AWS EventBridge event (CodePipeline, CodeDeploy")
