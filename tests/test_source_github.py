"""GitHub webhooks through the one ingest path: the published samples give the rows we expect, in
any order, with or without the X-GitHub-Event hint, and bad payloads are quarantined by field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from collector import ingest
from collector.config import config_from_mapping
from collector.models import raw_events
from collector.sources import detect, github
from tests.conftest import dump_projections, fixture_path

SAMPLES = [
    "check_suite.completed",
    "deployment",
    "deployment.with-installation",
    "deployment_status",
    "deployment_status.with-installation",
    "issues.labeled",
    "issues.opened",
    "pull_request.closed",
    "pull_request.opened",
    "push",
    "push.with-organization",
    "workflow_job.completed.failure.with-organization",
    "workflow_job.completed.success.with-organization",
    "workflow_job.in_progress",
    "workflow_job.queued.with-deployment",
    "workflow_run.completed",
    "workflow_run.completed.with-pull-requests",
    "workflow_run.requested",
]
RUN = "github:octo-org/octo-repo:run:289782451"
DEPLOYMENT = "github:Codertocat/Hello-World:deployment:145988746"
DEPLOYED_SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
JOB = "github:Codertocat/Hello-World:run:2202229078:job:289782451"


def load(name: str) -> dict:
    return json.loads(fixture_path(f"github/{name}.json").read_text(encoding="utf-8"))


def event_of(name: str) -> str:
    return name.split(".", 1)[0]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sample(name: str) -> tuple[str, dict]:
    """(X-GitHub-Event, payload) of a sample."""
    return event_of(name), load(name)


def feed(engine, config, *events: tuple[str, dict], hint: bool = True):
    """Ingest each (event, payload) in its own call, so rows merge in the store as webhooks arrive;
    with `hint` the event name travels as the X-GitHub-Event header, else it is read from the body."""
    return [
        ingest.ingest_payloads(engine, [payload], config, hint=event if hint else None) for event, payload in events
    ]


def rows_by_id(engine, table: str) -> dict[str, dict]:
    return {row["id"]: row for row in dump_projections(engine)[table]}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_is_recognised_with_and_without_the_event_header(name):
    payload = load(name)
    assert detect(payload, None) == ("github", event_of(name))
    assert detect(payload, event_of(name)) == ("github", event_of(name))


@pytest.mark.parametrize(
    "payload",
    [
        json.loads(fixture_path("gitlab/deployment_hook.succeeded.json").read_text()),
        json.loads(fixture_path("incidents/pagerduty.incident.triggered.v3.json").read_text()),
        {"type": "deployment", "id": "d1", "service": "api", "repository": "octo/api"},
        {"hello": "world"},
    ],
    ids=["gitlab", "pagerduty", "generic", "unknown"],
)
def test_other_sources_payloads_are_not_claimed(payload):
    assert github.detect(payload, None) is None
    assert github.detect(payload, "push") is None


def test_the_samples_all_ingest_and_replay_to_the_same_rows(engine, config):
    summary = ingest.ingest_payloads(engine, [load(n) for n in SAMPLES], config)
    assert (summary.stored, summary.quarantined) == (len(SAMPLES), [])
    assert dict(summary.by_source) == {"github": len(SAMPLES)}
    # check suite, both tag deletions, both unmerged pull requests, both issues labelled only "bug"
    assert summary.ignored == 7
    before = dump_projections(engine)
    # three job samples share one job id; their steps are numbered 1-8, 12-17 between them
    assert {t: len(r) for t, r in before.items() if r} == {
        "pipeline_runs": 1,
        "stage_runs": 2,
        "action_runs": 14,
        "deployments": 2,
        "deployment_changes": 2,
    }
    replayed = ingest.replay(engine, config)
    assert replayed.still_quarantined == 0 and dump_projections(engine) == before
    with engine.connect() as conn:
        kinds = sorted(conn.execute(select(raw_events.c.kind).distinct()).scalars())
    assert kinds == sorted({event_of(n) for n in SAMPLES})


@pytest.mark.parametrize("hint", [True, False], ids=["header", "shape"])
@pytest.mark.parametrize("order", ["requested-first", "completed-first"])
def test_workflow_run_projects_to_one_run_whatever_the_order(engine, config, hint, order):
    requested, completed = sample("workflow_run.requested"), sample("workflow_run.completed")
    feed(engine, config, *([requested, completed] if order == "requested-first" else [completed, requested]), hint=hint)
    (run,) = dump_projections(engine)["pipeline_runs"]
    assert run == {
        "id": RUN,
        "source": "github",
        "pipeline": "test",  # the run's name is "": the workflow's name
        "service": "octo-repo",
        "revision": "3484a3fb816e0859fd6e1cea078d76385ff50625",
        "branch": "master",
        "trigger": "repository_dispatch",
        "url": "https://github.com/octo-org/octo-repo/actions/runs/289782451",
        "status": "succeeded",
        "status_at": utc("2020-10-05T16:33:49"),
        "queued_at": utc("2020-10-05T16:33:24"),
        "started_at": utc("2020-10-05T16:33:49"),
        "finished_at": utc("2020-10-05T16:33:49"),
        "attempt": 1,
        "is_rollback": None,
    }


def test_a_requested_run_is_queued_and_unfinished(engine, config):
    feed(engine, config, sample("workflow_run.requested"))
    (run,) = dump_projections(engine)["pipeline_runs"]
    assert (run["status"], run["status_at"], run["finished_at"]) == ("queued", utc("2020-10-05T16:33:24"), None)


CONCLUSIONS = {
    "success": "succeeded",
    "neutral": "succeeded",
    "failure": "failed",
    "timed_out": "failed",
    "startup_failure": "failed",
    "cancelled": "canceled",
    "skipped": "canceled",
    "stale": "canceled",
    "action_required": "queued",
}


def test_conclusions_map_to_canonical_statuses(engine, config):
    payloads = []
    for i, conclusion in enumerate(CONCLUSIONS):
        payload = load("workflow_run.completed")
        payload["workflow_run"].update(
            id=1000 + i, conclusion=conclusion, run_attempt=2, path=".github/workflows/deploy.yml"
        )
        payload["workflow_run"].pop("name")
        payload.pop("workflow")  # no name anywhere: the workflow file names the pipeline
        payloads.append(payload)
    assert ingest.ingest_payloads(engine, payloads, config).quarantined == []
    runs = rows_by_id(engine, "pipeline_runs")
    for i, (conclusion, expected) in enumerate(CONCLUSIONS.items()):
        run = runs[f"github:octo-org/octo-repo:run:{1000 + i}"]
        finished = None if expected == "queued" else utc("2020-10-05T16:33:49")
        assert (conclusion, run["status"], run["finished_at"], run["attempt"], run["pipeline"]) == (
            conclusion,
            expected,
            finished,
            2,
            ".github/workflows/deploy.yml",
        )


def test_a_failed_job_and_its_steps(engine, config):
    feed(engine, config, sample("workflow_job.completed.failure.with-organization"))
    (stage,) = dump_projections(engine)["stage_runs"]
    assert stage == {
        "id": JOB,
        "pipeline_run_id": "github:Codertocat/Hello-World:run:2202229078",
        "name": "linters",
        "category": "test",
        "status": "failed",
        "status_at": utc("2021-08-05T10:38:16"),
        "queued_at": utc("2021-08-05T10:33:58"),
        "started_at": utc("2021-08-05T10:34:58"),
        "finished_at": utc("2021-08-05T10:38:16"),
        "attempt": 1,
        "failed_once": True,
    }
    steps = rows_by_id(engine, "action_runs")
    assert sorted(steps) == sorted(f"{JOB}:step:{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17))
    failed = steps[f"{JOB}:step:8"]
    assert (
        failed["name"],
        failed["category"],
        failed["status"],
        failed["failed_once"],
        failed["started_at"],
        failed["finished_at"],
        failed["stage_run_id"],
        failed["provider"],
    ) == (
        "Run yarn run format-check",
        "test",
        "failed",
        True,
        utc("2021-08-05T10:26:27"),
        utc("2021-08-05T10:26:28"),
        JOB,
        "github-actions",
    )
    skipped = steps[f"{JOB}:step:14"]
    assert (skipped["status"], skipped["failed_once"]) == ("canceled", False)
    checkout = steps[f"{JOB}:step:2"]
    assert (checkout["category"], checkout["status"], checkout["status_at"]) == (
        "source",
        "succeeded",
        utc("2021-08-05T10:26:12"),
    )


def test_a_late_in_progress_job_event_does_not_undo_its_completion(engine, config):
    completed = load("workflow_job.completed.failure.with-organization")
    running = copy.deepcopy(completed)
    running["action"] = "in_progress"
    running["workflow_job"].update(status="in_progress", conclusion=None, completed_at=None)
    running["workflow_job"]["steps"] = [
        dict(completed["workflow_job"]["steps"][0], status="in_progress", conclusion=None, completed_at=None)
    ]
    feed(engine, config, ("workflow_job", completed), ("workflow_job", running))
    late = dump_projections(engine)
    (stage,) = late["stage_runs"]
    assert (stage["status"], stage["finished_at"]) == ("failed", utc("2021-08-05T10:38:16"))
    step = rows_by_id(engine, "action_runs")[f"{JOB}:step:1"]
    assert (step["status"], step["finished_at"]) == ("succeeded", utc("2021-08-05T10:26:11"))


def test_an_in_progress_job_is_running_and_unfinished(engine, config):
    feed(engine, config, sample("workflow_job.in_progress"), hint=False)
    (stage,) = dump_projections(engine)["stage_runs"]
    assert (
        stage["name"],
        stage["category"],
        stage["status"],
        stage["status_at"],
        stage["started_at"],
        stage["finished_at"],
        stage["failed_once"],
    ) == (
        "Analyze (javascript)",
        "test",
        "in_progress",
        utc("2021-09-13T02:21:13"),
        utc("2021-09-13T02:21:13"),
        None,
        False,
    )
    (step,) = dump_projections(engine)["action_runs"]
    assert (step["name"], step["status"], step["started_at"], step["finished_at"]) == (
        "Set up job",
        "in_progress",
        utc("2021-09-13T02:21:13"),
        None,
    )


def test_a_waiting_job_records_its_deployment_linked_to_the_run(engine, config):
    feed(engine, config, sample("workflow_job.queued.with-deployment"))
    rows = dump_projections(engine)
    run_key = "github:lineville/elastic-machines-testing:run:4747967848"
    (stage,) = rows["stage_runs"]
    # a queued job's started_at is GitHub's placeholder (= created_at): not a start
    assert (stage["id"], stage["status"], stage["queued_at"], stage["started_at"]) == (
        f"{run_key}:job:12877621891",
        "queued",
        utc("2023-04-19T21:12:12"),
        None,
    )
    (deployment,) = rows["deployments"]
    assert deployment == {
        "id": "github:lineville/elastic-machines-testing:deployment:875096709",
        "source": "github",
        "service": "elastic-machines-testing",
        "team": None,
        "environment": "Test",
        "production": False,
        "status": "pending",
        "status_at": utc("2023-04-19T21:12:12"),
        "started_at": utc("2023-04-19T21:12:12"),
        "finished_at": None,
        "version": None,
        "revision": "16c5286e8d9a0629956a28938386b36608707a71",
        "pipeline_run_id": run_key,
        "rollback_of": None,
        "is_rollback": False,
        "hotfix": False,
        "url": "https://api.github.com/repos/lineville/elastic-machines-testing/deployments/875096709",
    }
    assert [(r["deployment_id"], r["change_id"]) for r in rows["deployment_changes"]] == [
        (deployment["id"], "16c5286e8d9a0629956a28938386b36608707a71")
    ]


TEAM_CONFIG = {"teams": {"hello": "docs-team"}, "services": {"repositories": {"Codertocat/Hello-World": "hello"}}}


@pytest.mark.parametrize("hint", [True, False], ids=["header", "shape"])
def test_deployment_and_its_status_give_the_same_row_in_either_order(engine, tmp_path, hint):
    config = config_from_mapping(TEAM_CONFIG, environ={})
    feed(engine, config, sample("deployment"), sample("deployment_status"), hint=hint)
    rows = dump_projections(engine)
    (deployment,) = rows["deployments"]
    assert deployment == {
        "id": DEPLOYMENT,
        "source": "github",
        "service": "hello",
        "team": "docs-team",
        "environment": "production",
        "production": True,
        "status": "success",
        "status_at": utc("2019-05-15T15:20:55"),
        "started_at": utc("2019-05-15T15:20:53"),
        "finished_at": utc("2019-05-15T15:20:55"),
        "version": None,
        "revision": DEPLOYED_SHA,
        "pipeline_run_id": None,
        "rollback_of": None,
        "is_rollback": False,
        "hotfix": False,
        "url": "https://api.github.com/repos/Codertocat/Hello-World/deployments/145988746",
    }
    assert [(r["id"], r["deployment_id"], r["change_id"]) for r in rows["deployment_changes"]] == [
        (f"{DEPLOYMENT}|{DEPLOYED_SHA}", DEPLOYMENT, DEPLOYED_SHA)
    ]
    from collector.db import create_store_engine, upgrade

    other = create_store_engine(f"sqlite:///{tmp_path / 'reversed.db'}")
    upgrade(other)
    feed(other, config, sample("deployment_status"), sample("deployment"), hint=hint)
    assert dump_projections(other) == rows
    other.dispose()


def status_event(state: str, at: str) -> tuple[str, dict]:
    payload = load("deployment_status")
    payload["deployment_status"].update(state=state, created_at=at, updated_at=at)
    return "deployment_status", payload


@pytest.mark.parametrize("order", ["inactive-last", "inactive-first"])
def test_inactive_does_not_undo_a_success(engine, config, order):
    success, inactive = sample("deployment_status"), status_event("inactive", "2019-05-16T09:00:00Z")
    feed(
        engine,
        config,
        *(
            [sample("deployment"), success, inactive]
            if order == "inactive-last"
            else [inactive, sample("deployment"), success]
        ),
    )
    (deployment,) = dump_projections(engine)["deployments"]
    assert (deployment["status"], deployment["status_at"], deployment["finished_at"]) == (
        "success",
        utc("2019-05-15T15:20:55"),
        utc("2019-05-15T15:20:55"),
    )


@pytest.mark.parametrize(
    "state, status, finished",
    [
        ("failure", "failure", True),
        ("error", "failure", True),
        ("in_progress", "in_progress", False),
        ("queued", "pending", False),
        ("pending", "pending", False),
    ],
)
def test_deployment_states_map_to_canonical_statuses(engine, config, state, status, finished):
    feed(engine, config, sample("deployment"), status_event(state, "2019-05-15T15:25:00Z"))
    (deployment,) = dump_projections(engine)["deployments"]
    at = utc("2019-05-15T15:25:00")
    assert (deployment["status"], deployment["status_at"], deployment["finished_at"]) == (
        status,
        at,
        at if finished else None,
    )


@pytest.mark.parametrize(
    "release",
    [
        {"version": "1.4.1", "hotfix": True, "rollback_of": "145988700"},
        json.dumps(
            {"version": 141, "hotfix": "yes", "rollback_of": "github:Codertocat/Hello-World:deployment:145988700"}
        ),
    ],
    ids=["object", "json-text"],
)
def test_release_facts_come_from_the_deployment_payload(engine, config, release):
    payload = load("deployment")
    payload["deployment"]["payload"] = release
    payload["deployment"]["environment"] = "staging"
    feed(engine, config, ("deployment", payload))
    (deployment,) = dump_projections(engine)["deployments"]
    assert (
        deployment["version"],
        deployment["hotfix"],
        deployment["rollback_of"],
        deployment["is_rollback"],
        deployment["production"],
    ) == (
        "1.4.1" if isinstance(release, dict) else "141",
        True,
        "github:Codertocat/Hello-World:deployment:145988700",
        True,
        False,
    )


@pytest.mark.parametrize(
    ("environment", "flag", "production"),
    [
        ("prod", False, True),  # GitHub's false means "not marked", not "not production"
        ("Live", False, True),
        ("eu-checkout", False, True),  # a configured name
        ("eu-checkout", None, True),
        ("staging", True, True),  # the repository marked it production
        ("staging", False, False),
        ("staging", None, False),
    ],
)
def test_production_is_the_payloads_flag_or_a_configured_environment_name(engine, environment, flag, production):
    config = config_from_mapping(
        {"production": {"environments": ["production", "prod", "live", "eu-checkout"]}}, environ={}
    )
    payload = load("deployment")
    payload["deployment"]["environment"] = environment
    if flag is None:
        payload["deployment"].pop("production_environment", None)
    else:
        payload["deployment"]["production_environment"] = flag
    feed(engine, config, ("deployment", payload))
    (deployment,) = dump_projections(engine)["deployments"]
    assert (deployment["environment"], deployment["production"]) == (environment, production)


def test_a_branch_push_records_its_commits_and_the_deployment_links_to_one(engine, config):
    summaries = feed(engine, config, sample("push.branch"), sample("deployment"), hint=False)
    assert [s.stored for s in summaries] == [1, 1]
    changes = rows_by_id(engine, "changes")
    assert changes == {
        "2a1c6f0e8b9d4c3e1f7a5b6c8d9e0f1a2b3c4d5e": {
            "id": "2a1c6f0e8b9d4c3e1f7a5b6c8d9e0f1a2b3c4d5e",
            "service": "Hello-World",
            "repository": "Codertocat/Hello-World",
            "committed_at": utc("2019-05-15T15:18:30"),
            "merged_at": None,
            "pr": None,
            "author": "Ada Lovelace",
            "title": "Fix a typo in the README",
            "pushed_head": DEPLOYED_SHA,
        },
        DEPLOYED_SHA: {
            "id": DEPLOYED_SHA,
            "service": "Hello-World",
            "repository": "Codertocat/Hello-World",
            "committed_at": utc("2019-05-15T15:20:12"),
            "merged_at": None,
            "pr": None,
            "author": "Codertocat",
            "title": "Update the README with new information.",
            "pushed_head": DEPLOYED_SHA,
        },
    }
    (link,) = dump_projections(engine)["deployment_changes"]
    assert link["change_id"] in changes


@pytest.mark.parametrize(
    "name",
    [
        "push",
        "push.with-organization",
        "pull_request.opened",
        "pull_request.closed",
        "check_suite.completed",
        "issues.opened",
        "issues.labeled",
    ],
)
def test_events_with_nothing_to_project_are_archived_and_ignored(engine, config, name):
    (summary,) = feed(engine, config, sample(name))
    assert (summary.stored, summary.ignored, summary.quarantined) == (1, 1, [])
    assert all(not rows for rows in dump_projections(engine).values())


def merged(pr: dict, sha: str | None = None, at: str = "2019-05-15T15:21:18Z") -> dict:
    pr["pull_request"].update(merged=True, merged_at=at)
    if sha:
        pr["pull_request"]["merge_commit_sha"] = sha
    return pr


def test_a_merged_pull_request_records_its_merge_commit(engine, config):
    feed(engine, config, ("pull_request", merged(load("pull_request.closed"))))
    (change,) = dump_projections(engine)["changes"]
    assert change == {
        "id": "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
        "service": "Hello-World",
        "repository": "Codertocat/Hello-World",
        "committed_at": None,
        "merged_at": utc("2019-05-15T15:21:18"),
        "pr": 2,
        "author": "Codertocat",
        "title": "Update the README with new information.",
        "pushed_head": None,
    }


@pytest.mark.parametrize("order", ["push-first", "merge-first"])
def test_push_and_merge_of_the_same_commit_make_one_change(engine, config, order):
    pr = ("pull_request", merged(load("pull_request.closed"), DEPLOYED_SHA, "2019-05-15T15:20:30Z"))
    push = sample("push.branch")
    feed(engine, config, *([push, pr] if order == "push-first" else [pr, push]))
    change = rows_by_id(engine, "changes")[DEPLOYED_SHA]
    assert (
        change["committed_at"],
        change["merged_at"],
        change["pr"],
        change["author"],
        change["title"],
        change["pushed_head"],
    ) == (
        utc("2019-05-15T15:20:12"),
        utc("2019-05-15T15:20:30"),
        2,
        "Codertocat",
        "Update the README with new information.",
        DEPLOYED_SHA,
    )


def as_incident(name: str, *labels: str) -> dict:
    payload = load(name)
    payload["issue"]["labels"] += [
        dict(payload["issue"]["labels"][0], name=label, id=i) for i, label in enumerate(labels)
    ]
    return payload


def closed(payload: dict, at: str) -> dict:
    payload = copy.deepcopy(payload)
    payload["action"] = "closed"
    payload["issue"].update(state="closed", closed_at=at, updated_at=at)
    return payload


@pytest.mark.parametrize("order", ["opened-first", "closed-first"])
def test_an_incident_labelled_issue_is_an_incident_until_closed(engine, config, order):
    opened = ("issues", as_incident("issues.labeled", "incident", "severity:High"))
    done = ("issues", closed(opened[1], "2019-05-15T16:05:00Z"))
    feed(engine, config, *([opened, done] if order == "opened-first" else [done, opened]))
    (incident,) = dump_projections(engine)["incidents"]
    assert incident == {
        "id": "github:Codertocat/Hello-World:issue:1",
        "source": "github",
        "service": "Hello-World",
        "title": "Spelling error in the README file",
        "severity": "high",
        "status": "resolved",
        "status_at": utc("2019-05-15T16:05:00"),
        "opened_at": utc("2019-05-15T15:20:18"),
        "acknowledged_at": None,
        "resolved_at": utc("2019-05-15T16:05:00"),
        "deployment_id": None,
        "url": "https://github.com/Codertocat/Hello-World/issues/1",
    }


def test_an_open_incident_with_a_custom_label_and_sev_label(engine):
    config = config_from_mapping({"incident_label": "Outage"}, environ={})
    feed(engine, config, ("issues", as_incident("issues.opened", "incident")))  # not the configured label
    assert dump_projections(engine)["incidents"] == []
    feed(engine, config, ("issues", as_incident("issues.opened", "outage", "severe-bug", "SEV-1")))
    (incident,) = dump_projections(engine)["incidents"]
    assert (incident["status"], incident["status_at"], incident["resolved_at"], incident["severity"]) == (
        "triggered",
        utc("2019-05-15T15:20:18"),
        None,
        "sev1",
    )


def test_reopening_an_incident_triggers_it_again(engine, config):
    opened = as_incident("issues.opened", "incident")
    reopened = copy.deepcopy(opened)
    reopened["action"] = "reopened"
    reopened["issue"]["updated_at"] = "2019-05-15T17:00:00Z"
    feed(engine, config, *(("issues", p) for p in (closed(opened, "2019-05-15T16:05:00Z"), reopened, opened)))
    (incident,) = dump_projections(engine)["incidents"]
    assert (incident["status"], incident["status_at"], incident["resolved_at"]) == (
        "triggered",
        utc("2019-05-15T17:00:00"),
        None,
    )


def test_a_ping_is_recognised_and_ignored(engine, config):
    ping = {
        "zen": "Keep it logically awesome.",
        "hook_id": 109948940,
        "hook": {"type": "Repository", "id": 109948940, "events": ["*"]},
        "repository": load("push")["repository"],
    }
    assert github.detect(ping, None) == "ping"
    (summary,) = feed(engine, config, ("ping", ping))
    assert (summary.stored, summary.ignored, dict(summary.by_source)) == (1, 1, {"github": 1})


def broken(name: str, change) -> tuple[str, dict]:
    payload = load(name)
    change(payload)
    return event_of(name), payload


@pytest.mark.parametrize("hint", [True, False], ids=["header", "shape"])
@pytest.mark.parametrize(
    "event, field, expected",
    [
        (
            broken("workflow_run.completed", lambda p: p["workflow_run"].pop("id")),
            "workflow_run.id",
            "an integer (required)",
        ),
        (
            broken("workflow_run.completed", lambda p: p["workflow_run"].update(updated_at="yesterday")),
            "workflow_run.updated_at",
            "an ISO 8601 timestamp such as",
        ),
        (
            broken("workflow_run.completed", lambda p: p["workflow_run"].update(conclusion="exploded")),
            "workflow_run.conclusion",
            "one of success, neutral, failure",
        ),
        (
            broken("workflow_job.in_progress", lambda p: p["workflow_job"]["steps"][0].update(number="first")),
            "workflow_job.steps.0.number",
            "an integer",
        ),
        (
            broken(
                "workflow_job.completed.success.with-organization",
                lambda p: p["workflow_job"].update(completed_at=None),
            ),
            "workflow_job.completed_at",
            "required",
        ),
        (
            broken("deployment_status", lambda p: p["deployment_status"].update(state="exploded")),
            "deployment_status.state",
            "one of success, failure, error",
        ),
        (
            broken("deployment", lambda p: p["deployment"].update(payload={"hotfix": "maybe"})),
            "deployment.payload.hotfix",
            "a boolean",
        ),
        (
            broken("push.branch", lambda p: p["commits"][1].update(timestamp="15 May")),
            "commits.1.timestamp",
            "an ISO 8601 timestamp",
        ),
        (
            broken(
                "issues.opened",
                lambda p: p["issue"].update(state="closed", closed_at=None, labels=[{"name": "incident"}]),
            ),
            "issue.closed_at",
            "required",
        ),
    ],
    ids=[
        "run-without-id",
        "bad-timestamp",
        "unknown-conclusion",
        "step-number",
        "completed-without-time",
        "deployment-state",
        "hotfix",
        "commit-timestamp",
        "closed-without-time",
    ],
)
def test_malformed_payloads_are_quarantined_with_the_field_named(engine, config, hint, event, field, expected):
    (summary,) = feed(engine, config, event, hint=hint)
    payload = event[1]
    (q,) = summary.quarantined
    assert q.source == "github" and q.error.startswith(f"field '{field}': expected") and expected in q.error
    with engine.connect() as conn:
        (row,) = conn.execute(select(raw_events)).mappings().all()
    assert (row["status"], row["error"], json.loads(row["payload"])) == ("quarantined", q.error, payload)
    assert all(not rows for rows in dump_projections(engine).values())


def test_a_body_that_does_not_match_its_event_header_is_quarantined(engine, config):
    envelope = ingest.Envelope(fixture_path("github/push.branch.json").read_text(), hint="workflow_run", origin="hook")
    summary = ingest.ingest(engine, [envelope], config)
    (q,) = summary.quarantined
    assert (q.origin, q.kind, q.error) == (
        "hook",
        "workflow_run",
        "field 'workflow_run.id': expected an integer (required)",
    )
