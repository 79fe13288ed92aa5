"""CodeCommit "Repository State Change" events and GetCommit answers (the published samples) into
`changes`: a pushed branch head, and a commit with its committer time, which a deployment's lead time uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from collector import ingest
from collector.models import deployment_contents
from tests.conftest import dump_projections, fixture_path

PUSHED_AT = datetime(2019, 6, 12, 10, 23, 43, tzinfo=UTC)
COMMITTED_AT = datetime(2017, 1, 11, 20, 49, 58, tzinfo=UTC)  # 1484167798, whatever the -0800 offset


def published_events() -> list[dict]:
    """The referenceCreated, referenceUpdated and referenceDeleted samples; they share the placeholder id
    `01234567-EXAMPLE`, which EventBridge never repeats for different events, so each gets its own."""
    events = json.loads(fixture_path("aws/codecommit-repository-state-change.published.json").read_text())
    for n, event in enumerate(events):
        event["id"] = f"01234567-EXAMPLE-{n}"
    return events


def get_commit(repository: str = "MyDemoRepo") -> dict:
    """The published GetCommit answer as `collect codecommit` archives it."""
    answer = json.loads(fixture_path("aws/codecommit-get-commit.published.json").read_text())
    commit = answer["commit"]
    return {"repositoryName": repository, "branch": "main", "commitId": commit["commitId"], "commit": commit}


def changes(engine) -> dict[str, dict]:
    return {row["id"]: row for row in dump_projections(engine)["changes"]}


def test_branch_pushes_become_pushed_heads(engine, config):
    summary = ingest.ingest_payloads(engine, published_events(), config)
    assert summary.quarantined == [] and summary.by_source == {"codecommit": 3}
    rows = changes(engine)
    assert set(rows) == {"3e5983DESTINATION", "7f0103fMERGE"}  # created and updated; the deletion gives nothing
    merge = rows["7f0103fMERGE"]
    assert (merge["service"], merge["repository"], merge["pushed_head"], merge["merged_at"]) == (
        "MyDemoRepo",
        "MyDemoRepo",
        "7f0103fMERGE",
        PUSHED_AT,
    )
    assert merge["committed_at"] is None  # the event carries no commit time


def test_tags_and_pull_request_events_are_archived_only(engine, config):
    (tag,) = published_events()[:1]
    tag["detail"].update(referenceType="tag", referenceName="v1.0", referenceFullName="refs/tags/v1.0")
    pull_request = dict(published_events()[0], id="98377d67-EXAMPLE")
    pull_request["detail-type"] = "CodeCommit Pull Request State Change"
    summary = ingest.ingest_payloads(engine, [tag, pull_request], config)
    assert summary.quarantined == [] and summary.stored == 2
    assert changes(engine) == {}


def test_an_api_commit_gives_its_committer_time_in_utc(engine, config):
    summary = ingest.ingest_payloads(engine, [get_commit()], config)
    assert summary.quarantined == [] and summary.by_source == {"codecommit": 1}
    (row,) = changes(engine).values()
    assert (row["id"], row["committed_at"], row["author"], row["title"], row["pushed_head"]) == (
        "12345678EXAMPLE",
        COMMITTED_AT,
        "Mary Major",
        "Fix incorrect variable name",
        "12345678EXAMPLE",
    )


def test_a_pushed_head_and_its_commit_record_merge_and_give_a_deployment_its_lead_time(engine, config):
    commit = get_commit()
    push = published_events()[1]
    push["detail"]["commitId"] = commit["commitId"]
    deployment = {
        "type": "deployment",
        "id": "dep-1",
        "service": "MyDemoRepo",
        "environment": "production",
        "status": "success",
        "started_at": "2019-06-12T11:00:00Z",
        "finished_at": "2019-06-12T11:10:00Z",
        "commits": [commit["commitId"]],
    }
    summary = ingest.ingest_payloads(engine, [deployment, push, commit], config)
    assert summary.quarantined == []
    (row,) = changes(engine).values()
    assert (row["committed_at"], row["merged_at"]) == (COMMITTED_AT, PUSHED_AT)
    with engine.connect() as conn:
        held = conn.execute(select(deployment_contents)).mappings().all()
    assert [(h["deployment_id"], h["change_id"], h["committed_at"]) for h in held] == [
        ("dep-1", "12345678EXAMPLE", COMMITTED_AT)
    ]


@pytest.mark.parametrize("date", ["2017-01-11T20:49:58Z", "1484167798", "soon -0800"])
def test_a_commit_date_not_in_codecommit_form_is_quarantined_with_the_field_named(engine, config, date):
    commit = get_commit()
    commit["commit"]["committer"]["date"] = date
    (q,) = ingest.ingest_payloads(engine, [commit], config).quarantined
    assert q.error.startswith("field 'commit.committer.date': expected epoch seconds and a UTC offset"), q.error
    assert changes(engine) == {}


def test_a_push_without_its_head_is_quarantined(engine, config):
    event = published_events()[1]
    del event["detail"]["commitId"]
    (q,) = ingest.ingest_payloads(engine, [event], config).quarantined
    assert q.source == "codecommit" and q.error.startswith("field 'detail.commitId'"), q.error
