"""Pipeline events for the duration breakdown tests, made from the published payloads: two services'
GitHub workflows both named `deploy`, and the CodePipeline execution of tests/fixtures/aws (as
published, and with its Prod stage renamed so that its name says "test")."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from tests.conftest import fixture_path

CODEPIPELINE = "aws/codepipeline-execution.eventbridge.ndjson"


_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _fixture(relative: str) -> dict[str, Any]:
    return json.loads(fixture_path(relative).read_text())


def shifted(payload: Any, by: timedelta) -> Any:
    """The payload with every ISO 8601 UTC time in it moved by `by` (to place the samples in a recent window)."""
    if isinstance(payload, dict):
        return {key: shifted(value, by) for key, value in payload.items()}
    if isinstance(payload, list):
        return [shifted(value, by) for value in payload]
    if isinstance(payload, str) and _STAMP.fullmatch(payload):
        moved = datetime.fromisoformat(payload.replace("Z", "+00:00")) + by
        return moved.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return payload


def github_deploy(repo: str, run_id: int, created: str, job_started: str, done: str) -> list[dict[str, Any]]:
    """A succeeded run of `repo`'s workflow `deploy` queued at `created`, with one job `deploy` from
    `job_started` to `done` whose one step is "Run tests" (a CI step's category is a guess from its name)."""
    run = _fixture("github/workflow_run.completed.json")
    run["repository"].update(full_name=repo, name=repo.split("/")[1])
    run["workflow_run"].update(
        id=run_id,
        name="deploy",
        status="completed",
        conclusion="success",
        created_at=created,
        run_started_at=created,
        updated_at=done,
    )
    job = _fixture("github/workflow_job.completed.success.with-organization.json")
    job["repository"].update(full_name=repo, name=repo.split("/")[1])
    step = {"name": "Run tests", "status": "completed", "conclusion": "success", "number": 1}
    job["workflow_job"].update(
        id=run_id * 10,
        run_id=run_id,
        name="deploy",
        status="completed",
        conclusion="success",
        created_at=created,
        started_at=job_started,
        completed_at=done,
        steps=[step | {"started_at": job_started, "completed_at": done}],
    )
    return [run, job]


def two_services_deploy() -> list[dict[str, Any]]:
    """api's `deploy`: 2 min queued, then 30 and 50 min deploy jobs; web's `deploy`: 2 min queued, a 6 min job."""
    return [
        *github_deploy("octo-org/api", 1001, "2024-05-02T10:00:00Z", "2024-05-02T10:02:00Z", "2024-05-02T10:32:00Z"),
        *github_deploy("octo-org/api", 1002, "2024-05-03T10:00:00Z", "2024-05-03T10:02:00Z", "2024-05-03T10:52:00Z"),
        *github_deploy("octo-org/web", 2001, "2024-05-02T11:00:00Z", "2024-05-02T11:02:00Z", "2024-05-02T11:08:00Z"),
    ]


def codepipeline(pipeline: str = "myPipeline", prod_stage: str = "Prod") -> list[dict[str, Any]]:
    """The published execution (Source, Build, Prod deploying with CodeDeploy; see tests/fixtures/aws/README.md)
    of `pipeline`, its Prod stage named `prod_stage`: Build 10:00:21-10:06:40, Prod 10:06:41-10:23:45,
    the first action starting 1 s after the run."""
    events = [json.loads(line) for line in fixture_path(CODEPIPELINE).read_text().splitlines() if line.strip()]
    for event in events:
        detail = event["detail"]
        detail["pipeline"] = pipeline
        if detail.get("stage") == "Prod":
            detail["stage"] = prod_stage
        event["id"] = f"{pipeline}-{event['id']}"
        event["resources"] = [r.replace("myPipeline", pipeline) for r in event.get("resources", [])]
    return events
