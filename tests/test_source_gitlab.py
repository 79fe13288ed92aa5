"""GitLab webhooks through the one ingest path: pipeline, job, deployment and push hooks (real
samples from zulip/zulip) give the rows we expect in any order, with or without X-Gitlab-Event."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from collector import ingest
from collector.config import config_from_mapping
from collector.models import deployment_contents, raw_events
from collector.sources import detect, gitlab
from tests.conftest import dump_projections, fixture_path

HOOKS = {
    "pipeline_hook__pipeline_pending": ("Pipeline Hook", "pipeline"),
    "pipeline_hook__pipeline_succeeded": ("Pipeline Hook", "pipeline"),
    "build_started": ("Build Hook", "build"),
    "build_succeeded": ("Job Hook", "build"),
    "job_hook__build_created": ("Job Hook", "build"),
    "deployment_hook": ("Deployment Hook", "deployment"),
    "deployment_hook.succeeded": ("Deployment Hook", "deployment"),
    "deployment_hook__failed": ("Deployment Hook", "deployment"),
    "deployment_hook__canceled": ("Deployment Hook", "deployment"),
    "push_hook": ("Push Hook", "push"),
    "merge_request_hook__merged": ("Merge Request Hook", "merge_request"),
}
PROJECT = "TomaszKolek/my-awesome-project"
RUN = f"gitlab:{PROJECT}:pipeline:4414206"
WEB = f"https://gitlab.com/{PROJECT}"
DEPLOYMENT = "gitlab:vedant8600317/test:deployment:988572802"
DEPLOYED_SHA = "58793660b22d6ceacbdc23b28a0562bca339702c"


def load(name: str) -> dict:
    return json.loads(fixture_path(f"gitlab/{name}.json").read_text(encoding="utf-8"))


def sample(name: str) -> tuple[str, dict]:
    """(X-Gitlab-Event, payload) of a sample."""
    return HOOKS[name][0], load(name)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def feed(engine, config, *events: tuple[str, dict], hint: bool = True):
    """Ingest each (X-Gitlab-Event, payload) in its own call, so rows merge in the store."""
    return [
        ingest.ingest_payloads(engine, [payload], config, hint=header if hint else None) for header, payload in events
    ]


def rows_by_id(engine, table: str) -> dict[str, dict]:
    return {row["id"]: row for row in dump_projections(engine)[table]}


@pytest.mark.parametrize("name", HOOKS)
def test_every_sample_is_recognised_with_and_without_the_event_header(name):
    header, kind = HOOKS[name]
    assert detect(load(name), None) == ("gitlab", kind)
    assert detect(load(name), header) == ("gitlab", kind)


@pytest.mark.parametrize(
    "path", ["github/workflow_run.completed.json", "github/push.json", "incidents/pagerduty.incident.resolved.v3.json"]
)
def test_other_sources_payloads_are_not_claimed(path):
    payload = json.loads(fixture_path(path).read_text())
    assert gitlab.detect(payload, None) is None
    assert gitlab.detect(payload, "push") is None
    assert gitlab.detect({"type": "deployment", "id": "d1"}, None) is None


def test_the_samples_all_ingest_and_replay_to_the_same_rows(engine, config):
    summary = ingest.ingest_payloads(engine, [load(n) for n in HOOKS], config)
    assert (summary.stored, summary.ignored, summary.quarantined, dict(summary.by_source)) == (
        len(HOOKS),
        0,
        [],
        {"gitlab": len(HOOKS)},
    )
    before = dump_projections(engine)
    assert {t: len(r) for t, r in before.items() if r} == {
        "pipeline_runs": 1,
        "stage_runs": 3,
        "action_runs": 4,
        "deployments": 3,
        "deployment_changes": 3,
        "changes": 4,  # two pushed; the merge request's merge commit and its last commit
    }
    replayed = ingest.replay(engine, config)
    assert replayed.still_quarantined == 0 and dump_projections(engine) == before


EXPECTED_RUN = {
    "id": RUN,
    "source": "gitlab",
    "pipeline": PROJECT,
    "service": "my-awesome-project",
    "revision": "6f88e719ccde3804b1b669cef9dfb236a92fbbff",
    "branch": "master",
    "trigger": None,
    "url": f"{WEB}/-/pipelines/4414206",
    "status": "succeeded",
    "status_at": utc("2016-09-28T20:22:34"),
    "queued_at": utc("2016-09-28T20:04:55"),
    "started_at": utc("2016-09-28T20:21:04"),
    "finished_at": utc("2016-09-28T20:22:34"),
    "attempt": None,
    "is_rollback": None,
}
EXPECTED_STAGE = {
    "id": f"{RUN}:stage:test",
    "pipeline_run_id": RUN,
    "name": "test",
    "category": "test",
    "status": "succeeded",
    "status_at": utc("2016-09-28T20:22:34"),
    "queued_at": utc("2016-09-28T20:04:55"),
    "started_at": utc("2016-09-28T20:21:04"),
    "finished_at": utc("2016-09-28T20:22:34"),
    "attempt": None,
    "failed_once": False,
}


def expected_job(job_id: int, name: str, started: str, finished: str) -> dict:
    return {
        "id": f"{RUN}:job:{job_id}",
        "pipeline_run_id": RUN,
        "stage_run_id": f"{RUN}:stage:test",
        "name": name,
        "category": "other",
        "provider": "gitlab-ci",
        "external_id": str(job_id),
        "url": f"{WEB}/-/jobs/{job_id}",
        "status": "succeeded",
        "status_at": utc(finished),
        "started_at": utc(started),
        "finished_at": utc(finished),
        "failed_once": False,
    }


@pytest.mark.parametrize("hint", [True, False], ids=["header", "shape"])
@pytest.mark.parametrize(
    "order",
    list(
        itertools.permutations(
            ["pipeline_hook__pipeline_pending", "build_started", "pipeline_hook__pipeline_succeeded"]
        )
    ),
    ids=lambda order: ">".join(name.rsplit("_", 1)[-1] for name in order),
)
def test_a_pipeline_its_stage_and_jobs_in_any_order(engine, config, order, hint):
    summaries = feed(engine, config, *(sample(name) for name in order), hint=hint)
    assert [s.quarantined for s in summaries] == [[], [], []]
    rows = dump_projections(engine)
    assert rows["pipeline_runs"] == [EXPECTED_RUN]
    assert rows["stage_runs"] == [EXPECTED_STAGE]
    assert rows["action_runs"] == [
        expected_job(4541112, "job_name", "2016-09-28T20:21:04", "2016-09-28T20:21:47"),
        expected_job(4541113, "job_name2", "2016-09-28T20:21:52", "2016-09-28T20:22:34"),
    ]


def test_a_pending_pipeline_is_queued(engine, config):
    feed(engine, config, sample("pipeline_hook__pipeline_pending"))
    (run,) = dump_projections(engine)["pipeline_runs"]
    assert (run["status"], run["status_at"], run["queued_at"], run["started_at"], run["finished_at"]) == (
        "queued",
        utc("2016-09-28T20:04:56"),
        utc("2016-09-28T20:04:55"),
        None,
        None,
    )
    (stage,) = dump_projections(engine)["stage_runs"]
    assert (stage["status"], stage["status_at"], stage["started_at"], stage["finished_at"]) == (
        "queued",
        utc("2016-09-28T20:04:56"),
        None,
        None,
    )
    jobs = rows_by_id(engine, "action_runs")
    assert [(j["status"], j["status_at"], j["started_at"]) for _, j in sorted(jobs.items())] == [
        ("queued", utc("2016-09-28T20:04:55"), None),
        ("queued", utc("2016-09-28T20:04:56"), None),
    ]


def test_a_running_job_hook_leaves_the_stage_status_to_the_pipeline(engine, config):
    feed(engine, config, sample("build_started"))
    (job,) = dump_projections(engine)["action_runs"]
    assert (job["id"], job["status"], job["status_at"], job["started_at"], job["finished_at"]) == (
        f"{RUN}:job:4541112",
        "in_progress",
        utc("2016-09-28T20:21:04"),
        utc("2016-09-28T20:21:04"),
        None,
    )
    (stage,) = dump_projections(engine)["stage_runs"]
    assert (stage["id"], stage["status"], stage["started_at"], stage["failed_once"]) == (
        f"{RUN}:stage:test",
        None,
        utc("2016-09-28T20:21:04"),
        False,
    )
    assert dump_projections(engine)["pipeline_runs"] == []


def test_job_hooks_name_their_pipeline_by_id_or_legacy_commit_id(engine, config):
    feed(engine, config, sample("job_hook__build_created"), sample("build_succeeded"))
    jobs = rows_by_id(engine, "action_runs")
    created = jobs["gitlab:gitlab-org/gitlab-test:pipeline:2366:job:1977"]
    # a created job with no time at all: queued, undated, so any dated state outranks it
    assert (
        created["name"],
        created["category"],
        created["status"],
        created["status_at"],
        created["url"],
        created["stage_run_id"],
    ) == (
        "test",
        "test",
        "queued",
        None,
        "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/jobs/1977",
        "gitlab:gitlab-org/gitlab-test:pipeline:2366:stage:test",
    )
    done = jobs[f"gitlab:{PROJECT}:pipeline:4413028:job:4537823"]
    assert (done["status"], done["status_at"], done["started_at"], done["finished_at"]) == (
        "succeeded",
        utc("2016-09-28T18:34:32"),
        utc("2016-09-28T18:33:47"),
        utc("2016-09-28T18:34:32"),
    )


def build(
    job_id: int,
    stage: str,
    name: str,
    status: str,
    created: str,
    started: str | None = None,
    finished: str | None = None,
    allow_failure: bool = False,
    when: str = "on_success",
) -> dict:
    return {
        "id": job_id,
        "stage": stage,
        "name": name,
        "status": status,
        "created_at": created,
        "started_at": started,
        "finished_at": finished,
        "when": when,
        "manual": when == "manual",
        "allow_failure": allow_failure,
        "user": {"name": "Tomasz Kolek"},
        "runner": None,
    }


def test_stage_statuses_follow_the_latest_attempt_of_each_job(engine, config):
    payload = load("pipeline_hook__pipeline_succeeded")
    payload["object_attributes"].update(
        status="manual", finished_at=None, source="push", stages=["build", "test", "lint", "deploy"]
    )
    t = "2016-09-28 20:{} UTC".format
    payload["builds"] = [
        build(1, "build", "compile", "success", t("05:00"), t("06:00"), t("07:00")),
        build(2, "test", "unit", "failed", t("07:00"), t("08:00"), t("09:00")),
        build(3, "test", "unit", "success", t("09:30"), t("10:00"), t("11:00")),  # the retry
        build(4, "lint", "style", "failed", t("07:00"), t("08:00"), t("08:30"), allow_failure=True),
        build(5, "deploy", "deploy:production", "manual", t("05:00"), when="manual"),
    ]
    (summary,) = feed(engine, config, ("Pipeline Hook", payload))
    assert summary.quarantined == []
    stages = rows_by_id(engine, "stage_runs")
    got = {
        s["name"]: (s["category"], s["status"], s["status_at"], s["finished_at"], s["failed_once"])
        for s in stages.values()
    }
    assert got == {
        "build": ("build", "succeeded", utc("2016-09-28T20:07:00"), utc("2016-09-28T20:07:00"), False),
        "test": ("test", "succeeded", utc("2016-09-28T20:11:00"), utc("2016-09-28T20:11:00"), True),
        "lint": ("test", "succeeded", utc("2016-09-28T20:08:30"), utc("2016-09-28T20:08:30"), False),
        "deploy": ("deploy", "queued", utc("2016-09-28T20:05:00"), None, False),
    }
    (run,) = dump_projections(engine)["pipeline_runs"]
    assert (run["status"], run["status_at"], run["finished_at"], run["trigger"], run["started_at"]) == (
        "queued",
        utc("2016-09-28T20:11:00"),
        None,
        "push",
        utc("2016-09-28T20:06:00"),
    )
    jobs = rows_by_id(engine, "action_runs")
    assert (jobs[f"{RUN}:job:2"]["status"], jobs[f"{RUN}:job:2"]["failed_once"]) == ("failed", True)
    assert (jobs[f"{RUN}:job:5"]["category"], jobs[f"{RUN}:job:5"]["status"]) == ("deploy", "queued")


@pytest.mark.parametrize(
    "statuses, expected",
    [
        (("running", "pending"), "in_progress"),
        (("success", "pending"), "in_progress"),
        (("success", "failed"), "failed"),
        (("success", "canceled"), "canceled"),
        (("skipped", "skipped"), "canceled"),
    ],
)
def test_stage_status_of_mixed_jobs(engine, config, statuses, expected):
    payload = load("pipeline_hook__pipeline_succeeded")
    times = {"running": (True, False), "pending": (False, False), "skipped": (False, False)}
    builds = []
    for i, status in enumerate(statuses):
        started, finished = times.get(status, (True, True))
        builds.append(
            build(
                10 + i,
                "test",
                f"job{i}",
                status,
                "2016-09-28 20:05:00 UTC",
                "2016-09-28 20:06:00 UTC" if started else None,
                "2016-09-28 20:07:00 UTC" if finished else None,
            )
        )
    payload["builds"] = builds
    feed(engine, config, ("Pipeline Hook", payload))
    (stage,) = dump_projections(engine)["stage_runs"]
    assert stage["status"] == expected
    assert stage["failed_once"] is (expected == "failed")


def test_a_tag_pipeline_has_no_branch(engine, config):
    payload = load("pipeline_hook__pipeline_succeeded")
    payload["object_attributes"].update(tag=True, ref="v1.0.0")
    feed(engine, config, ("Pipeline Hook", payload), hint=False)
    (run,) = dump_projections(engine)["pipeline_runs"]
    assert (run["branch"], run["revision"]) == (None, "6f88e719ccde3804b1b669cef9dfb236a92fbbff")


@pytest.mark.parametrize("hint", [True, False], ids=["header", "shape"])
@pytest.mark.parametrize("order", ["running-first", "success-first"])
def test_a_deployment_running_then_succeeded_in_either_order(engine, hint, order):
    config = config_from_mapping({"teams": {"test": "qa-team"}}, environ={})
    events = [sample("deployment_hook"), sample("deployment_hook.succeeded")]
    feed(engine, config, *(events if order == "running-first" else events[::-1]), hint=hint)
    rows = dump_projections(engine)
    assert rows["deployments"] == [
        {
            "id": DEPLOYMENT,
            "source": "gitlab",
            "service": "test",
            "team": "qa-team",
            "environment": "production",
            "production": True,
            "status": "success",
            "status_at": utc("2025-05-02T11:55:16"),
            "started_at": utc("2025-05-02T11:54:46"),
            "finished_at": utc("2025-05-02T11:55:16"),
            "version": None,
            "revision": DEPLOYED_SHA,
            "pipeline_run_id": None,
            "rollback_of": None,
            "is_rollback": False,
            "hotfix": False,
            "url": "https://gitlab.com/vedant8600317/test/-/jobs/9905389091",
        }
    ]
    assert [(r["id"], r["deployment_id"], r["change_id"]) for r in rows["deployment_changes"]] == [
        (f"{DEPLOYMENT}|{DEPLOYED_SHA}", DEPLOYMENT, DEPLOYED_SHA)
    ]


@pytest.mark.parametrize(
    "name, key, status, at, sha",
    [
        (
            "deployment_hook__failed",
            988604916,
            "failure",
            "2025-05-02T12:30:19",
            "846d8de0b7b3d694954249d2fd5d87fbe8c84e4c",
        ),
        (
            "deployment_hook__canceled",
            988610373,
            "canceled",
            "2025-05-02T12:36:52",
            "c3cf29e88c1b0a8a60df37f4687dd5060955d2ae",
        ),
    ],
)
def test_failed_and_canceled_deployments_are_finished(engine, config, name, key, status, at, sha):
    feed(engine, config, sample(name))
    (deployment,) = dump_projections(engine)["deployments"]
    assert (
        deployment["id"],
        deployment["status"],
        deployment["status_at"],
        deployment["finished_at"],
        deployment["started_at"],
        deployment["revision"],
    ) == (f"gitlab:vedant8600317/test:deployment:{key}", status, utc(at), utc(at), None, sha)


@pytest.mark.parametrize(
    "environment, tier, production",
    [
        ("prd-eu-1", "production", True),
        ("staging", "staging", False),
        ("live", "other", True),
        ("review/x", None, False),
    ],
)
def test_production_comes_from_the_tier_or_the_environment_name(engine, config, environment, tier, production):
    payload = load("deployment_hook")
    payload.update(environment=environment, environment_tier=tier)
    feed(engine, config, ("Deployment Hook", payload))
    (deployment,) = dump_projections(engine)["deployments"]
    assert (deployment["environment"], deployment["production"]) == (environment, production)


def test_a_deployment_without_a_full_sha_keeps_the_short_one_and_links_nothing(engine, config):
    payload = load("deployment_hook")
    payload.pop("commit_url")
    feed(engine, config, ("Deployment Hook", payload))
    rows = dump_projections(engine)
    assert [d["revision"] for d in rows["deployments"]] == ["58793660"]
    assert rows["deployment_changes"] == []


def test_a_push_records_its_commits(engine, config):
    feed(engine, config, sample("push_hook"), hint=False)
    changes = rows_by_id(engine, "changes")
    common = {
        "service": "my-awesome-project",
        "repository": "tomaszkolek0/my-awesome-project",
        "merged_at": None,
        "pr": None,
        "author": "Tomasz Kolek",
        "pushed_head": "eb6ae1e591e0819dc5bf187c6bfe18ec065a80e9",
    }
    assert changes == {
        "66abd2da28809ffa128ed0447965cf11d7f863a7": {
            "id": "66abd2da28809ffa128ed0447965cf11d7f863a7",
            "committed_at": utc("2016-08-17T19:17:54"),
            "title": "b",
            **common,
        },
        "eb6ae1e591e0819dc5bf187c6bfe18ec065a80e9": {
            "id": "eb6ae1e591e0819dc5bf187c6bfe18ec065a80e9",
            "committed_at": utc("2016-08-17T19:18:06"),
            "title": "c",
            **common,
        },
    }


def test_hooks_with_nothing_to_project_are_archived_and_ignored(engine, config):
    tag_push = dict(load("push_hook"), object_kind="tag_push", ref="refs/tags/v1", commits=[])
    summaries = feed(
        engine,
        config,
        ("Tag Push Hook", tag_push),
        ("Issue Hook", {"object_kind": "issue", "project": load("push_hook")["project"]}),
    )
    assert [(s.stored, s.ignored, s.quarantined) for s in summaries] == [(1, 1, []), (1, 1, [])]
    assert all(not rows for rows in dump_projections(engine).values())


def broken(name: str, change) -> tuple[str, dict]:
    payload = copy.deepcopy(load(name))
    change(payload)
    return HOOKS[name][0], payload


@pytest.mark.parametrize("hint", [True, False], ids=["header", "shape"])
@pytest.mark.parametrize(
    "event, field, expected",
    [
        (
            broken("pipeline_hook__pipeline_succeeded", lambda p: p["object_attributes"].pop("id")),
            "object_attributes.id",
            "an integer (required)",
        ),
        (
            broken(
                "pipeline_hook__pipeline_succeeded", lambda p: p["object_attributes"].update(created_at="yesterday")
            ),
            "object_attributes.created_at",
            "an ISO 8601 timestamp such as",
        ),
        (
            broken("pipeline_hook__pipeline_succeeded", lambda p: p["object_attributes"].update(status="exploded")),
            "object_attributes.status",
            "one of created, waiting_for_resource",
        ),
        (
            broken("pipeline_hook__pipeline_succeeded", lambda p: p["builds"][1].update(started_at="soon")),
            "builds.1.started_at",
            "an ISO 8601 timestamp",
        ),
        (
            broken("pipeline_hook__pipeline_succeeded", lambda p: p["project"].pop("path_with_namespace")),
            "project.path_with_namespace",
            "required",
        ),
        (broken("build_started", lambda p: p["commit"].pop("id")), "pipeline_id", "an integer (required)"),
        (
            broken("build_started", lambda p: p.update(build_started_at=None)),
            "build_started_at",
            "required while running",
        ),
        (
            broken("deployment_hook", lambda p: p.update(status_changed_at="2025-13-45 99:00:00 +0000")),
            "status_changed_at",
            "an ISO 8601 timestamp",
        ),
        (broken("deployment_hook", lambda p: p.update(commit_url=None, short_sha=None)), "commit_url", "the full SHA"),
        (broken("push_hook", lambda p: p["commits"][0].pop("id")), "commits.0.id", "a string (required)"),
    ],
    ids=[
        "pipeline-id",
        "created-at",
        "status",
        "job-started",
        "project",
        "pipeline-of-job",
        "job-running-time",
        "deployment-time",
        "deployment-sha",
        "commit-id",
    ],
)
def test_malformed_payloads_are_quarantined_with_the_field_named(engine, config, hint, event, field, expected):
    (summary,) = feed(engine, config, event, hint=hint)
    (q,) = summary.quarantined
    assert q.source == "gitlab" and q.error.startswith(f"field '{field}': expected") and expected in q.error
    with engine.connect() as conn:
        (row,) = conn.execute(select(raw_events)).mappings().all()
    assert (row["status"], row["error"], json.loads(row["payload"])) == ("quarantined", q.error, event[1])
    assert all(not rows for rows in dump_projections(engine).values())


def test_a_hook_header_without_object_kind_is_quarantined_as_gitlab(engine, config):
    envelope = ingest.Envelope(json.dumps({"object_attributes": {"id": 1}}), hint="Pipeline Hook", origin="hook")
    (q,) = ingest.ingest(engine, [envelope], config).quarantined
    assert (q.origin, q.source, q.kind) == ("hook", "gitlab", "pipeline")
    assert q.error.startswith("field 'project.path_with_namespace': expected a string (required")


MERGE_SHA = "f2a1c0b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3"
MR_HEAD = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


@pytest.mark.parametrize("hint", [True, False], ids=["header", "shape"])
def test_a_merged_merge_request_is_its_merge_commit_with_merged_at(engine, config, hint):
    feed(engine, config, ("Merge Request Hook", load("merge_request_hook__merged")), hint=hint)
    changes = rows_by_id(engine, "changes")
    assert changes[MERGE_SHA] == {
        "id": MERGE_SHA,
        "service": "gitlab-test",
        "repository": "gitlabhq/gitlab-test",
        "committed_at": None,
        "merged_at": utc("2013-12-04T09:41:12"),
        "pr": 1,
        "author": "root",
        "title": "MS-Viewport",
        "pushed_head": None,
    }
    head = changes[MR_HEAD]
    # The MR's last commit: its own time (+02:00 in the hook), held by a deployment of the merge commit.
    assert (head["committed_at"], head["pushed_head"], head["title"]) == (
        utc("2012-01-03T21:36:29"),
        MERGE_SHA,
        "fixed readme",
    )


def test_a_deployment_of_the_merge_commit_holds_the_merge_request(engine, config):
    deployment = load("deployment_hook.succeeded")
    deployment["commit_url"] = deployment["commit_url"].rsplit("/", 1)[0] + "/" + MERGE_SHA
    deployment["project"]["path_with_namespace"] = "gitlabhq/gitlab-test"
    feed(engine, config, ("Deployment Hook", deployment), ("Merge Request Hook", load("merge_request_hook__merged")))
    with engine.connect() as conn:
        held = conn.execute(select(deployment_contents.c.change_id).order_by(deployment_contents.c.change_id))
        assert list(held.scalars()) == sorted([MERGE_SHA, MR_HEAD])


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.update(state="opened", action="open"),
        lambda a: a.update(state="closed", action="close"),
        lambda a: a.update(action="update"),  # a later edit of a merged MR is not its merge time
    ],
    ids=["opened", "closed-unmerged", "edited-after-merge"],
)
def test_merge_request_hooks_other_than_the_merge_project_nothing(engine, config, change):
    payload = load("merge_request_hook__merged")
    change(payload["object_attributes"])
    (summary,) = feed(engine, config, ("Merge Request Hook", payload))
    assert (summary.stored, summary.ignored, summary.quarantined) == (1, 1, [])
    assert dump_projections(engine)["changes"] == []


def test_a_fast_forward_merge_is_the_source_branch_head(engine, config):
    payload = load("merge_request_hook__merged")
    payload["object_attributes"]["merge_commit_sha"] = None
    feed(engine, config, ("Merge Request Hook", payload))
    (change,) = dump_projections(engine)["changes"]
    assert (change["id"], change["pr"], change["merged_at"], change["committed_at"]) == (
        MR_HEAD,
        1,
        utc("2013-12-04T09:41:12"),
        utc("2012-01-03T21:36:29"),
    )
