"""CloudWatch "Alarm State Change" events (the published samples) into alarm episodes: entering and
leaving ALARM give one row in either order; other transitions are archived only; bad events quarantined."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import func, select

from collector import ingest
from collector.config import config_from_mapping
from collector.loaders import Scope, load_alarms
from collector.models import raw_events
from tests.conftest import dump_projections, fixture_path

ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
ENTERED = datetime(2019, 10, 2, 17, 4, 40, 989000, tzinfo=UTC)
LEFT = datetime(2019, 10, 2, 17, 30, 12, 5000, tzinfo=UTC)


def published() -> list[dict]:
    return json.loads(fixture_path("aws/cloudwatch-alarm-state-change.published.json").read_text())


def leaving(entering: dict, to: str = "OK") -> dict:
    """The event CloudWatch sends when the alarm of `entering` leaves ALARM: its state becomes previousState."""
    event = copy.deepcopy(entering)
    event["id"] = "d1e2f3a4-0000-4000-8000-000000000001"
    event["time"] = "2019-10-02T17:30:12Z"
    event["detail"]["previousState"] = copy.deepcopy(entering["detail"]["state"])
    event["detail"]["state"] = {
        "reason": "Threshold Crossed: 1 out of the last 1 datapoints [12.5 (02/10/19 17:25:00)] was not greater "
        "than the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition).",
        "timestamp": "2019-10-02T17:30:12.005+0000",
        "value": to,
    }
    return event


def alarms(engine) -> dict[str, dict]:
    return {row["id"]: row for row in dump_projections(engine)["alarms"]}


def test_published_samples_become_alarm_episodes(engine, config):
    summary = ingest.ingest_payloads(engine, published(), config)
    assert summary.quarantined == [] and summary.stored == 3 and summary.by_source == {"cloudwatch": 3}
    rows = alarms(engine)
    assert len(rows) == 3
    cpu = rows[f"cloudwatch:{ARN}@{ENTERED.isoformat()}"]
    assert (cpu["source"], cpu["name"], cpu["status"], cpu["status_at"], cpu["started_at"], cpu["ended_at"]) == (
        "cloudwatch",
        "ServerCpuTooHigh",
        "alarm",
        ENTERED,
        ENTERED,
        None,
    )
    assert cpu["reason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434")
    assert cpu["service"] is None  # an InstanceId dimension names no service
    assert cpu["url"].endswith("region=us-east-1#alarmsV2:alarm/ServerCpuTooHigh")
    anomaly = next(r for r in rows.values() if r["name"] == "EC2 CPU Utilization Anomaly")
    assert anomaly["started_at"] == datetime(2019, 10, 3, 16, 0, 4, 653000, tzinfo=UTC)
    assert anomaly["url"].endswith("alarm/EC2%20CPU%20Utilization%20Anomaly")


@pytest.mark.parametrize("order", ["entering first", "leaving first"])
def test_entering_and_leaving_alarm_give_one_resolved_episode_in_any_order(engine, config, order):
    entering = published()[0]
    events = [entering, leaving(entering)]
    if order == "leaving first":
        events.reverse()
    first = ingest.ingest_payloads(engine, events[:1], config)
    assert first.quarantined == []
    (only,) = alarms(engine).values()  # either event alone makes the episode
    assert only["started_at"] == ENTERED
    ingest.ingest_payloads(engine, events[1:], config)
    (row,) = alarms(engine).values()
    assert (row["status"], row["status_at"], row["started_at"], row["ended_at"]) == ("resolved", LEFT, ENTERED, LEFT)
    assert "99.50160229693434" in row["reason"]  # why it went into ALARM, from either event


def test_a_second_stay_in_alarm_is_a_second_episode(engine, config):
    entering = published()[0]
    again = copy.deepcopy(entering)
    again["id"] = "d1e2f3a4-0000-4000-8000-000000000002"
    again["detail"]["previousState"] = leaving(entering)["detail"]["state"]
    again["detail"]["state"]["timestamp"] = "2019-10-02T18:00:00.000+0000"
    ingest.ingest_payloads(engine, [entering, leaving(entering), again], config)
    rows = sorted(alarms(engine).values(), key=lambda r: r["started_at"])
    assert [(r["status"], r["started_at"]) for r in rows] == [
        ("resolved", ENTERED),
        ("alarm", datetime(2019, 10, 2, 18, 0, tzinfo=UTC)),
    ]


def test_transitions_without_alarm_and_other_cloudwatch_events_are_archived_only(engine, config):
    entering = published()[1]  # INSUFFICIENT_DATA -> ALARM
    to_ok = leaving(entering, "OK")
    ok_to_missing = copy.deepcopy(to_ok)
    ok_to_missing["id"] = "d1e2f3a4-0000-4000-8000-000000000003"
    ok_to_missing["detail"]["previousState"] = copy.deepcopy(to_ok["detail"]["state"])
    ok_to_missing["detail"]["state"] = {"reason": "no data", "timestamp": "2019-10-02T19:00:00.000+0000"}
    ok_to_missing["detail"]["state"]["value"] = "INSUFFICIENT_DATA"
    configuration = {
        "version": "0",
        "id": "e5f6a7b8-0000-4000-8000-000000000004",
        "detail-type": "CloudWatch Alarm Configuration Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2019-10-02T19:05:00Z",
        "region": "us-east-1",
        "resources": [entering["resources"][0]],
        "detail": {"alarmName": "TotalNetworkTrafficTooHigh", "operation": "update"},
    }
    summary = ingest.ingest_payloads(engine, [ok_to_missing, configuration], config)
    assert summary.quarantined == [] and summary.stored == 2
    assert alarms(engine) == {}
    with engine.connect() as conn:
        kinds = sorted(conn.execute(select(raw_events.c.kind).where(raw_events.c.source == "cloudwatch")).scalars())
    assert kinds == ["alarm-state-change", "other"]


def test_service_from_configured_names_globs_then_dimensions(engine):
    config = config_from_mapping(
        {"services": {"alarms": {"ServerCpuTooHigh": "checkout", "TotalNetwork*": "edge"}}}, environ={}
    )
    events = published()
    anomaly = events[2]
    anomaly["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "ClusterName": "prod",
        "ServiceName": "search",
    }
    ingest.ingest_payloads(engine, events, config)
    services = {r["name"]: r["service"] for r in alarms(engine).values()}
    assert services == {
        "ServerCpuTooHigh": "checkout",
        "TotalNetworkTrafficTooHigh": "edge",
        "EC2 CPU Utilization Anomaly": "search",
    }


def test_without_resources_the_alarm_is_named_by_account_region_and_name(engine, config):
    event = published()[0]
    del event["resources"]
    ingest.ingest_payloads(engine, [event], config)
    (key,) = alarms(engine)
    assert key == f"cloudwatch:{ARN}@{ENTERED.isoformat()}"


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ("detail", "state", "value"),
            "BROKEN",
            "field 'detail.state.value': expected one of OK, ALARM, INSUFFICIENT_DATA",
        ),
        (
            ("detail", "state", "timestamp"),
            "yesterday",
            "field 'detail.state.timestamp': expected an ISO 8601 timestamp",
        ),
        (("detail", "alarmName"), None, "field 'detail.alarmName': expected a string (required)"),
    ],
)
def test_a_bad_event_is_quarantined_with_the_field_named(engine, config, path, value, message):
    event = published()[0]
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    summary = ingest.ingest_payloads(engine, [event], config)
    (q,) = summary.quarantined
    assert q.source == "cloudwatch" and q.error.startswith(message), q.error
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(raw_events)).scalar() == 1  # kept, not dropped
    assert alarms(engine) == {}


def test_load_alarms_reads_a_window_and_a_service(engine):
    config = config_from_mapping({"services": {"alarms": {"ServerCpuTooHigh": "checkout"}}}, environ={})
    entering = published()[0]
    ingest.ingest_payloads(engine, [*published(), leaving(entering)], config)
    start, end = datetime(2019, 10, 2, tzinfo=UTC), datetime(2019, 10, 3, tzinfo=UTC)
    frame = load_alarms(engine, start, end)
    assert frame["name"].tolist() == ["ServerCpuTooHigh", "TotalNetworkTrafficTooHigh"]  # oldest first; 3rd is Oct 3
    assert isinstance(frame["started_at"].dtype, pd.DatetimeTZDtype) and str(frame["started_at"].dt.tz) == "UTC"
    cpu = frame.iloc[0]
    assert (cpu["status"], cpu["started_at"], cpu["ended_at"]) == (
        "resolved",
        pd.Timestamp(ENTERED),
        pd.Timestamp(LEFT),
    )
    only = load_alarms(engine, start, end, Scope(service="checkout"))
    assert only["id"].tolist() == [cpu["id"]]
    assert load_alarms(engine, end, datetime(2019, 10, 4, tzinfo=UTC))["name"].tolist() == [
        "EC2 CPU Utilization Anomaly"
    ]
