"""The generic format: JSON objects, JSON lists, NDJSON and CSV give the same rows."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from collector import ingest
from tests.conftest import dump_projections

RECORDS = [
    {
        "type": "deployment",
        "id": "dep-1",
        "service": "checkout",
        "environment": "production",
        "status": "success",
        "started_at": "2024-05-01T08:00:00Z",
        "finished_at": "2024-05-01T10:12:00+02:00",
        "commits": ["a1b2c3d4", "e5f6a7b8"],
        "version": "1.4.0",
        "team": "payments",
    },
    {
        "type": "deployment",
        "id": "dep-2",
        "service": "checkout",
        "environment": "staging",
        "status": "rolled_back",
        "started_at": "2024-05-02T09:00:00Z",
        "finished_at": "2024-05-02T09:05:00Z",
        "commits": [],
        "rollback_of": "dep-1",
        "hotfix": True,
    },
    {
        "type": "change",
        "id": "a1b2c3d4",
        "service": "checkout",
        "committed_at": "2024-04-30T16:00:00Z",
        "merged_at": "2024-05-01T08:00:00Z",
        "pr": 42,
        "author": "ada",
    },
    {
        "type": "incident",
        "id": "inc-1",
        "service": "checkout",
        "opened_at": "2024-05-01T11:00:00Z",
        "resolved_at": "",
        "severity": "sev2",
        "deployment_id": "dep-1",
    },
]
CSV = """type,id,service,environment,status,started_at,finished_at,commits,version,rollback_of,hotfix,team,committed_at,merged_at,pr,author,opened_at,resolved_at,severity,deployment_id
deployment,dep-1,checkout,production,success,2024-05-01T08:00:00Z,2024-05-01T10:12:00+02:00,a1b2c3d4 e5f6a7b8,1.4.0,,,payments,,,,,,,,
deployment,dep-2,checkout,staging,rolled_back,2024-05-02T09:00:00Z,2024-05-02T09:05:00Z,,,dep-1,true,,,,,,,,,
change,a1b2c3d4,checkout,,,,,,,,,,2024-04-30T16:00:00Z,2024-05-01T08:00:00Z,42,ada,,,,
incident,inc-1,checkout,,,,,,,,,,,,,,2024-05-01T11:00:00Z,,sev2,dep-1
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ingest_text(engine, config, text: str):
    return ingest.ingest(engine, ingest.read_stream(io.StringIO(text), "test"), config)


def test_generic_records_project_to_the_expected_rows(engine, config):
    summary = ingest_text(engine, config, "\n".join(json.dumps(r) for r in RECORDS))
    assert (summary.stored, summary.duplicates, summary.quarantined) == (4, 0, [])
    rows = dump_projections(engine)
    dep1, dep2 = rows["deployments"]
    assert dep1["id"] == "dep-1"
    assert (dep1["service"], dep1["team"], dep1["environment"], dep1["production"], dep1["status"]) == (
        "checkout",
        "payments",
        "production",
        True,
        "success",
    )
    assert dep1["finished_at"] == utc("2024-05-01T08:12:00")  # +02:00 normalised to UTC
    assert dep1["started_at"] == utc("2024-05-01T08:00:00") and dep1["version"] == "1.4.0"
    assert (dep1["is_rollback"], dep1["hotfix"], dep1["rollback_of"]) == (False, False, None)
    assert (dep2["production"], dep2["status"], dep2["rollback_of"], dep2["is_rollback"], dep2["hotfix"]) == (
        False,
        "rolled_back",
        "dep-1",
        True,
        True,
    )
    assert [(r["deployment_id"], r["change_id"]) for r in rows["deployment_changes"]] == [
        ("dep-1", "a1b2c3d4"),
        ("dep-1", "e5f6a7b8"),
    ]
    (change,) = rows["changes"]
    assert (change["id"], change["committed_at"], change["merged_at"], change["pr"], change["author"]) == (
        "a1b2c3d4",
        utc("2024-04-30T16:00:00"),
        utc("2024-05-01T08:00:00"),
        42,
        "ada",
    )
    (incident,) = rows["incidents"]
    assert (
        incident["status"],
        incident["opened_at"],
        incident["resolved_at"],
        incident["severity"],
        incident["deployment_id"],
    ) == ("triggered", utc("2024-05-01T11:00:00"), None, "sev2", "dep-1")


