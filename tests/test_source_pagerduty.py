"""PagerDuty webhooks v3 into incidents."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime

import pytest

from collector import ingest
from collector.config import config_from_mapping
from tests.conftest import dump_projections, fixture_path


def sample(kind: str) -> dict:
    return json.loads(fixture_path(f"incidents/pagerduty.incident.{kind}.v3.json").read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_published_samples(engine):
    config = config_from_mapping({"services": {"pagerduty": {"PA2P440": "checkout"}}}, environ={})
    summary = ingest.ingest_payloads(engine, [sample(k) for k in ("triggered", "acknowledged", "resolved")], config)
    assert summary.quarantined == []
    rows = {r["id"]: r for r in dump_projections(engine)["incidents"]}
    triggered = rows["pagerduty:PFQZPSY"]  # the three samples are three different incidents, as published
    assert (triggered["status"], triggered["service"], triggered["title"], triggered["severity"]) == (
        "triggered",
        "checkout",
        "Test Incident 3",
        "high",
    )
    assert triggered["opened_at"] == utc("2021-06-04T13:35:29.781") and triggered["resolved_at"] is None
    assert triggered["url"] == "https://pig208.pagerduty.com/incidents/PFQZPSY"
    resolved = rows["pagerduty:PCPZE64"]
    assert resolved["status"] == "resolved" and resolved["resolved_at"] == utc("2021-06-04T13:16:53.816")
    acknowledged = rows["pagerduty:PQ1K5C8"]
    assert acknowledged["acknowledged_at"] == utc("2021-06-04T13:55:30.394")


def lifecycle() -> list[dict]:
    """One incident's triggered, acknowledged and resolved events (built from the published sample)."""
    out = []
    for n, (kind, at) in enumerate(
        (
            ("triggered", "2024-05-01T10:30:00Z"),
            ("acknowledged", "2024-05-01T10:34:00Z"),
            ("resolved", "2024-05-01T11:10:00Z"),
        )
    ):
        event = copy.deepcopy(sample("triggered"))
        event["event"].update(id=f"01EVENT{n}", event_type=f"incident.{kind}", occurred_at=at)
        event["event"]["data"]["status"] = kind
        out.append(event)
    return out


def test_any_arrival_order_gives_the_same_incident(engine, config):
    results = []
    for order in itertools.permutations(lifecycle()):
        from sqlalchemy import delete

        from collector.db import write_transaction
        from collector.models import PROJECTION_TABLES, raw_events

        with write_transaction(engine) as conn:
            for table in (*PROJECTION_TABLES, raw_events):
                conn.execute(delete(table))
        ingest.ingest_payloads(engine, list(order), config)
        results.append(dump_projections(engine)["incidents"])
    assert all(r == results[0] for r in results)
    (incident,) = results[0]
    assert (incident["status"], incident["opened_at"], incident["acknowledged_at"], incident["resolved_at"]) == (
        "resolved",
        utc("2024-05-01T10:30:00"),
        utc("2024-05-01T10:34:00"),
        utc("2024-05-01T11:10:00"),
    )


def test_other_incident_events_are_archived_and_change_nothing(engine, config):
    event = copy.deepcopy(sample("triggered"))
    event["event"]["event_type"] = "incident.annotated"
    summary = ingest.ingest_payloads(engine, [event], config)
    assert summary.stored == 1 and summary.ignored == 1 and dump_projections(engine)["incidents"] == []


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda e: e["event"]["data"].pop("id"), "event.data.id"),
        (lambda e: e["event"].update(occurred_at="soon"), "event.occurred_at"),
    ],
)
def test_malformed_events_are_quarantined(engine, config, mutate, field):
    event = copy.deepcopy(sample("resolved"))
    mutate(event)
    (q,) = ingest.ingest_payloads(engine, [event], config).quarantined
    assert q.source == "pagerduty" and q.error.startswith(f"field '{field}'")


def test_redelivery_with_the_same_event_id_is_a_duplicate(engine, config):
    event = sample("resolved")
    summary = ingest.ingest_payloads(engine, [event, copy.deepcopy(event)], config)
    assert (summary.stored, summary.duplicates) == (1, 1)
