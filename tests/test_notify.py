"""Notifications: the exact bodies Slack, PagerDuty Events v2 and a templated webhook receive (real HTTP
servers on 127.0.0.1), SNS Publish through botocore's Stubber, retries, failures without secrets,
dedupe, routing, the gate/SLO/deployment events, the `notify` commands; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlalchemy import select

from collector.config import config_from_mapping
from collector.models import notifications
from collector.timeutil import utcnow
from gates.notify import Notification, Notifier, burn_rate_notifications, pagerduty_event
from gatewatch import api
from gatewatch.cli import cli
from gatewatch.errors import ConfigError

from .test_gate_actions import Hook, context, gate

AT = datetime(2026, 5, 29, 12, 0, tzinfo=UTC)
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def settings(channels: dict, routes: list | None = None, **extra) -> api.Config:
    notify = {"channels": channels, "backoff": "0.01s", "retries": 2, **extra}
    if routes is not None:
        notify["routes"] = routes
    return config_from_mapping({"notify": notify, "teams": {"checkout": "payments"}}, environ={})


def rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(notifications).order_by(notifications.c.created_at)).mappings()]


def decide(engine, config, policy, key: str, clients=None) -> api.StoredDecision:
    _, request = context(engine)
    return api.evaluate_gate(engine, config, policy, dataclasses.replace(request, key=key), clients=clients)


NOTE = Notification(
    "gate_rollback",
    "Gate checkout-prod decided ROLLBACK for checkout (deployment deploy-812): canary failed",
    "gate_rollback:job-1",
    service="checkout",
    details={"reasons": ["canary failed", "burn rate 20x"]},
    link="https://gatewatch.example.com/v1/decisions/d-1",
    decision_id="d-1",
    at=AT,
)


# --- configuration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ({"channels": {"s": {"type": "slack"}}}, "notify.channels.s.url: required for a slack channel"),
        ({"channels": {"p": {"type": "pagerduty"}}}, "notify.channels.p.routing_key: required for a pagerduty"),
        ({"channels": {"s": {"type": "slack", "url": "http://x", "path": "o"}}}, "path: not a setting of a slack"),
        ({"channels": {"s": {"type": "email"}}}, "notify.channels.s.type: expected one of slack, pagerduty, sns"),
        ({"channels": {"s": {"type": "slack", "url": "ftp://x"}}}, "url: expected an http:// or https:// URL"),
        ({"channels": {"t": {"type": "sns", "topic_arn": "topic"}}}, "topic_arn: expected an SNS topic ARN"),
        ({"channels": {"w": {"type": "webhook", "url": "http://x", "template": "{{ a"}}}, "template: not a valid"),
        ({"routes": [{"channels": ["nowhere"]}]}, "notify.routes[0].channels: no channel 'nowhere'"),
        ({"routes": [{"channels": ["x"], "events": ["deploy"]}]}, "notify.routes[0].events[0]: expected one of"),
        ({"dedupe_window": "soon"}, "notify.dedupe_window: expected a duration"),
        ({"retries": -1}, "notify.retries: expected a value at least 0"),
    ],
)
def test_invalid_notify_config_names_the_field(notify, message):
    with pytest.raises(ConfigError, match=None) as caught:
        config_from_mapping({"notify": notify}, environ={})
    assert message in str(caught.value)


def test_a_file_channel_path_is_relative_to_the_config_file(tmp_path):
    config = config_from_mapping(
        {"notify": {"channels": {"o": {"type": "file", "path": "out/n.ndjson"}}}}, str(tmp_path / "gatewatch.yaml")
    )
    assert config.notify.channels["o"].path == str(tmp_path / "out" / "n.ndjson")
    assert config.notify.dedupe_window == timedelta(hours=1) and config.notify.retries == 3


def test_routing_by_event_service_team_and_severity():
    config = settings(
        {name: {"type": "file", "path": f"/tmp/{name}"} for name in ("pager", "payments", "all", "info")},
        [
            {"channels": ["pager"], "severities": ["critical"]},
            {"channels": ["payments"], "teams": ["payments"], "events": ["gate_rollback", "gate_hold"]},
            {"channels": ["info"], "services": ["search"], "severities": ["info", "warning"]},
            {"channels": ["all"]},
        ],
    )
    route = config.notify.channels_for
    assert route("gate_rollback", "checkout", "payments", "error") == ["payments", "all"]
    assert route("burn_rate_page", "checkout", "payments", "critical") == ["pager", "all"]
    assert route("gate_hold", "search", "discovery", "warning") == ["all", "info"]
    assert route("gate_hold", "search", "discovery", "error") == ["all"]
    no_routes = settings({"a": {"type": "file", "path": "/tmp/a"}, "b": {"type": "file", "path": "/tmp/b"}})
    assert no_routes.notify.channels_for("test", None, None, "info") == ["a", "b"]  # no routes: every channel


# --- the bodies ------------------------------------------------------------------------------------------


def test_slack_gets_a_block_kit_message_with_text_fallback(engine):
    with Hook() as hook:
        (row,) = Notifier(engine, settings({"slack": {"type": "slack", "url": hook.url}})).send(NOTE, now=AT)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["team"] == "payments"
    body = json.loads(hook.requests[0]["body"])
    assert hook.requests[0]["headers"]["Content-Type"] == "application/json"
    assert body == {
        "text": "[ERROR] " + NOTE.summary,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Gate decided ROLLBACK: checkout"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": NOTE.summary}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Service*\ncheckout"},
                    {"type": "mrkdwn", "text": "*Team*\npayments"},
                    {"type": "mrkdwn", "text": "*Severity*\nerror"},
                    {"type": "mrkdwn", "text": "*Event*\ngate_rollback"},
                ],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Reasons*\n• canary failed\n• burn rate 20x"}},
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": NOTE.link}],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "gatewatch · gate_rollback:job-1"}]},
        ],
    }
    assert row["body"] == body  # what was sent is what is stored


def test_pagerduty_trigger_and_resolve_follow_events_v2(engine, monkeypatch):
    key = "R0UT1NGKEY0123456789abcdef012345"
    monkeypatch.setenv("GW_TEST_PD_KEY", key)
    with Hook(answers=[202, 202]) as hook:
        config = settings({"pd": {"type": "pagerduty", "routing_key": "${GW_TEST_PD_KEY}", "url": hook.url}})
        notifier = Notifier(engine, config)
        long = dataclasses.replace(NOTE, summary="x" * 5000)
        (trigger,) = notifier.send(long, now=AT)
        (resolve,) = notifier.send(dataclasses.replace(long, action="resolve"), now=AT + timedelta(minutes=5))
    sent = [json.loads(r["body"]) for r in hook.requests]
    assert [s["event_action"] for s in sent] == ["trigger", "resolve"]
    assert {s["routing_key"] for s in sent} == {key} and {s["dedup_key"] for s in sent} == {"gate_rollback:job-1"}
    payload = sent[0]["payload"]
    assert len(payload["summary"]) == 1024 and payload["summary"].endswith("…")
    assert payload["source"] == "checkout" and payload["severity"] in PD_SEVERITIES and payload["severity"] == "error"
    assert datetime.fromisoformat(payload["timestamp"]) == AT
    assert payload["custom_details"] == NOTE.details and payload["group"] == "payments"
    assert payload["class"] == "gate_rollback" and payload["component"] == "checkout"
    assert sent[0]["links"] == [{"href": NOTE.link, "text": "Gate decided ROLLBACK"}]
    assert sent[1] == {"routing_key": key, "event_action": "resolve", "dedup_key": "gate_rollback:job-1"}
    # The routing key is stored as written (the placeholder), never expanded.
    assert trigger["body"]["routing_key"] == "${GW_TEST_PD_KEY}" and resolve["status"] == "sent"
    assert key not in json.dumps(rows(engine), default=str)


def test_pagerduty_defaults_to_the_events_api_and_a_literal_routing_key_is_stored_redacted():
    config = config_from_mapping(
        {
            "notify": {
                "channels": {
                    "pd": {"type": "pagerduty", "routing_key": "literal-key-1234"},
                    "slack": {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/literal-secret"},
                }
            }
        },
        environ={},
    )
    assert "literal-secret" not in repr(config)
    assert config.notify.channels["pd"].url is None  # sent to https://events.pagerduty.com/v2/enqueue
    assert "literal-key-1234" not in repr(config.notify)
    event = pagerduty_event(NOTE, "k")
    assert len(event["dedup_key"]) <= 255 and event["payload"]["severity"] in PD_SEVERITIES


def test_webhook_renders_its_template_and_sends_secret_headers_it_never_stores(engine, monkeypatch, caplog):
    monkeypatch.setenv("GW_TEST_HOOK_SECRET", "hook-secret-777")
    template = (
        '{"text": {{ summary | tojson }}, "who": "{{ team }}/{{ service }}", "n": {{ details.reasons | length }}}'
    )
    with Hook() as hook, caplog.at_level(logging.DEBUG):
        channel = {
            "type": "webhook",
            "url": hook.url,
            "method": "put",
            "headers": {"X-Token": "${GW_TEST_HOOK_SECRET}"},
            "template": template,
        }
        (row,) = Notifier(engine, settings({"hook": channel})).send(NOTE, now=AT)
    request = hook.requests[0]
    assert request["method"] == "PUT" and request["headers"]["X-Token"] == "hook-secret-777"
    assert json.loads(request["body"]) == {"text": NOTE.summary, "who": "payments/checkout", "n": 2}
    assert row["status"] == "sent" and json.loads(row["body"]) == json.loads(request["body"])
    assert "hook-secret-777" not in json.dumps(rows(engine), default=str) and "hook-secret-777" not in caplog.text


def test_a_template_cannot_reach_outside_the_sandbox(engine, tmp_path):
    template = "{{ notification.__class__.__mro__[1].__subclasses__() }}"
    with Hook() as hook:
        (row,) = Notifier(engine, settings({"hook": {"type": "webhook", "url": hook.url, "template": template}})).send(
            NOTE, now=AT
        )
    assert row["status"] == "failed" and "unsafe" in row["error"] and hook.requests == []


def test_sns_publishes_subject_and_message(engine):
    client = boto3.session.Session().client("sns", region_name="eu-west-1")
    topic = "arn:aws:sns:eu-west-1:123456789012:deploys"
    long = dataclasses.replace(NOTE, service="a-very-long-service-name-" * 5)
    with Stubber(client) as stub:
        expected = {
            "TopicArn": topic,
            "Subject": "[error] Gate decided ROLLBACK: " + ("a-very-long-service-name-" * 5)[:68] + "~",
            "Message": json.dumps(long.to_dict(), default=str),
        }
        stub.add_response("publish", {"MessageId": "m-1"}, expected)
        config = settings({"sns": {"type": "sns", "topic_arn": topic, "region": "eu-west-1"}})
        calls = []

        def clients(service, region):
            calls.append((service, region))
            return client

        (row,) = Notifier(engine, config, clients).send(long, now=AT)
        stub.assert_no_pending_responses()
    assert len(expected["Subject"]) == 100 and calls == [("sns", "eu-west-1")]
    assert row["status"] == "sent" and row["body"]["Subject"] == expected["Subject"]
    message = json.loads(row["body"]["Message"])
    assert message["summary"] == NOTE.summary and message["dedup_key"] == "gate_rollback:job-1"


def test_an_sns_error_is_recorded_as_failed(engine):
    client = boto3.session.Session().client("sns", region_name="eu-west-1")
    with Stubber(client) as stub:
        stub.add_client_error("publish", "AuthorizationError", "not allowed to publish", 403)
        config = settings({"sns": {"type": "sns", "topic_arn": "arn:aws:sns:eu-west-1:1:t"}})
        (row,) = Notifier(engine, config, lambda s, r: client).send(NOTE, now=AT)
    assert row["status"] == "failed"
    assert row["error"] == "notify channel sns: SNS Publish: AuthorizationError: not allowed to publish"


def test_a_file_channel_appends_one_json_line_per_notification(engine, tmp_path):
    path = tmp_path / "outbox" / "notifications.ndjson"
    notifier = Notifier(engine, settings({"outbox": {"type": "file", "path": str(path)}}))
    notifier.send(NOTE, now=AT)
    notifier.send(dataclasses.replace(NOTE, dedup_key="other", event="gate_hold"), now=AT)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["gate_rollback", "gate_hold"]
    assert lines[0] == {"channel": "outbox", "sent_at": AT.isoformat(), **NOTE.to_dict(), "team": "payments"}


# --- delivery: retries, failures, dedupe -----------------------------------------------------------------


def test_503s_are_retried_and_the_attempts_counted(engine):
    with Hook(answers=[503, 503]) as hook:
        (row,) = Notifier(engine, settings({"slack": {"type": "slack", "url": hook.url}})).send(NOTE, now=AT)
    assert row["status"] == "sent" and row["attempts"] == 3 == len(hook.requests)
    assert len({r["body"] for r in hook.requests}) == 1


def test_a_permanent_failure_is_recorded_and_logged_without_the_secret(engine, monkeypatch, caplog):
    secret = "T000/B000/XXXXsecretXXXX"
    monkeypatch.setenv("GW_TEST_SLACK_PATH", secret)
    with Hook(default=500) as hook, caplog.at_level(logging.DEBUG):
        config = settings({"slack": {"type": "slack", "url": hook.url + "/${GW_TEST_SLACK_PATH}"}})
        (row,) = Notifier(engine, config).send(NOTE, now=AT)
    assert hook.requests[0]["path"] == f"/hook/{secret}"
    assert row["status"] == "failed" and row["attempts"] == 3 == len(hook.requests)
    assert row["error"] == "HTTP 500 Internal Server Error; gave up after 3 attempts (retries: 2)"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "gate_rollback:job-1" in errors[0].getMessage() and "slack" in errors[0].getMessage()
    assert secret not in caplog.text and secret not in json.dumps(rows(engine), default=str)
    (failed,) = api.list_notifications(engine, status="failed", since=AT - timedelta(minutes=1))
    assert failed["id"] == row["id"] and failed["summary"] == NOTE.summary


def test_an_unset_variable_fails_without_sending(engine, monkeypatch):
    monkeypatch.delenv("GW_TEST_UNSET", raising=False)
    with Hook() as hook:
        config = settings({"pd": {"type": "pagerduty", "routing_key": "${GW_TEST_UNSET}", "url": hook.url}})
        (row,) = Notifier(engine, config).send(NOTE, now=AT)
    assert hook.requests == [] and row["status"] == "failed" and row["attempts"] == 0
    assert (
        row["error"] == "notify channel pd routing_key: environment variable GW_TEST_UNSET is not set; nothing was sent"
    )


def test_the_same_alert_within_the_window_is_suppressed_then_sent_again_after_it(engine):
    with Hook() as hook:
        notifier = Notifier(engine, settings({"slack": {"type": "slack", "url": hook.url}}, dedupe_window="30m"))
        first = notifier.send(NOTE, now=AT)
        again = notifier.send(NOTE, now=AT + timedelta(minutes=29))
        later = notifier.send(NOTE, now=AT + timedelta(minutes=31))
    assert [r["status"] for r in first + again + later] == ["sent", "suppressed", "sent"]
    assert len(hook.requests) == 2 and again[0]["attempts"] == 0
    assert [r["status"] for r in rows(engine)] == ["sent", "suppressed", "sent"]  # nothing silently dropped


def test_every_outcome_is_counted_on_the_metrics_endpoint(engine, tmp_path):
    from gatewatch.metrics import NOTIFICATIONS

    def count(outcome: str) -> float:
        return NOTIFICATIONS.labels("metrics-box", outcome)._value.get()

    before = {o: count(o) for o in ("sent", "suppressed", "failed")}
    bad = tmp_path  # a folder: the append fails
    notifier = Notifier(engine, settings({"metrics-box": {"type": "file", "path": str(tmp_path / "out.ndjson")}}))
    notifier.send(NOTE, now=AT)
    notifier.send(NOTE, now=AT + timedelta(minutes=1))
    broken = Notifier(engine, settings({"metrics-box": {"type": "file", "path": str(bad)}}))
    broken.send(dataclasses.replace(NOTE, dedup_key="other"), now=AT)
    assert {o: count(o) - before[o] for o in before} == {"sent": 1, "suppressed": 1, "failed": 1}


def test_a_resolve_is_sent_once_and_only_after_a_trigger(engine):
    with Hook() as hook:
        notifier = Notifier(engine, settings({"slack": {"type": "slack", "url": hook.url}}))
        resolved = dataclasses.replace(NOTE, action="resolve")
        assert notifier.send(resolved, now=AT) == []  # nothing was triggered: nothing to resolve
        notifier.send(NOTE, now=AT)
        statuses = [r["status"] for t in (1, 2) for r in notifier.send(resolved, now=AT + timedelta(minutes=t))]
        retriggered = notifier.send(NOTE, now=AT + timedelta(minutes=3))  # firing again after the resolve
    assert statuses == ["sent"] and retriggered[0]["status"] == "sent"
    assert [json.loads(r["body"])["text"].split("]")[0] for r in hook.requests] == ["[ERROR", "[RESOLVED", "[ERROR"]


def test_dedupe_is_per_channel(engine, tmp_path):
    config = settings({n: {"type": "file", "path": str(tmp_path / n)} for n in ("a", "b")}, [{"channels": ["a"]}])
    Notifier(engine, config).send(NOTE, now=AT)
    both = settings({n: {"type": "file", "path": str(tmp_path / n)} for n in ("a", "b")})
    assert [(r["channel"], r["status"]) for r in Notifier(engine, both).send(NOTE, now=AT)] == [
        ("a", "suppressed"),
        ("b", "sent"),
    ]


# --- the events ------------------------------------------------------------------------------------------


def test_a_rollback_decision_notifies_once_and_a_replay_not_again(engine, tmp_path):
    path = tmp_path / "out.ndjson"
    config = settings({"outbox": {"type": "file", "path": str(path)}}, base_url="https://gw.example.com/")
    policy = gate([])
    first = decide(engine, config, policy, "job-1")
    replayed = [decide(engine, config, policy, "job-1") for _ in range(2)]
    assert first.decision == "rollback" and all(not r.first for r in replayed)
    (row,) = rows(engine)
    assert (row["event"], row["status"], row["decision_id"]) == ("gate_rollback", "sent", first.id)
    assert (row["service"], row["team"], row["severity"]) == ("checkout", "payments", "error")
    assert row["dedup_key"] == "gate_rollback:job-1"
    (line,) = [json.loads(x) for x in path.read_text().splitlines()]
    assert line["link"] == f"https://gw.example.com/v1/decisions/{first.id}"
    assert line["details"]["reasons"] == first.reasons and "test freeze" in line["summary"]
    assert line["details"]["checks"][0]["status"] == "fail"


def test_a_hold_notifies_on_its_first_attempt_only_and_a_promote_never(engine, tmp_path):
    config = settings({"outbox": {"type": "file", "path": str(tmp_path / "o")}})
    decide(engine, config, gate([], "hold"), "h")
    second = decide(engine, config, gate([], "hold"), "h")
    decide(engine, config, gate([], "promote"), "p")
    assert second.attempt == 2
    assert [(r["event"], r["dedup_key"]) for r in rows(engine)] == [("gate_hold", "gate_hold:h")]


def test_a_failed_rollback_action_is_notified(engine, tmp_path):
    config = settings({"outbox": {"type": "file", "path": str(tmp_path / "o")}})
    with Hook(default=404) as hook:
        stored = decide(engine, config, gate([{"webhook": {"url": hook.url}}]), "job-2")
    assert stored.actions[0]["status"] == "failed"
    found = {r["event"]: r for r in rows(engine)}
    assert set(found) == {"gate_rollback", "action_failed"}
    failed = found["action_failed"]
    assert failed["severity"] == "critical" and failed["decision_id"] == stored.id
    assert "HTTP 404 Not Found" in failed["summary"] and failed["dedup_key"] == f"action_failed:{stored.id}:0:1"


def test_a_retried_action_that_fails_again_is_notified_again_and_one_that_succeeds_is_not(engine, tmp_path):
    config = settings({"outbox": {"type": "file", "path": str(tmp_path / "o")}})
    with Hook(default=404) as hook:
        policy = gate([{"webhook": {"url": hook.url}}])
        first = decide(engine, config, policy, "job-r")
        again = decide(engine, config, policy, "job-r")  # the replay re-attempts the failed webhook: 404 again
    assert again.id == first.id and again.actions[0]["attempt"] == 2 and again.actions[0]["status"] == "failed"
    told = [(r["event"], r["dedup_key"], r["status"]) for r in rows(engine) if r["event"] == "action_failed"]
    assert told == [
        ("action_failed", f"action_failed:{first.id}:0:1", "sent"),
        ("action_failed", f"action_failed:{first.id}:0:2", "sent"),
    ]
    with Hook(default=200) as ok:
        report = api.retry_gate_actions(engine, config, gate([{"webhook": {"url": ok.url}}]), "job-r")
    assert report.actions[0]["status"] == "ok" and len(ok.requests) == 1
    assert len([r for r in rows(engine) if r["event"] == "action_failed"]) == 2  # nothing new to tell


def test_no_channels_means_no_rows_and_the_decision_is_unaffected(engine):
    stored = decide(engine, config_from_mapping({}, environ={}), gate([]), "job-3")
    assert stored.decision == "rollback" and rows(engine) == []


def write_sli(folder: Path, end: datetime, bad_recent: int) -> Path:
    """An SLO file and its minute counts over 3 days to `end`, the last hour at `bad_recent` per mille."""
    stamps = [end - timedelta(minutes=i) for i in range(3 * 1440)]
    bad = [bad_recent if i < 60 else 0 for i in range(len(stamps))]
    frame = pd.DataFrame({"timestamp": stamps, "good": [1000 - b for b in bad], "total": 1000})
    frame.iloc[::-1].to_csv(folder / "checkout-sli.csv", index=False)
    slo = {"service": "checkout", "name": "availability", "objective": 99.9, "window": "28d"}
    path = folder / "checkout.yaml"
    path.write_text(yaml.safe_dump(slo | {"sli": {"data": "checkout-sli.csv"}}))
    return path


def test_burn_rate_page_triggers_then_resolves_and_stale_data_is_notified(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("GW_TEST_PD_KEY", "pd-key-31337")
    with Hook() as hook:
        config = settings({"pd": {"type": "pagerduty", "routing_key": "${GW_TEST_PD_KEY}", "url": hook.url}})
        spec = api.load_slo(write_sli(tmp_path, AT, 20))
        firing = api.notify_slo(engine, config, spec, api.slo_status(config, spec, AT))
        spec = api.load_slo(write_sli(tmp_path, AT, 0))
        stopped = api.notify_slo(engine, config, spec, api.slo_status(config, spec, AT))
        stale = api.notify_slo(engine, config, spec, api.slo_status(config, spec, AT + timedelta(hours=2)))
    assert [(r["event"], r["action"]) for r in firing] == [("burn_rate_page", "trigger")]
    assert [(r["event"], r["action"]) for r in stopped] == [("burn_rate_page", "resolve")]
    assert [(r["event"], r["severity"]) for r in stale] == [("data_stale", "warning")]
    sent = [json.loads(r["body"]) for r in hook.requests]
    assert [s["event_action"] for s in sent] == ["trigger", "resolve", "trigger"]
    assert sent[0]["dedup_key"] == sent[1]["dedup_key"] == "burn_rate:checkout/availability:page"
    assert sent[0]["payload"]["severity"] == "critical" and "20.0x over 1h" in sent[0]["payload"]["summary"]
    assert sent[2]["dedup_key"] == "data_stale:checkout/availability"


def test_stale_data_resolves_nothing():
    from analysis.slo import SloStatus

    stale = SloStatus(0.999, timedelta(days=28), AT, 0, 0, None, None, None, None, stale="stale: newest point 2h old")
    (note,) = burn_rate_notifications("checkout", "availability", stale)
    assert note.event == "data_stale" and note.action == "trigger"


def test_scan_notifies_failed_production_deployments_once(engine, tmp_path):
    now = utcnow()
    record = {
        "type": "deployment",
        "id": "deploy-900",
        "service": "checkout",
        "environment": "production",
        "status": "failure",
        "started_at": (now - timedelta(minutes=20)).isoformat(),
        "finished_at": (now - timedelta(minutes=10)).isoformat(),
        "version": "2.0.1",
    }
    config = settings({"outbox": {"type": "file", "path": str(tmp_path / "o")}})
    api.ingest_text(engine, config, json.dumps(record), "test", source="generic")
    first = api.scan_notifications(engine, config, now=now)
    again = api.scan_notifications(engine, config, now=now + timedelta(minutes=5))
    assert first.failed_deployments == 1 and first.count("sent") == 1 and first.errors == []
    (row,) = first.notifications
    assert row["event"] == "deployment_failed" and row["dedup_key"] == "deployment_failed:deploy-900"
    assert row["team"] == "payments" and "2.0.1" in row["summary"]
    assert again.count("suppressed") == 1 and again.count("sent") == 0
    later = api.scan_notifications(engine, config, now=now + timedelta(hours=2))  # out of the window: not rescanned
    assert later.failed_deployments == 0 and later.notifications == []


def test_scan_reads_the_slo_folder_and_an_unreadable_sli_is_data_stale(engine, tmp_path):
    write_sli(tmp_path, AT, 20)
    (tmp_path / "broken.yaml").write_text(
        yaml.safe_dump({"service": "search", "objective": 99.9, "sli": {"data": "absent.csv"}})
    )
    config = config_from_mapping(
        {"slos": str(tmp_path), "notify": {"channels": {"o": {"type": "file", "path": str(tmp_path / "out")}}}},
        environ={},
    )
    found = api.scan_notifications(engine, config, now=AT)
    assert found.slos == 2 and any("absent.csv" in e for e in found.errors)
    assert sorted((r["event"], r["service"]) for r in found.notifications) == [
        ("burn_rate_page", "checkout"),
        ("data_stale", "search"),
    ]


# --- listing and the command ------------------------------------------------------------------------------


def test_list_filters_by_status_since_and_channel(engine, tmp_path):
    notifier = Notifier(engine, settings({"outbox": {"type": "file", "path": str(tmp_path / "o")}}))
    notifier.send(NOTE, now=AT - timedelta(hours=2))
    notifier.send(NOTE, now=AT)
    notifier.send(dataclasses.replace(NOTE, dedup_key="k2"), now=AT - timedelta(minutes=30))
    assert [r["status"] for r in api.list_notifications(engine)] == ["sent", "sent", "sent"]
    assert len(api.list_notifications(engine, since=AT - timedelta(hours=1))) == 2
    assert api.list_notifications(engine, status="failed") == [] and api.list_notifications(engine, channel="x") == []
    with pytest.raises(ConfigError, match="status 'lost': expected one of sent, failed, suppressed"):
        api.list_notifications(engine, status="lost")


def write_config(tmp_path: Path, channels: dict) -> str:
    path = tmp_path / "gatewatch.yaml"
    path.write_text(yaml.safe_dump({"notify": {"channels": channels, "backoff": "0.01s", "retries": 1}}))
    return str(path)


def test_notify_test_command_exit_codes(store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GW_TEST_PD_KEY", "cli-secret-key-9")
    with Hook(answers=[202]) as good, Hook(default=400) as bad:
        config = write_config(
            tmp_path,
            {
                "ok": {"type": "pagerduty", "routing_key": "${GW_TEST_PD_KEY}", "url": good.url},
                "broken": {"type": "slack", "url": bad.url},
            },
        )
        base = ["--db", store_url, "--config", config, "notify"]
        sent = CliRunner().invoke(cli, [*base, "test", "ok"])
        failed = CliRunner().invoke(cli, [*base, "test", "broken"])
        missing = CliRunner().invoke(cli, [*base, "test", "nope"])
        listed = CliRunner().invoke(cli, [*base, "list", "--status", "failed", "--json"])
    assert sent.exit_code == 0 and "sent a test message to ok (pagerduty, 1 attempt(s))" in sent.output
    event = json.loads(good.requests[0]["body"])
    assert event["event_action"] == "trigger" and event["payload"]["severity"] == "info"
    assert event["dedup_key"].startswith("test:ok:") and event["routing_key"] == "cli-secret-key-9"
    assert failed.exit_code == 1
    assert failed.output.strip().splitlines() == [
        "error: test message to broken (slack) failed: HTTP 400 Bad Request (attempt 1; not retried)"
    ]
    assert isinstance(missing.exception, ConfigError) and "no notification channel 'nope'" in str(missing.exception)
    (row,) = json.loads(listed.output)
    assert row["channel"] == "broken" and row["status"] == "failed" and "cli-secret-key-9" not in listed.output


@pytest.mark.parametrize("command", [["notify"], ["notify", "test"], ["notify", "list"], ["notify", "scan"]])
def test_every_notify_command_has_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert ("Exit status" in result.output) == (command != ["notify"])


def test_the_server_scanner_scans_until_stopped(engine, tmp_path):
    import threading
    import time

    record = {
        "type": "deployment",
        "id": "deploy-901",
        "service": "checkout",
        "environment": "production",
        "status": "failure",
        "started_at": (utcnow() - timedelta(minutes=20)).isoformat(),
        "finished_at": (utcnow() - timedelta(minutes=10)).isoformat(),
    }
    channels = {"outbox": {"type": "file", "path": str(tmp_path / "o")}}
    config = settings(channels, scan_interval="0.05s")
    api.ingest_text(engine, config, json.dumps(record), "test", source="generic")
    assert api.start_notify_scanner(engine, settings(channels), threading.Event()) is None  # no interval: none
    stop = threading.Event()
    thread = api.start_notify_scanner(engine, config, stop)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(rows(engine)) < 2:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    found = rows(engine)
    assert [r["status"] for r in found[:2]] == ["sent", "suppressed"]  # scanned again: not sent twice
    assert {r["dedup_key"] for r in found} == {"deployment_failed:deploy-901"}


def test_slo_status_notify_sends_the_page_and_keeps_the_exit_status(store_url, tmp_path):
    slo = write_sli(tmp_path, AT, 20)
    outbox = tmp_path / "outbox.ndjson"
    config = write_config(tmp_path, {"outbox": {"type": "file", "path": str(outbox)}})
    args = ["--db", store_url, "--config", config, "slo", "status", "--slo", str(slo), "--at", AT.isoformat()]
    first = CliRunner().invoke(cli, [*args, "--notify"])
    again = CliRunner().invoke(cli, [*args, "--notify"])
    assert first.exit_code == again.exit_code == 1  # the alert fires, whether or not it was notified
    assert "notify: sent burn_rate_page to outbox" in first.output and "notify:" not in again.output  # suppressed
    (line,) = [json.loads(x) for x in outbox.read_text().splitlines()]
    assert line["event"] == "burn_rate_page" and line["dedup_key"] == "burn_rate:checkout/availability:page"
    unconfigured = CliRunner().invoke(cli, ["--db", store_url, "slo", "status", "--slo", str(slo), "--notify"])
    assert isinstance(unconfigured.exception, ConfigError) and "no notification channels" in str(unconfigured.exception)


def test_an_unexpected_error_is_recorded_as_failed_without_its_text(engine):
    def clients(service, region):
        raise RuntimeError("token=do-not-show-me")

    config = settings({"sns": {"type": "sns", "topic_arn": "arn:aws:sns:eu-west-1:1:t"}})
    (row,) = Notifier(engine, config, clients).send(NOTE, now=AT)
    assert row["status"] == "failed" and row["error"] == "notify channel sns: RuntimeError"
    assert "do-not-show-me" not in json.dumps(rows(engine), default=str)