@pytest.mark.parametrize("form", ["json-list", "csv", "objects"])
def test_every_file_form_gives_the_same_rows(engine, config, form, store_url, tmp_path):
    ingest_text(engine, config, "\n".join(json.dumps(r) for r in RECORDS))
    expected = dump_projections(engine)
    from collector.db import create_store_engine, upgrade

    other = create_store_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    if form == "json-list":
        text = json.dumps(RECORDS, indent=2)
    elif form == "csv":
        text = CSV
    else:
        text = None
    if text is None:
        for record in RECORDS:  # one pretty-printed object per file
            ingest_text(other, config, json.dumps(record, indent=4))
    else:
        summary = ingest_text(other, config, text)
        assert summary.quarantined == [] and summary.stored == 4
    assert dump_projections(other) == expected
    other.dispose()


def test_resolving_an_open_incident_later_updates_the_row(engine, config):
    ingest_text(engine, config, json.dumps(RECORDS[3]))
    resolved = dict(RECORDS[3], resolved_at="2024-05-01T13:30:00Z")
    ingest_text(engine, config, json.dumps(resolved))
    (incident,) = dump_projections(engine)["incidents"]
    assert (incident["status"], incident["resolved_at"]) == ("resolved", utc("2024-05-01T13:30:00"))


@pytest.mark.parametrize(
    "record, field, expected",
    [
        (
            {
                "type": "deployment",
                "id": "x",
                "service": "s",
                "environment": "production",
                "status": "done",
                "finished_at": "2024-01-01T00:00:00Z",
            },
            "status",
            "one of success, failure, rolled_back",
        ),
        (
            {"type": "deployment", "id": "x", "service": "s", "environment": "production", "status": "success"},
            "finished_at",
            "ISO 8601 timestamp (required)",
        ),
        (
            {
                "type": "deployment",
                "id": "x",
                "service": "s",
                "environment": "production",
                "status": "success",
                "finished_at": "yesterday",
            },
            "finished_at",
            "ISO 8601 timestamp such as",
        ),
        (
            {
                "type": "deployment",
                "service": "s",
                "environment": "production",
                "status": "success",
                "finished_at": "2024-01-01T00:00:00Z",
            },
            "id",
            "a string (required)",
        ),
        (
            {
                "type": "deployment",
                "id": "x",
                "service": "s",
                "environment": "production",
                "status": "success",
                "started_at": "2024-01-02T00:00:00Z",
                "finished_at": "2024-01-01T00:00:00Z",
            },
            "finished_at",
            "at or after started_at",
        ),
        (
            {
                "type": "deployment",
                "id": "x",
                "service": "s",
                "environment": "production",
                "status": "success",
                "finished_at": "2024-01-01T00:00:00Z",
                "hotfix": "maybe",
            },
            "hotfix",
            "a boolean",
        ),
        (
            {
                "type": "deployment",
                "id": "x",
                "service": "s",
                "environment": "production",
                "status": "success",
                "finished_at": "2024-01-01T00:00:00Z",
                "commits": [1, 2],
            },
            "commits",
            "a list of commit SHAs",
        ),
        ({"type": "change", "id": "abc1234", "service": "s"}, "committed_at", "required"),
        (
            {
                "type": "incident",
                "id": "i",
                "service": "s",
                "opened_at": "2024-01-02T00:00:00Z",
                "resolved_at": "2024-01-01T00:00:00Z",
            },
            "resolved_at",
            "at or after opened_at",
        ),
        ({"type": "release", "service": "api"}, "type", "one of deployment, change, incident"),
    ],
)
def test_bad_records_are_quarantined_with_the_field_named(engine, config, record, field, expected):
    summary = ingest_text(engine, config, json.dumps(record))
    (q,) = summary.quarantined
    assert q.error.startswith(f"field '{field}': expected") and expected in q.error
    from sqlalchemy import select

    from collector.models import raw_events

    with engine.connect() as conn:
        (row,) = conn.execute(select(raw_events)).mappings().all()
    assert row["status"] == "quarantined" and row["error"] == q.error
    assert json.loads(row["payload"]) == record  # archived as received
    assert all(not rows for rows in dump_projections(engine).values())
