"""Delivery guarantees: at-least-once, out-of-order arrival gives the same rows (property-based).

Real event streams (CodePipeline EventBridge events built from the published examples, GitHub
deployment webhooks, PagerDuty v3 webhooks, generic records) are shuffled, duplicated and split
into arbitrary batches; every arrangement must give the rows of the in-order ingest.
"""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from collector import ingest
from collector.db import write_transaction
from collector.models import PROJECTION_TABLES, raw_events
from tests.conftest import dump_projections, fixture_path

PIPELINE, EXECUTION = "checkout-pipeline", "7c4b9e2a-1111-4d5e-9f00-0123456789ab"
SHA = "3484a3fb816e0859fd6e1cea078d76385ff50625"


def codepipeline_stream() -> list[tuple[dict, str | None]]:
    """One execution, in the published event shapes: the Prod stage fails, is retried, succeeds."""
    events = []

    def event(detail_type: str, time: str, **detail):
        n = len(events)
        events.append(
            (
                {
                    "version": "0",
                    "id": f"0000{n:04d}-aaaa-bbbb-cccc-000000000000",
                    "detail-type": detail_type,
                    "source": "aws.codepipeline",
                    "account": "111122223333",
                    "time": time,
                    "region": "us-east-1",
                    "resources": [f"arn:aws:codepipeline:us-east-1:111122223333:{PIPELINE}"],
                    "detail": {
                        "pipeline": PIPELINE,
                        "version": "1",
                        "execution-id": EXECUTION,
                        "start-time": "2024-05-01T10:00:00Z",
                        **detail,
                    },
                },
                None,
            )
        )

    p, s, a = (
        "CodePipeline Pipeline Execution State Change",
        "CodePipeline Stage Execution State Change",
        "CodePipeline Action Execution State Change",
    )
    source_type = {"owner": "AWS", "category": "Source", "provider": "CodeStarSourceConnection", "version": "1"}
    deploy_type = {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": "1"}
    event(p, "2024-05-01T10:00:00Z", state="STARTED")
    event(s, "2024-05-01T10:00:00Z", stage="Source", state="STARTED")
    event(a, "2024-05-01T10:00:01Z", stage="Source", action="Checkout", state="STARTED", type=source_type)
    event(
        a,
        "2024-05-01T10:00:30Z",
        stage="Source",
        action="Checkout",
        state="SUCCEEDED",
        type=source_type,
        **{"execution-result": {"external-execution-id": SHA, "external-execution-summary": "fix"}},
    )
    event(s, "2024-05-01T10:00:30Z", stage="Source", state="SUCCEEDED")
    event(s, "2024-05-01T10:01:00Z", stage="Prod", state="STARTED")
    event(a, "2024-05-01T10:01:00Z", stage="Prod", action="Deploy", state="STARTED", type=deploy_type)
    event(a, "2024-05-01T10:05:00Z", stage="Prod", action="Deploy", state="FAILED", type=deploy_type)
    event(s, "2024-05-01T10:05:00Z", stage="Prod", state="FAILED")
    event(p, "2024-05-01T10:05:00Z", state="FAILED")
    event(p, "2024-05-01T10:20:00Z", state="RESUMED")
    event(s, "2024-05-01T10:20:00Z", stage="Prod", state="RESUMED")
    event(a, "2024-05-01T10:20:01Z", stage="Prod", action="Deploy", state="STARTED", type=deploy_type)
    event(a, "2024-05-01T10:24:00Z", stage="Prod", action="Deploy", state="SUCCEEDED", type=deploy_type)
    event(s, "2024-05-01T10:24:00Z", stage="Prod", state="SUCCEEDED")
    event(p, "2024-05-01T10:24:00Z", state="SUCCEEDED")
    return events


def github_stream() -> list[tuple[dict, str | None]]:
    deployment = json.loads(fixture_path("github/deployment.json").read_text())
    status = json.loads(fixture_path("github/deployment_status.json").read_text())
    in_progress = copy.deepcopy(status)
    in_progress["deployment_status"].update(
        id=209916250, state="in_progress", created_at="2019-05-15T15:20:54Z", updated_at="2019-05-15T15:20:54Z"
    )
    return [(deployment, "deployment"), (in_progress, "deployment_status"), (status, "deployment_status")]


def pagerduty_stream() -> list[tuple[dict, str | None]]:
    base = json.loads(fixture_path("incidents/pagerduty.incident.triggered.v3.json").read_text())
    out = []
    for n, (kind, at) in enumerate(
        (
            ("incident.triggered", "2024-05-01T10:30:00Z"),
            ("incident.acknowledged", "2024-05-01T10:34:00Z"),
            ("incident.resolved", "2024-05-01T11:10:00Z"),
        )
    ):
        event = copy.deepcopy(base)
        event["event"].update(id=f"01EVENT{n}", event_type=kind, occurred_at=at)
        event["event"]["data"]["status"] = kind.split(".")[1]
        out.append((event, None))
    return out


def generic_stream() -> list[tuple[dict, str | None]]:
    dep = {
        "type": "deployment",
        "id": "gen-1",
        "service": "search",
        "environment": "production",
        "started_at": "2024-05-02T09:00:00Z",
        "commits": ["c0ffee1234"],
    }
    return [
        (dict(dep, status="in_progress"), None),
        (dict(dep, status="success", finished_at="2024-05-02T09:07:00Z"), None),
        ({"type": "change", "id": "c0ffee1234", "service": "search", "committed_at": "2024-05-01T17:00:00Z"}, None),
        ({"type": "incident", "id": "gen-inc", "service": "search", "opened_at": "2024-05-02T10:00:00Z"}, None),
        (
            {
                "type": "incident",
                "id": "gen-inc",
                "service": "search",
                "opened_at": "2024-05-02T10:00:00Z",
                "resolved_at": "2024-05-02T10:45:00Z",
            },
            None,
        ),
    ]


def cloudwatch_stream() -> list[tuple[dict, str | None]]:
    """An alarm entering ALARM, leaving it, and entering it again (from the published sample)."""
    events = json.loads(fixture_path("aws/cloudwatch-alarm-state-change.published.json").read_text())
    entering = events[0]
    leaving = copy.deepcopy(entering)
    leaving["id"] = "c4c1c1c9-6542-e61b-6ef0-000000000001"
    leaving["detail"]["previousState"] = copy.deepcopy(entering["detail"]["state"])
    leaving["detail"]["state"] = {"reason": "back", "timestamp": "2019-10-02T17:30:00.000+0000", "value": "OK"}
    again = copy.deepcopy(entering)
    again["id"] = "c4c1c1c9-6542-e61b-6ef0-000000000002"
    again["detail"]["previousState"] = copy.deepcopy(leaving["detail"]["state"])
    again["detail"]["state"]["timestamp"] = "2019-10-02T18:00:00.000+0000"
    return [(entering, None), (leaving, None), (again, None)]


def codecommit_stream() -> list[tuple[dict, str | None]]:
    """A branch push and the pushed commit as `collect codecommit` archives it."""
    push = json.loads(fixture_path("aws/codecommit-repository-state-change.published.json").read_text())[1]
    answer = json.loads(fixture_path("aws/codecommit-get-commit.published.json").read_text())
    push["detail"]["commitId"] = answer["commit"]["commitId"]
    commit = {"repositoryName": "MyDemoRepo", "branch": "main", "commitId": answer["commit"]["commitId"], **answer}
    return [(push, None), (commit, None)]


STREAM = (
    codepipeline_stream()
    + github_stream()
    + pagerduty_stream()
    + generic_stream()
    + cloudwatch_stream()
    + codecommit_stream()
)


def envelopes(items):
    return [ingest.Envelope(json.dumps(p), p, None, hint, f"#{i}") for i, (p, hint) in enumerate(items)]


def reset(engine) -> None:
    with write_transaction(engine) as conn:
        for table in (*PROJECTION_TABLES, raw_events):
            conn.execute(delete(table))


def test_the_stream_covers_every_projection(engine, config):
    summary = ingest.ingest(engine, envelopes(STREAM), config)
    assert summary.quarantined == [] and summary.stored == len(STREAM)
    rows = dump_projections(engine)
    for table in (
        "pipeline_runs",
        "stage_runs",
        "action_runs",
        "deployments",
        "deployment_changes",
        "changes",
        "incidents",
        "alarms",
    ):
        assert rows[table], f"the stream should project into {table}"
    by_id = {r["id"]: r for r in rows["stage_runs"]}
    prod = by_id[f"codepipeline:{PIPELINE}:{EXECUTION}:stage:Prod"]
    assert prod["status"] == "succeeded" and prod["failed_once"] is True
    (pd,) = [r for r in rows["incidents"] if r["source"] == "pagerduty"]
    assert pd["status"] == "resolved" and pd["acknowledged_at"] is not None
    assert sorted(a["status"] for a in rows["alarms"]) == ["alarm", "resolved"]
    (pushed,) = [c for c in rows["changes"] if c["repository"] == "MyDemoRepo"]
    assert pushed["committed_at"] is not None and pushed["merged_at"] is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_any_duplicates_any_batching_gives_the_same_rows(engine, config, data):
    reset(engine)
    ingest.ingest(engine, envelopes(STREAM), config)
    expected = dump_projections(engine)
    reset(engine)

    order = data.draw(st.permutations(range(len(STREAM))), label="order")
    dupes = data.draw(st.lists(st.integers(0, len(STREAM) - 1), max_size=len(STREAM)), label="duplicates")
    arrival = [STREAM[i] for i in order]
    for position, i in enumerate(dupes):
        arrival.insert((position * 7) % (len(arrival) + 1), STREAM[i])
    batch = data.draw(st.integers(1, len(arrival)), label="batch size")
    total = ingest.IngestSummary()
    for start in range(0, len(arrival), batch):
        total.add(ingest.ingest(engine, envelopes(arrival[start : start + batch]), config))
    assert total.stored == len(STREAM) and total.duplicates == len(dupes) and total.quarantined == []
    assert dump_projections(engine) == expected
