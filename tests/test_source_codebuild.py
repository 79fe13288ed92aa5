"""CodeBuild EventBridge events (from the published examples) into build runs with queue and build
times; a build that CodePipeline started gives its action's queue time and is not a run of its own."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime

import pytest

from analysis.windows import window_between
from collector import ingest
from collector.config import config_from_mapping
from gatewatch.services.delivery import pipeline_report
from tests.conftest import dump_projections, fixture_path

SAMPLE = "codebuild:my-sample-project:8745a7a9-c340-456a-9166-edf953571bEX"
PIPELINE_BUILD = "checkout-build:1b2c"  # the external id of myPipeline's Build action
WINDOW = window_between(date(2024, 5, 1), date(2024, 5, 2), "UTC")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def published(kind: str) -> dict:
    return json.loads(fixture_path(f"aws/codebuild-build-{kind}-change.published.json").read_text())


def runs(engine) -> dict[str, dict]:
    return {row["id"]: row for row in dump_projections(engine)["pipeline_runs"]}


def pipeline_events() -> list[dict]:
    text = fixture_path("aws/codepipeline-execution.eventbridge.ndjson").read_text()
    return [json.loads(line) for line in text.splitlines()]


def phase(kind: str, start: str, end: str | None = None) -> dict:
    """One entry of `additional-information.phases`, shaped as the published ones."""
    out: dict = {"phase-context": [], "start-time": start, "phase-type": kind}
    if end:
        begun, ended = (datetime.strptime(t, "%b %d, %Y %I:%M:%S %p") for t in (start, end))
        out.update({"end-time": end, "duration-in-seconds": int((ended - begun).total_seconds())})
        out["phase-status"] = "SUCCEEDED"
    return out


def pipeline_build(status: str, time: str, phases: list[dict]) -> dict:
    """The published state change as myPipeline's Build action's build: started by CodePipeline."""
    out = copy.deepcopy(published("state"))
    arn = f"arn:aws:codebuild:us-east-1:111122223333:build/{PIPELINE_BUILD}"
    out.update(id=f"build-{status}", time=time, resources=[arn])
    info = out["detail"]["additional-information"]
    info.update(initiator="codepipeline/myPipeline", phases=phases, **{"build-start-time": "May 1, 2024 10:00:22 AM"})
    info["build-complete"] = status != "IN_PROGRESS"
    out["detail"].update({"build-status": status, "project-name": "checkout-build", "build-id": arn})
    return out


def queued_build() -> list[dict]:
    """Submitted at 10:00:22, 90 s in CodeBuild's queue, built until 10:06:35."""
    submitted = phase("SUBMITTED", "May 1, 2024 10:00:22 AM", "May 1, 2024 10:00:22 AM")
    waiting = phase("QUEUED", "May 1, 2024 10:00:22 AM")
    queued = phase("QUEUED", "May 1, 2024 10:00:22 AM", "May 1, 2024 10:01:52 AM")
    rest = [
        phase("PROVISIONING", "May 1, 2024 10:01:52 AM", "May 1, 2024 10:02:20 AM"),
        phase("BUILD", "May 1, 2024 10:02:20 AM", "May 1, 2024 10:06:30 AM"),
        phase("FINALIZING", "May 1, 2024 10:06:30 AM", "May 1, 2024 10:06:35 AM"),
        {"start-time": "May 1, 2024 10:06:35 AM", "phase-type": "COMPLETED"},
    ]
    return [
        pipeline_build("IN_PROGRESS", "2024-05-01T10:00:22Z", [submitted, waiting]),
        pipeline_build("SUCCEEDED", "2024-05-01T10:06:38Z", [submitted, queued, *rest]),
    ]


