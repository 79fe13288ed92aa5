"""`gatewatch demo`: a deterministic, realistic history in the real payload formats, ingested through
the one ingest path into coherent rows (SQLite and PostgreSQL), idempotent, and the CLI around it."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import select

from collector import ingest, sources
from collector.canary_runs import list_runs, load_run
from collector.config import config_from_mapping
from collector.gate_decisions import get_decision
from collector.listings import count_raw_events
from collector.models import changes, deployments
from collector.telemetry.sli import load_slos, slo_status
from collector.timeutil import parse_timestamp
from gates.service import load_policies
from gatewatch import demo
from gatewatch.demo import telemetry
from gatewatch.errors import ConfigError
from tests.conftest import dump_projections, fixture_path

END = date(2025, 6, 2)
SMALL = {"services": 3, "days": 14, "seed": 4, "end": END}  # seed 4: this window holds every kind of event
RUN_STATUSES = {"queued", "in_progress", "succeeded", "failed", "canceled", "superseded"}
END_AT = datetime(END.year, END.month, END.day, tzinfo=UTC)
FINAL = ("SUCCEEDED", "FAILED")
AWS_SOURCES = {"codepipeline", "codebuild", "codedeploy", "cloudwatch", "codecommit"}  # EventBridge events


@pytest.fixture(scope="module")
def small() -> list[tuple[str, str | None, dict]]:
    return demo.generate(**SMALL)


@pytest.fixture(scope="module")
def default_history() -> list[tuple[str, str | None, dict]]:
    return demo.generate(end=END)


def demo_config(services: int = SMALL["services"], seed: int = SMALL["seed"]):
    return config_from_mapping(demo.demo_config_mapping(services, seed), environ={})


def by_kind(payloads) -> dict[tuple[str, str], list[dict]]:
    """Payloads by (source, kind): a plain dict, so a kind the demo does not make is a KeyError, never an
    empty list that a loop passes over."""
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for source, hint, payload in payloads:
        out[(source, demo.payload_kind(source, hint, payload))].append(payload)
    return dict(out)


# --- generation: deterministic and in the real formats ---------------------------------------------


def test_the_same_seed_and_end_give_the_same_payloads_and_others_differ(small):
    again = demo.generate(**SMALL)
    assert again == small and len(small) > 1000
    assert json.dumps(again, sort_keys=True) == json.dumps(small, sort_keys=True)
    assert demo.generate(**{**SMALL, "seed": 5}) != small
    other_end = demo.generate(**{**SMALL, "end": END + timedelta(days=1)})
    assert other_end != small
    ids = {p["id"] for s, _, p in small if s == "codepipeline"}
    assert not ids & {p["id"] for s, _, p in other_end if s == "codepipeline"}  # no clashing event ids


def test_payloads_come_in_time_order_and_end_before_the_end_date(small):
    end = datetime(END.year, END.month, END.day, tzinfo=UTC)
    start = end - timedelta(days=SMALL["days"])
    times = []
    for source, hint, payload in small:
        if source in AWS_SOURCES:
            times.append(parse_timestamp(payload["time"]))
        elif source == "pagerduty":
            times.append(parse_timestamp(payload["event"]["occurred_at"]))
        elif hint == "deployment_status":
            times.append(parse_timestamp(payload["deployment_status"]["created_at"]))
    assert times == sorted(times)
    assert start <= times[0] and times[-1] < end


def test_every_payload_is_recognised_as_its_source(small):
    seen = Counter()
    for source, hint, payload in small:
        found = sources.detect(payload, hint)
        assert found is not None and found[0] == source, (source, hint, found)
        if source == "github":
            assert found[1] == hint
            assert sources.detect(payload, None) == ("github", hint)  # from the body's shape alone too
        elif source == "generic":
            assert found[1] == payload["type"]
        assert found[1] not in ingest.UNKNOWN_KINDS
        seen[source] += 1
    assert set(seen) == AWS_SOURCES | {"github", "pagerduty", "generic"}


def _keys(obj: dict) -> set[str]:
    return {k for k in obj if not k.endswith("_url") or k == "html_url"}


GITHUB_SAMPLES = {
    "push": "push.branch.json",
    "pull_request": "pull_request.closed.json",
    "deployment": "deployment.json",
    "deployment_status": "deployment_status.json",
    "workflow_run": "workflow_run.completed.json",
    "workflow_job": "workflow_job.completed.success.with-organization.json",
}


@pytest.mark.parametrize("event", sorted(GITHUB_SAMPLES))
def test_github_payloads_have_every_field_of_the_published_samples(small, event):
    sample = json.loads(fixture_path(f"github/{GITHUB_SAMPLES[event]}").read_text())
    kinds = by_kind(small)
    assert all(kinds.get(("github", kind)) for kind in GITHUB_SAMPLES), sorted(k for k in kinds if k[0] == "github")
    for mine in kinds[("github", event)]:
        assert _keys(sample) - {"installation", "enterprise"} <= _keys(mine)
        for nested in (
            "pull_request",
            "deployment",
            "deployment_status",
            "workflow_run",
            "workflow_job",
            "repository",
            "sender",
        ):
            if isinstance(sample.get(nested), dict):
                assert _keys(sample[nested]) <= _keys(mine[nested]), (event, nested)
        if event == "push":
            assert mine["ref"] == "refs/heads/main" or mine["ref"].startswith("refs/heads/hotfix/")
            for commit in mine["commits"]:
                assert set(sample["commits"][0]) <= set(commit)
                assert re.fullmatch(r"[0-9a-f]{40}", commit["id"])
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", commit["timestamp"])
            assert mine["after"] == mine["commits"][-1]["id"] == mine["head_commit"]["id"]
        if event == "pull_request":
            assert mine["action"] == "closed" and mine["pull_request"]["merged"] is True
            assert mine["pull_request"]["merged_at"] and re.fullmatch(
                r"[0-9a-f]{40}", mine["pull_request"]["merge_commit_sha"]
            )
        if event == "deployment":
            assert mine["deployment"]["environment"] == "production"
            assert re.fullmatch(r"v\d+\.\d+\.\d+", mine["deployment"]["payload"]["version"])


def test_a_failed_job_fails_in_its_working_step_and_skips_the_rest(small):
    failed = [
        p["workflow_job"]
        for p in by_kind(small)[("github", "workflow_job")]
        if p["workflow_job"]["conclusion"] == "failure"
    ]
    assert {job["name"] for job in failed} >= {"test", "deploy"}
    for job in failed:
        steps = {s["name"]: s["conclusion"] for s in job["steps"]}
        failing = [name for name, conclusion in steps.items() if conclusion == "failure"]
        assert failing == [
            {"build": "Build and push image", "test": "Run integration tests", "deploy": "Deploy to production"}[
                job["name"]
            ]
        ]
        after = list(steps)[list(steps).index(failing[0]) + 1 :]
        assert [steps[name] for name in after[:-1]] == ["skipped"] * (len(after) - 1)
        assert after[-1] == "Complete job"


def test_pagerduty_payloads_have_every_field_of_the_v3_samples(small):
    for state in ("triggered", "acknowledged", "resolved"):
        sample = json.loads(fixture_path(f"incidents/pagerduty.incident.{state}.v3.json").read_text())
        mine = by_kind(small)[("pagerduty", f"incident.{state}")]
        assert mine
        for payload in mine:
            assert set(sample) == set(payload)
            assert set(sample["event"]) <= set(payload["event"])
            assert set(sample["event"]["data"]) <= set(payload["event"]["data"])
            assert payload["event"]["data"]["status"] == state
            assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", payload["event"]["id"])  # a ULID


def _published_codepipeline_events() -> list[dict]:
    text = fixture_path("aws/codepipeline-eventbridge-events.published.txt").read_text()
    quoted = re.sub(r'(":\s*)([A-Za-z_]+)(\s*[,\n])', r'\1"\2"\3', text)  # the doc's bare placeholders
    return [json.loads(block) for block in re.split(r"\n\s*\n", quoted.strip())]


def test_codepipeline_events_have_the_eventbridge_shape(small):
    published = {e["detail-type"]: e for e in _published_codepipeline_events()}
    events = [p for s, _, p in small if s == "codepipeline"]
    assert {e["detail-type"] for e in events} == set(published)
    for event in events:
        sample = published[event["detail-type"]]
        assert list(event) == list(sample)
        assert set(sample["detail"]) <= set(event["detail"])
        detail = event["detail"]
        assert all(isinstance(event[k], str) for k in ("version", "id", "account", "time", "region"))
        assert {"start-time", "pipeline-execution-attempt", "execution-trigger"} <= set(detail)
        assert {"trigger-type", "trigger-detail"} <= set(detail["execution-trigger"])
        assert event["resources"] == [f"arn:aws:codepipeline:eu-west-1:{event['account']}:{detail['pipeline']}"]
        if "action" in detail:
            assert set(detail["type"]) == {"owner", "category", "provider", "version"}
            if detail["state"] == "SUCCEEDED" and detail["stage"] == "Source":
                assert re.fullmatch(r"[0-9a-f]{40}", detail["execution-result"]["external-execution-id"])
    stages = {e["detail"]["stage"] for e in events if "stage" in e["detail"]}
    assert stages == {"Source", "Build", "Test", "Approval", "Prod"}


def _published(name: str) -> list[dict]:
    loaded = json.loads(fixture_path(f"aws/{name}.published.json").read_text())
    return loaded if isinstance(loaded, list) else [loaded]


def _actions(payloads) -> dict[str, dict[str, datetime]]:
    """Each CodePipeline action execution's state times ({action-execution-id: {state: time}}), with its
    external execution id under "external"."""
    out: dict[str, dict] = defaultdict(dict)
    for source, _, p in payloads:
        if source == "codepipeline" and "action" in p["detail"]:
            d = p["detail"]
            out[d["action-execution-id"]][d["state"]] = parse_timestamp(p["time"])
            out[d["action-execution-id"]]["stage"] = d["stage"]
            if "external-execution-id" in d.get("execution-result", {}):
                out[d["action-execution-id"]]["external"] = d["execution-result"]["external-execution-id"]
    return {a["external"]: a for a in out.values() if "external" in a}


def test_codebuild_builds_are_the_build_actions_and_wait_in_the_queue_inside_them(small, default_history):
    sample = _published("codebuild-build-state-change")[0]
    sample_info = sample["detail"]["additional-information"]
    config = demo_config()
    actions = _actions(small)
    builds = defaultdict(dict)
    for event in by_kind(small)[("codebuild", "build")]:
        assert list(event) == list(sample) and set(event["detail"]) == set(sample["detail"])
        detail, info = event["detail"], event["detail"]["additional-information"]
        assert set(info) <= set(sample_info) and event["resources"] == [detail["build-id"]]
        build_id = detail["build-id"].split(":build/")[1]
        action = actions[build_id]  # the CodePipeline action that ran it reports it as its external id
        assert action["stage"] in ("Build", "Test") and detail["project-name"] == build_id.split(":")[0]
        assert config.service_for_build_project(detail["project-name"]) in {s.name for s in demo.organisation(3, 4)}
        assert info["initiator"].startswith("codepipeline/") and info["initiator"].endswith("-pipeline")
        builds[build_id][detail["build-status"]] = event
    assert builds and all(set(b) in ({"IN_PROGRESS", "SUCCEEDED"}, {"IN_PROGRESS", "FAILED"}) for b in builds.values())
    assert any("FAILED" in b for b in builds.values())
    for build_id, b in builds.items():
        final = b.get("SUCCEEDED") or b["FAILED"]
        phases = final["detail"]["additional-information"]["phases"]
        assert all(set(p) == set(sample_info["phases"][0]) for p in phases[:-1])
        assert set(phases[-1]) == set(sample_info["phases"][-1])
        assert phases[1]["phase-type"] == "QUEUED" and phases[-1]["phase-type"] == "COMPLETED"
        queued = sources.codebuild.build_time(phases[1], "start-time")
        completed = sources.codebuild.build_time(phases[-1], "start-time")
        action = actions[build_id]
        assert action["STARTED"] <= queued and completed <= action["SUCCEEDED" if "SUCCEEDED" in b else "FAILED"]
    waits = [
        p["duration-in-seconds"]
        for e in by_kind(default_history)[("codebuild", "build")]
        for p in e["detail"]["additional-information"]["phases"]
        if p["phase-type"] == "QUEUED"
    ]
    assert min(waits) < 30 and max(waits) > 180 and len(set(waits)) > 50


def test_codedeploy_deployments_are_the_prod_actions_in_a_production_group(small):
    sample = _published("codedeploy-deployment-state-change")[0]
    config = demo_config()
    actions = _actions(small)
    seen = defaultdict(dict)
    for event in by_kind(small)[("codedeploy", "deployment")]:
        assert set(event) == set(sample) and set(event["detail"]) == set(sample["detail"])
        detail = event["detail"]
        action = actions[detail["deploymentId"]]
        assert action["stage"] == "Prod" and config.is_production_deployment_group(detail["deploymentGroup"])
        assert action["STARTED"] <= parse_timestamp(event["time"]) <= max(action.get(s, END_AT) for s in FINAL)
        seen[detail["deploymentId"]][detail["state"]] = parse_timestamp(event["time"])
    assert {"START", "SUCCESS", "FAILURE"} <= {state for d in seen.values() for state in d}
    assert all(d["START"] < d.get("SUCCESS", d.get("FAILURE", END_AT)) for d in seen.values() if "START" in d)
    prod = {e for e, a in actions.items() if a["stage"] == "Prod"}
    assert prod == set(seen)  # every Prod action, a rollback execution's too, ran a CodeDeploy deployment


def test_the_5xx_alarms_follow_bad_deployments_and_chain_their_states(small):
    sample = _published("cloudwatch-alarm-state-change")[0]
    config = demo_config()
    by_alarm = defaultdict(list)
    for event in by_kind(small)[("cloudwatch", "alarm-state-change")]:
        assert list(event) == list(sample) and set(event["detail"]) == set(sample["detail"])
        detail = event["detail"]
        metric = detail["configuration"]["metrics"][0]["metricStat"]["metric"]
        assert detail["alarmName"] == f"{metric['dimensions']['service']}-5xx-rate"
        assert config.service_for_alarm(detail["alarmName"], metric["dimensions"]) == metric["dimensions"]["service"]
        assert set(detail["state"]) == set(sample["detail"]["state"])
        by_alarm[detail["alarmName"]].append(detail)
    assert by_alarm
    for states_of in by_alarm.values():
        states = [c["state"]["value"] for c in states_of]
        assert states == ["ALARM", "OK"] * (len(states) // 2) + ["ALARM"] * (len(states) % 2)
        for before, after in itertools.pairwise(states_of):
            assert after["previousState"] == before["state"]  # each change starts where the last ended


def test_codecommit_mirrors_each_push_to_main_after_github(small):
    sample = _published("codecommit-repository-state-change")[1]
    pushes = {p["after"]: p for p in by_kind(small)[("github", "push")] if p["ref"] == "refs/heads/main"}
    config = demo_config()
    events = by_kind(small)[("codecommit", "repository-state-change")]
    for event in events:
        assert list(event) == list(sample) and set(event["detail"]) <= set(sample["detail"])
        detail = event["detail"]
        push = pushes[detail["commitId"]]
        assert detail["oldCommitId"] == push["before"] and detail["event"] == "referenceUpdated"
        assert config.service_for_repository(detail["repositoryName"]) == push["repository"]["name"].removesuffix(
            "-service"
        )
        assert parse_timestamp(event["time"]) > parse_timestamp(push["head_commit"]["timestamp"])
    pipelines = {s.repository for s in demo.organisation(3, 4) if s.platform == "codepipeline"}
    assert len(events) == sum(p["repository"]["full_name"] in pipelines for p in pushes.values()) > 5


def test_the_history_looks_like_a_real_organisation(default_history):
    groups = by_kind(default_history)
    org = demo.organisation()
    assert len({s.team for s in org}) == 3
    assert Counter(s.platform for s in org) == {"codepipeline": 4, "github": 4}
    # cadence: each service at its own pace, from several a day to a few a week; fewer at weekends
    pushes = [p for p in groups[("github", "push")] if p["ref"] == "refs/heads/main"]
    per_service = Counter(p["repository"]["name"] for p in pushes)
    per_week = {name: n / (90 / 7) for name, n in per_service.items()}
    assert max(per_week.values()) > 15 and min(per_week.values()) < 5, per_week
    weekend = sum(parse_timestamp(p["head_commit"]["timestamp"]).weekday() >= 5 for p in pushes)
    assert 0 < weekend < 0.05 * len(pushes)
    # lead time: commits reach main hours to days after they were written (log-normal)
    lags = [
        (parse_timestamp(p["head_commit"]["timestamp"]) - parse_timestamp(c["timestamp"])).total_seconds() / 3600
        for p in pushes
        for c in p["commits"][:1]
    ]
    assert 2 < statistics.median(lags) < 24 and max(lags) > 72 and min(lags) < 1
    # manual approvals take minutes to hours
    approvals = defaultdict(list)
    for event in groups[("codepipeline", "action")]:
        if event["detail"]["stage"] == "Approval":
            approvals[event["detail"]["action-execution-id"]].append(parse_timestamp(event["time"]))
    waits = [(max(ts) - min(ts)).total_seconds() / 60 for ts in approvals.values() if len(ts) == 2]
    assert min(waits) < 10 and max(waits) > 120
    # incidents recover in minutes to hours; one or two are still open
    pd = defaultdict(dict)
    for event in default_history:
        if event[0] == "pagerduty":
            e = event[2]["event"]
            pd[e["data"]["id"]][e["event_type"]] = parse_timestamp(e["occurred_at"])
    recoveries = [
        (i["incident.resolved"] - i["incident.triggered"]).total_seconds() / 60
        for i in pd.values()
        if "incident.resolved" in i
    ]
    assert min(recoveries) < 30 and max(recoveries) > 120
    assert 1 <= sum("incident.resolved" not in i for i in pd.values()) <= 2
    # a few percent of deployments fail; some are rolled back
    statuses = Counter(p["deployment_status"]["state"] for p in groups[("github", "deployment_status")])
    assert 0.005 < statuses["failure"] / statuses["success"] < 0.1
    assert any("rollback_of" in p["deployment"]["payload"] for p in groups[("github", "deployment")])


def test_bad_arguments_are_refused_with_the_option_named():
    with pytest.raises(ConfigError, match="--services"):
        demo.generate(services=0)
    with pytest.raises(ConfigError, match="--days"):
        demo.generate(days=0)


def test_the_config_mapping_names_every_pipeline_repository_and_pagerduty_service():
    org = demo.organisation(8, 7)
    mapping = demo.demo_config_mapping(8, 7)
    config = config_from_mapping(mapping, environ={})
    for svc in org:
        assert config.service_for_repository(svc.repository) == svc.name
        assert config.service_for_pagerduty(svc.pagerduty_id, svc.pagerduty_name) == svc.name
        assert config.team_for(svc.name) == svc.team
        if svc.platform == "codepipeline":
            assert config.service_for_pipeline(svc.pipeline) == svc.name
    assert mapping == demo.demo_config_mapping(8, 7) and mapping != demo.demo_config_mapping(8, 8)


# --- ingest: coherent rows on both stores ------------------------------------------------------------


def rows(engine, table, *where):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where).order_by(table.c.id)).mappings()]


def test_a_small_demo_ingests_into_a_coherent_history(engine, small):
    config = demo_config()
    result = demo.run_demo(engine, config, **SMALL)
    assert result.summary.quarantined == [] and result.summary.stored == len(small)
    assert sum(result.payloads.values()) == len(small)
    org = {s.name: s for s in demo.organisation(SMALL["services"], SMALL["seed"])}
    state = dump_projections(engine)

    deps = {d["id"]: d for d in state["deployments"]}
    assert deps and all(d["production"] and d["environment"] == "production" for d in deps.values())
    assert all(d["service"] in org and d["team"] == org[d["service"]].team for d in deps.values())
    statuses = Counter(d["status"] for d in deps.values())
    assert statuses["success"] > 20 and statuses["failure"] >= 1
    assert set(statuses) <= {"success", "failure", "rolled_back", "in_progress", "pending"}
    by_source = Counter(d["source"] for d in deps.values())
    assert by_source["codepipeline"] and by_source["github"] and by_source["generic"] and by_source["codedeploy"]
    for d in deps.values():
        svc = org[d["service"]]
        if d["source"] == "codepipeline":
            assert re.fullmatch(rf"codepipeline:{svc.pipeline}:[0-9a-f-]{{36}}", d["id"])
        elif d["source"] == "codedeploy":
            assert re.fullmatch(r"codedeploy:d-[A-Z0-9]{9}", d["id"]) and svc.platform == "codepipeline"
        elif d["source"] == "github":
            assert re.fullmatch(rf"github:{svc.repository}:deployment:\d+", d["id"])
    rollbacks = [d for d in deps.values() if d["is_rollback"]]
    assert {d["source"] for d in rollbacks} >= {"codepipeline", "github"}
    for d in rollbacks:
        if d["rollback_of"] is not None:
            rolled = deps[d["rollback_of"]]  # names a deployment in the store, of the same service
            assert rolled["service"] == d["service"] and rolled["finished_at"] < d["started_at"]
    assert any(d["rollback_of"] for d in rollbacks)
    assert any(d["hotfix"] for d in deps.values() if d["source"] == "github")
    assert any(d["hotfix"] for d in deps.values() if d["source"] == "generic")

    commits = {c["id"]: c for c in state["changes"]}
    assert all(c["committed_at"] is not None and c["service"] in org for c in commits.values())
    merged = [c for c in commits.values() if c["pr"] is not None]
    assert merged and all(c["merged_at"] is not None and c["committed_at"] <= c["merged_at"] for c in merged)
    links = state["deployment_changes"]
    assert links
    linked = 0
    for link in links:
        # A CodePipeline execution links its commit as soon as its source action succeeds; one that
        # never reached production has no deployment row, and analysis ignores such links.
        change, deployment = commits.get(link["change_id"]), deps.get(link["deployment_id"])
        if deployment is None:
            assert link["deployment_id"].startswith("codepipeline:")
            continue
        if change is not None and deployment["finished_at"] is not None:
            assert change["committed_at"] < deployment["finished_at"]
            assert change["service"] == deployment["service"]
            linked += 1
    assert linked > 20
    deployed = [d for d in deps.values() if d["status"] == "success" and not d["is_rollback"]]
    shipped = {}  # a CodePipeline deployment's commit is its execution's source revision, linked
    for link in links:
        shipped.setdefault(link["deployment_id"], link["change_id"])
    revision = {d["id"]: d["revision"] or shipped.get(d["id"]) for d in deployed}
    # a CodeDeploy deployment names no revision: its CodePipeline execution holds the commits
    assert all(revision[d["id"]] in commits for d in deployed if d["source"] not in ("generic", "codedeploy"))
    assert {d["source"] for d in deployed if revision[d["id"]] in commits} >= {"codepipeline", "github"}

    found = state["incidents"]
    assert {i["source"] for i in found} == {"pagerduty", "generic"}
    assert all(i["service"] in org for i in found)
    for i in found:
        if i["resolved_at"] is not None:
            assert i["status"] == "resolved" and i["opened_at"] <= i["resolved_at"]
        if i["acknowledged_at"] is not None:
            assert i["opened_at"] <= i["acknowledged_at"]
    still_open = [i for i in found if i["status"] != "resolved"]
    assert 1 <= len(still_open) <= 2 and all(i["resolved_at"] is None for i in still_open)
    blamed = [i for i in found if i["deployment_id"]]
    assert blamed and all(deps[i["deployment_id"]]["finished_at"] <= i["opened_at"] for i in blamed)

    runs = {r["id"]: r for r in state["pipeline_runs"]}
    stages = defaultdict(list)
    for s in state["stage_runs"]:
        stages[s["pipeline_run_id"]].append(s)
    assert {r["source"] for r in runs.values()} == {"codepipeline", "github", "codebuild"}
    assert set(stages) <= set(runs)
    assert all(r["status"] in RUN_STATUSES for r in runs.values())
    finished = [r for r in runs.values() if r["status"] in ("succeeded", "failed") and r["source"] != "codebuild"]
    assert all(stages[r["id"]] for r in finished)
    assert all(r["service"] in org for r in runs.values())
    builds = [r for r in runs.values() if r["source"] == "codebuild"]
    assert all(r["trigger"] == f"codepipeline/{org[r['service']].pipeline}" for r in builds)
    assert all(r["queued_at"] <= r["started_at"] < r["finished_at"] for r in builds)
    retried = [r for r in runs.values() if r["attempt"] == 2 and r["status"] == "succeeded"]
    assert {r["source"] for r in retried} == {"codepipeline", "github"}
    flaky = [s for s in state["stage_runs"] if s["failed_once"] and s["status"] == "succeeded"]
    assert flaky and all(s["name"] == "Test" for s in flaky)
    assert {s["name"] for s in state["stage_runs"] if s["pipeline_run_id"].startswith("codepipeline:")} == {
        "Source",
        "Build",
        "Test",
        "Approval",
        "Prod",
    }


def test_the_aws_events_add_build_queues_alarms_and_detection_and_count_no_deployment_twice(engine, small):
    from analysis.windows import window_between
    from collector.models import alarms
    from gatewatch.services.delivery import dora_report, pipeline_report

    config = demo_config()
    added = {"codebuild", "codedeploy", "cloudwatch", "codecommit"}
    window = window_between(END - timedelta(days=SMALL["days"]), END)

    def figures() -> tuple[dict, dict]:
        return dora_report(engine, config, window), pipeline_report(engine, window)

    first = ingest.ingest(engine, demo.envelopes([e for e in small if e[0] not in added]), config)
    dora_before, pipelines_before = figures()
    merged_before = {c["id"]: c["merged_at"] for c in rows(engine, changes)}
    rest = [e for e in small if e[0] in added]
    second = ingest.ingest(engine, demo.envelopes(rest), config)
    assert first.quarantined == [] and second.quarantined == [] and second.stored == len(rest)
    dora_after, pipelines_after = figures()

    # CodeDeploy's deployments are their CodePipeline executions' Prod actions: counted once
    codedeploy_rows = rows(engine, deployments, deployments.c.source == "codedeploy")
    assert len(codedeploy_rows) == len({p["detail"]["deploymentId"] for s, _, p in rest if s == "codedeploy"}) > 5
    for key in ("deployment_frequency", "lead_time", "change_failure_rate"):
        assert dora_after[key] == dora_before[key], key
    assert pipelines_after["deployments"] == pipelines_before["deployments"]
    assert pipelines_after["pipeline_runs"] == pipelines_before["pipeline_runs"]  # builds are actions, not runs
    # the CodeCommit mirror's pushes come after GitHub's: no merge time moves; a direct push's head (no pull
    # request, so GitHub gave no merge time) gets the mirror's push time
    merged_after = {c["id"]: c["merged_at"] for c in rows(engine, changes)}
    assert merged_after.keys() == merged_before.keys()
    moved = {k for k, v in merged_before.items() if v != merged_after[k]}
    assert all(merged_before[k] is None for k in moved)
    assert moved <= {p["detail"]["commitId"] for s, _, p in rest if s == "codecommit"}
    assert pipelines_after["merge_to_production"]["count"] >= pipelines_before["merge_to_production"]["count"]
    # builds wait in CodeBuild's queue, inside their actions
    queue_before, queue_after = pipelines_before["queue_time"], pipelines_after["queue_time"]
    assert queue_after["count"] == queue_before["count"] > 0
    assert queue_after["mean_hours"] > queue_before["mean_hours"] and queue_after["max_hours"] > 2 / 60
    # alarm episodes, each of a CodePipeline service, detect the bad deployments that were rolled back
    episodes = rows(engine, alarms)
    pipelines = {s.name for s in demo.organisation(SMALL["services"], SMALL["seed"]) if s.platform == "codepipeline"}
    assert episodes and {e["service"] for e in episodes} == pipelines
    assert all(e["started_at"] < e["ended_at"] for e in episodes if e["status"] == "resolved")
    detection_before, detection_after = (
        pipelines_before["detection_to_rollback"],
        pipelines_after["detection_to_rollback"],
    )
    assert detection_after["count"] > detection_before["count"] and detection_after["median_hours"] is not None
    assert detection_after["rollbacks"] == detection_before["rollbacks"]


def test_running_the_demo_twice_stores_only_duplicates_and_replay_rebuilds_the_rows(engine):
    config = demo_config()
    assert count_raw_events(engine) == 0
    first = demo.run_demo(engine, config, **SMALL)
    before = dump_projections(engine)
    second = demo.run_demo(engine, config, **SMALL)
    assert (second.summary.stored, second.summary.duplicates) == (0, first.summary.stored)
    assert count_raw_events(engine) == first.summary.stored
    assert dump_projections(engine) == before
    ingest.replay(engine, config)
    assert dump_projections(engine) == before


# --- canary runs, SLOs and gate decisions ---------------------------------------------------------


def _extras(engine, folder: Path, **options):
    opts = {**SMALL, **options}
    end = demo.end_of(opts["end"])
    services = demo.organisation(opts["services"], opts["seed"])
    return demo.build(
        engine,
        config_from_mapping({}, environ={}),
        services,
        end - timedelta(days=opts["days"]),
        end,
        opts["seed"],
        folder,
    )


def _sli_figures(path: Path, objective: float, at: datetime) -> dict[str, float]:
    """Budget remaining and the 1h/5m burn rates, summed by hand from the SLI CSV."""
    frame = pd.read_csv(path, parse_dates=["timestamp"])
    allowed = 1 - objective / 100

    def burn(span: timedelta) -> float:
        part = frame[(frame["timestamp"] > at - span) & (frame["timestamp"] <= at)]
        return (part["total"].sum() - part["good"].sum()) / part["total"].sum() / allowed

    return {
        "budget_remaining": 1 - burn(timedelta(days=28)),
        "burn_1h": burn(timedelta(hours=1)),
        "burn_5m": burn(timedelta(minutes=5)),
    }


def test_the_demo_telemetry_is_deterministic_per_seed_and_end():
    end = demo.end_of(END)
    frame = telemetry.sli_frame("checkout", "healthy", 99.9, end, 4)
    assert frame.equals(telemetry.sli_frame("checkout", "healthy", 99.9, end, 4))
    assert not frame.equals(telemetry.sli_frame("checkout", "healthy", 99.9, end, 5))
    assert not frame.equals(telemetry.sli_frame("checkout", "healthy", 99.9, end + timedelta(days=1), 4))
    assert (frame["good"] <= frame["total"]).all() and frame["timestamp"].is_unique
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    assert stamps.is_monotonic_increasing and stamps.iloc[-1] == end and stamps.iloc[0] > end - timedelta(days=28)
    first, again = telemetry.canary_samples("d-1", "regressed", 4), telemetry.canary_samples("d-1", "regressed", 4)
    assert all(np.array_equal(first[m][i], again[m][i]) for m in first for i in (0, 1))
    other = telemetry.canary_samples("d-2", "regressed", 4)
    assert not np.array_equal(first["latency_p99"][0], other["latency_p99"][0])


def test_the_demo_stores_judged_canary_runs_slos_and_all_three_gate_decisions(engine, tmp_path):
    demo.run_demo(engine, demo_config(), **SMALL)
    folder = tmp_path / demo.DEMO_FILES
    extras = _extras(engine, folder)
    end = demo.end_of(END)
    org = demo.organisation(SMALL["services"], SMALL["seed"])
    deps = {d["id"]: d for d in rows(engine, deployments)}

    # canary runs of real production deployments; the rolled-back ones regressed
    stored = list_runs(engine, limit=100)
    assert len(stored) == len(extras.canary_runs) + 3  # and one per gate's canary check
    assert len(extras.canary_runs) >= 4 and all(r["new"] for r in extras.canary_runs)
    kinds = Counter(r["kind"] for r in extras.canary_runs)
    assert kinds["healthy"] >= 2 and kinds["marginal"] == 1 and kinds["regressed"] >= 1
    for r in extras.canary_runs:
        run = load_run(engine, r["id"])
        dep = deps[run.deployment_id]
        assert dep["production"] and dep["service"] == r["service"] and run.source == "demo"
        assert run.window_end == dep["finished_at"] and run.window_end - run.window_start == timedelta(minutes=30)
        baseline, canary = run.samples["latency_p99"]
        ratio = np.median(canary) / np.median(baseline)
        expected = {"healthy": "pass", "marginal": "marginal", "regressed": "fail"}[r["kind"]]
        assert run.verdict == r["verdict"] == expected, (r, ratio)
        assert (ratio > 1.25) == (r["kind"] == "regressed")
        if r["kind"] == "regressed":
            assert any(d["rollback_of"] == dep["id"] for d in deps.values()) or dep["status"] == "rolled_back"
        errors, requests = run.samples["error_ratio"][1].T
        assert (errors <= requests).all() and requests.sum() > 10_000

    # SLO files that load, one per service; the SLO folder and the gate folder the config names
    config = config_from_mapping(
        demo.demo_config_mapping(SMALL["services"], SMALL["seed"]),
        source_path=str(tmp_path / "gatewatch.yaml"),
        environ={},
    )
    assert Path(config.slos) == folder / "slos" and Path(config.gates.policies) == folder / "gates"
    specs = {spec.service: spec for spec in load_slos(config.slos)}
    assert set(specs) == {s.name for s in org}
    figures = {svc: _sli_figures(spec.sli.data.path, spec.objective * 100, end) for svc, spec in specs.items()}
    profiles = {s["service"]: s["profile"] for s in extras.slos}
    for svc, spec in specs.items():
        state = slo_status(spec, end)
        assert state.budget_remaining == pytest.approx(figures[svc]["budget_remaining"])
        firing = {(a.long_window, a.short_window) for a in state.firing}
        assert ((timedelta(hours=1), timedelta(minutes=5)) in firing) == (profiles[svc] == "burning")
    burning = [svc for svc, p in profiles.items() if p == "burning"]
    assert burning == [org[2].name] and figures[org[2].name]["burn_1h"] > 14.4 < figures[org[2].name]["burn_5m"]
    assert figures[org[1].name]["budget_remaining"] < 0.25 < figures[org[0].name]["budget_remaining"]

    # gate decisions through the real policies: a promote, a hold and a rollback, in the audit log
    assert sorted(load_policies(config.gates.policies)) == sorted(f"{s.name}-prod" for s in org)
    made = {d["decision"]: d for d in extras.gate_decisions}
    assert set(made) == {"promote", "hold", "rollback"} and all(d["new"] for d in made.values())
    assert [made[k]["service"] for k in ("promote", "hold", "rollback")] == [s.name for s in org]
    for d in made.values():
        audit = get_decision(engine, key=d["key"])
        assert audit.decision == d["decision"] and audit.deployment_id == d["deployment_id"] in deps
        assert deps[d["deployment_id"]]["service"] == d["service"]
        assert load_run(engine, audit.evidence["canary_run_id"]).deployment_id == d["deployment_id"]
    assert made["promote"]["reasons"] == ["every check passed"]
    held = {c["name"]: c["effect"] for c in get_decision(engine, key=made["hold"]["key"]).checks}
    assert held == {"canary": "none", "error_budget": "hold", "burn_rate": "none"}
    assert len(made["hold"]["reasons"]) == 1 and "error budget" in made["hold"]["reasons"][0]
    rollback = {c["name"]: c for c in get_decision(engine, key=made["rollback"]["key"]).checks}
    assert rollback["canary"]["effect"] == rollback["burn_rate"]["effect"] == "rollback"

    # again: the same files, nothing stored twice
    files = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = _extras(engine, folder)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files
    assert not any(r["new"] for r in again.canary_runs) and not any(d["new"] for d in again.gate_decisions)
    assert len(list_runs(engine, limit=100)) == len(stored)
    assert [r["id"] for r in again.canary_runs] == [r["id"] for r in extras.canary_runs]
    assert [d["decision"] for d in again.gate_decisions] == [d["decision"] for d in extras.gate_decisions]


def test_the_demo_files_and_verdicts_are_the_same_in_another_store_and_differ_by_seed(tmp_path):
    from collector.db import create_store_engine, upgrade

    def build(name: str, **options):
        engine = create_store_engine(f"sqlite:///{tmp_path / (name + '.db')}")
        upgrade(engine)
        demo.run_demo(engine, demo_config(seed=options.get("seed", SMALL["seed"])), **{**SMALL, **options})
        extras = _extras(engine, tmp_path / name, **options)
        engine.dispose()
        files = {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*") if p.is_file()}
        summary = [(r["deployment_id"], r["kind"], r["verdict"]) for r in extras.canary_runs]
        return files, summary, [(d["gate"], d["deployment_id"], d["decision"]) for d in extras.gate_decisions]

    first = build("a")
    assert build("b") == first
    other = build("c", seed=5)
    assert other[0] != first[0] and other[1] != first[1]
    assert {d for _, _, d in other[2]} == {"promote", "hold", "rollback"}


def test_with_fewer_services_the_demo_makes_the_gate_decisions_it_can(engine, tmp_path):
    demo.run_demo(engine, demo_config(1, 7), services=1, days=5, seed=7, end=END)
    extras = _extras(engine, tmp_path, services=1, days=5, seed=7)
    assert [d["decision"] for d in extras.gate_decisions] == ["promote"]
    assert [s["profile"] for s in extras.slos] == ["healthy"]


# --- the command ----------------------------------------------------------------------------------


def test_the_command_writes_its_config_then_finds_nothing_new(store_url, tmp_path, gatewatch):
    args = ("--db", store_url, "demo", "--services", "2", "--days", "7", "--end", "2025-06-02")
    res = gatewatch(*args, "--json", cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    config_file = tmp_path / "gatewatch.yaml"
    written = config_file.read_text()
    assert out["config_written"] == str(config_file.resolve())
    assert yaml.safe_load(written) == demo.demo_config_mapping(2, 7) == out["config"]
    assert out["ingest"]["stored"] == out["payloads"] > 100 and out["ingest"]["quarantined"] == 0
    assert [s["name"] for s in out["services"]] == ["checkout", "search"]
    assert "generating" in res.stderr
    files = out["demo_files"]
    assert files["folder"] == str((tmp_path / "gatewatch-demo").resolve())
    assert [Path(s["file"]).parent for s in files["slos"]] == [tmp_path.resolve() / "gatewatch-demo" / "slos"] * 2
    assert files["canary_runs"] and {d["decision"] for d in files["gate_decisions"]} <= {"promote", "hold", "rollback"}
    shown = gatewatch("--db", store_url, "canary", "show", files["canary_runs"][0]["id"], "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["verdict"] == files["canary_runs"][0]["verdict"]

    again = gatewatch(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Nothing new" in again.stdout and f"all {out['payloads']:,} payloads were duplicates" in again.stdout
    assert f"Canary runs: 0 stored, {len(files['canary_runs'])} already there" in again.stdout
    assert "warning" not in again.stderr  # its own gatewatch.yaml holds the demo's maps already
    assert "gatewatch dora" in again.stdout and "gatewatch dashboard" in again.stdout
    assert config_file.read_text() == written  # never overwritten

    replay = gatewatch("--db", store_url, "replay", "--json", cwd=tmp_path)
    assert replay.returncode == 0 and json.loads(replay.stdout)["newly_quarantined"] == 0


def test_the_demo_outbox_holds_what_would_have_been_sent(demo_stores, gatewatch):
    url, folder = demo_stores("--services", "4", "--days", "45")
    org = demo.organisation(4, demo.DEFAULT_SEED)
    outbox = folder / demo.DEMO_FILES / "notifications.ndjson"
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    by_event = {(n["event"], n["service"]): n for n in lines}
    burning = org[2].name  # the demo's third service burns its budget and its gate rolls back
    rollback = by_event[("gate_rollback", burning)]
    decision = get_decision_by_id(url, rollback["decision_id"])
    assert decision["decision"] == "rollback" and decision["service"] == burning
    assert rollback["details"]["reasons"] == decision["reasons"] and rollback["severity"] == "error"
    assert rollback["link"] == f"http://127.0.0.1:8080/v1/decisions/{rollback['decision_id']}"
    assert rollback["team"] == org[2].team and rollback["channel"] == "outbox"
    page = by_event[("burn_rate_page", burning)]
    assert page["severity"] == "critical" and page["dedup_key"] == f"burn_rate:{burning}/availability:page"
    assert ("canary_fail", burning) in by_event and ("gate_hold", org[1].name) in by_event
    assert not any(n["service"] == org[0].name for n in lines)  # the promoted, healthy service: nothing to say
    listed = gatewatch("--db", url, "notify", "list", "--json", cwd=folder)
    assert listed.returncode == 0 and {n["status"] for n in json.loads(listed.stdout)} == {"sent"}
    assert len(json.loads(listed.stdout)) == len(lines)


def get_decision_by_id(url: str, decision_id: str) -> dict:
    from collector.db import create_store_engine

    engine = create_store_engine(url)
    try:
        return get_decision(engine, decision_id=decision_id).to_dict()
    finally:
        engine.dispose()


def test_with_a_config_in_use_the_demo_maps_go_under_it_with_a_warning(tmp_path, gatewatch):
    own = tmp_path / "mine.yaml"
    own.write_text("teams: {checkout: storefront}\n")
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = gatewatch(
        "--db",
        url,
        "--config",
        str(own),
        "demo",
        "--services",
        "2",
        "--days",
        "5",
        "--end",
        "2025-06-02",
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "warning" in res.stderr and "replay" in res.stderr and "checkout-pipeline: checkout" in res.stderr
    assert not (tmp_path / "gatewatch.yaml").exists() and own.read_text() == "teams: {checkout: storefront}\n"
    from collector.db import create_store_engine

    engine = create_store_engine(url)
    teams = {(d["service"], d["team"]) for d in rows(engine, deployments)}
    engine.dispose()
    assert teams == {("checkout", "storefront"), ("search", "discovery")}


def test_usage_errors_exit_2_without_a_traceback(tmp_path, gatewatch):
    for bad in (["--services", "0"], ["--end", "June"], ["--days", "9999"]):
        res = gatewatch("--db", f"sqlite:///{tmp_path / 's.db'}", "demo", *bad, cwd=tmp_path)
        assert res.returncode == 2 and "Traceback" not in res.stderr and "Error" in res.stderr, bad
    res = gatewatch("--db", "mysql+nonexistent://x", "demo", cwd=tmp_path)
    assert res.returncode == 4 and "Traceback" not in res.stderr
    assert not (tmp_path / "gatewatch.yaml").exists()  # nothing written when the store is unreachable


@pytest.mark.slow
def test_the_default_demo_ingests_cleanly_and_quickly(tmp_path, default_history):
    from collector.db import create_store_engine, upgrade

    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    began = time.perf_counter()
    result = demo.run_demo(engine, demo_config(8, 7), end=END)
    seconds = time.perf_counter() - began
    engine.dispose()
    assert result.summary.quarantined == [] and result.summary.stored == len(default_history) > 15_000
    assert seconds < 30, seconds