@pytest.mark.parametrize("order", [1, -1])
def test_the_published_examples(engine, order):
    config = config_from_mapping({"services": {"codebuild": {"my-sample-project": "sample"}}}, environ={})
    summary = ingest.ingest_payloads(engine, [published("state"), published("phase")][::order], config)
    assert summary.quarantined == [] and summary.stored == 2
    (run,) = runs(engine).values()
    assert (run["id"], run["source"], run["pipeline"], run["service"], run["trigger"]) == (
        SAMPLE,
        "codebuild",
        "my-sample-project",
        "sample",
        "MyCodeBuildDemoUser",
    )
    # no QUEUED phase: work began with PROVISIONING at submission
    assert (run["status"], run["queued_at"], run["started_at"], run["finished_at"], run["status_at"]) == (
        "succeeded",
        utc("2017-09-01T16:12:29"),
        utc("2017-09-01T16:12:29"),
        utc("2017-09-01T16:14:26"),
        utc("2017-09-01T16:14:28"),
    )
    assert run["url"].startswith("https://console.aws.amazon.com/cloudwatch/")


def test_a_phase_change_alone_gives_times_not_a_status(engine, config):
    assert ingest.ingest_payloads(engine, [published("phase")], config).quarantined == []
    (run,) = runs(engine).values()
    assert (run["status"], run["queued_at"], run["started_at"]) == (
        None,
        utc("2017-09-01T16:12:29"),
        utc("2017-09-01T16:12:29"),
    )


@pytest.mark.parametrize("order", [1, -1])
def test_a_queued_build_starts_when_the_queue_ends(engine, config, order):
    assert ingest.ingest_payloads(engine, queued_build()[::order], config).quarantined == []
    run = runs(engine)[f"codebuild:{PIPELINE_BUILD}"]
    assert (run["status"], run["queued_at"], run["started_at"], run["finished_at"], run["trigger"]) == (
        "succeeded",
        utc("2024-05-01T10:00:22"),
        utc("2024-05-01T10:01:52"),
        utc("2024-05-01T10:06:35"),
        "codepipeline/myPipeline",
    )


def test_the_build_actions_queue_in_codebuild_is_the_pipelines_queue_time(engine, config):
    """CodePipeline started the Build action at once (1 s after the trigger); its build then waited
    90 s for a build host: the execution's queue time is 91 s, and the build is no run of its own."""
    assert ingest.ingest_payloads(engine, pipeline_events(), config).quarantined == []
    before = pipeline_report(engine, WINDOW)
    assert before["queue_time"]["count"] == 1 and before["queue_time"]["median_hours"] == pytest.approx(
        1 / 3600, abs=1e-4
    )

    standalone = json.loads(
        json.dumps(published("state")).replace("Sep 1, 2017", "May 1, 2024").replace("2017-09-01", "2024-05-01")
    )
    assert ingest.ingest_payloads(engine, [*queued_build(), standalone], config).quarantined == []
    report = pipeline_report(engine, WINDOW)
    assert report["queue_time"]["count"] == 2
    assert report["queue_time"]["max_hours"] == pytest.approx(91 / 3600, abs=1e-4)
    assert {(p["pipeline"], p["runs"]) for p in report["per_pipeline"]} == {
        ("myPipeline", 1),
        ("my-sample-project", 1),
    }
    assert report["pipeline_runs"]["finished"] == 2


def test_bad_events_are_quarantined_naming_the_field(engine, config):
    bad_status = copy.deepcopy(published("state"))
    bad_status["id"], bad_status["detail"]["build-status"] = "x1", "DONE"
    bad_time = copy.deepcopy(published("state"))
    bad_time["id"] = "x2"
    bad_time["detail"]["additional-information"]["phases"][1]["start-time"] = "yesterday"
    bad_arn = copy.deepcopy(published("state"))
    bad_arn["id"], bad_arn["detail"]["build-id"] = "x3", "arn:aws:codebuild:us-west-2:123456789012:project/x"
    fleet = {"source": "aws.codebuild", "detail-type": "CodeBuild Fleet State Change", "detail": {}}
    summary = ingest.ingest_payloads(engine, [bad_status, bad_time, bad_arn, fleet], config)
    errors = [q.error for q in summary.quarantined]
    assert len(errors) == 3
    assert any("detail.build-status" in e and "DONE" in e for e in errors)
    assert any("detail.additional-information.phases.1.start-time" in e and "yesterday" in e for e in errors)
    assert any("detail.build-id" in e for e in errors)
    assert (summary.stored, summary.ignored) == (1, 1) and runs(engine) == {}  # the fleet event
