"""GitLab webhooks: pipelines with their stages and jobs, job (build) events, deployments and pushed
commits, as projection updates.

Conventions worth knowing:
- A pipeline is named by its project path (`group/project`), the stable thing to group runs by;
  tag pipelines have no branch.
- GitLab hooks carry no event time, so a pipeline's or stage's `status_at` is the latest transition
  visible in the payload (the pipeline's finish, else its newest job start/finish/creation); a job's
  is its own finish, start or creation time. Later hooks therefore never look older than earlier ones.
- A stage's status is derived from its jobs (the latest attempt of each job name): any running, or
  some done and some waiting -> in_progress; all waiting -> queued; all done -> failed if a job that
  may not fail failed, else canceled if one was canceled, else succeeded. Manual and skipped jobs
  count only when the stage has nothing else.
- Legacy job hooks lack `pipeline_id` and the project path: their `commit.id` is the pipeline id and
  `repository.homepage` gives the path.
- A deployment links to its commit only when the full SHA is known (the end of `commit_url`).
- A merged merge request (`action` `merge`) is its merge commit as a change with `merged_at` and the
  MR's `iid` as `pr`; the hook has no `merged_at`, so the merge hook's `updated_at` is the merge time.
  Its `last_commit` is recorded with its commit time and the merge commit as its pushed head, so a
  deployment of the merge commit holds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from gatewatch.errors import PayloadError

from .base import TERMINAL, Update, boolean, category_for, choice, dispatch, field, timestamp

NAME = "gitlab"
HOOKS = {
    "Pipeline Hook": "pipeline",
    "Job Hook": "build",
    "Build Hook": "build",
    "Deployment Hook": "deployment",
    "Push Hook": "push",
    "Merge Request Hook": "merge_request",
}
PIPELINE_STATUS = {
    "created": "queued",
    "waiting_for_resource": "queued",
    "preparing": "queued",
    "pending": "queued",
    "scheduled": "queued",
    "manual": "queued",
    "running": "in_progress",
    "canceling": "in_progress",
    "success": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    "skipped": "canceled",
}
DEPLOYMENT_STATUS = {
    "created": "pending",
    "blocked": "pending",
    "running": "in_progress",
    "success": "success",
    "failed": "failure",
    "canceled": "canceled",
    "skipped": "canceled",
}
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def detect(payload: Any, hint: str | None = None) -> str | None:
    """GitLab's `object_kind` (pipeline, build, deployment, push, ...), else the X-Gitlab-Event header's."""
    if not isinstance(payload, Mapping):
        return None
    kind = payload.get("object_kind")
    if isinstance(kind, str) and kind:
        return kind
    return HOOKS.get(hint.strip()) if hint else None


def event_id(kind: str, payload: Any) -> str | None:
    """GitLab hooks carry no delivery id in the body: dedupe on the content hash."""
    return None


def _project(payload: Mapping, config: Any) -> tuple[str, str, str | None]:
    """(project path, service, web URL); legacy job hooks only name the project by its homepage."""
    path = field(payload, "project.path_with_namespace", required=False)
    web_url = field(payload, "project.web_url", required=False)
    homepage = field(payload, "repository.homepage", required=False)
    if not path and homepage:
        path = urlsplit(homepage).path.strip("/") or None
    if not path:
        raise PayloadError("project.path_with_namespace", "a string (required; or repository.homepage)")
    return path, config.service_for_repository(path), (web_url or homepage or "").rstrip("/") or None


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _job(run_key: str, web_url: str | None, job: dict) -> Update:
    """The action_runs update of one job (from a pipeline's `builds` or a job hook)."""
    status = job["status"]
    if status in TERMINAL:
        status_at = job["finished"] or job["started"] or job["created"]
    elif status == "in_progress":
        status_at = job["started"]
    else:
        status_at = job["created"]  # may be unknown: then it ranks below any dated state
    return Update(
        "action_runs",
        f"{run_key}:job:{job['id']}",
        {
            "pipeline_run_id": run_key,
            "stage_run_id": f"{run_key}:stage:{job['stage']}",
            "name": job["name"],
            "category": category_for(job["name"]),
            "provider": "gitlab-ci",
            "external_id": str(job["id"]),
            "url": f"{web_url}/-/jobs/{job['id']}" if web_url else None,
            "status": status,
            "status_at": status_at,
            "started_at": job["started"],
            "finished_at": status_at if status in TERMINAL else None,
            "failed_once": status == "failed",
        },
    )


def _read_job(payload: Mapping, prefix: str, names: Mapping[str, str]) -> dict:
    """A job's fields at `prefix` under the names its hook uses (`names`: our name -> theirs)."""
    status = choice(payload, prefix + names["status"], PIPELINE_STATUS)
    job = {
        "id": field(payload, prefix + names["id"], int),
        "name": field(payload, prefix + names["name"]),
        "stage": field(payload, prefix + names["stage"]),
        "raw_status": field(payload, prefix + names["status"]),
        "status": status,
        "created": timestamp(payload, prefix + names["created"], required=False),
        "started": timestamp(payload, prefix + names["started"], required=False),
        "finished": timestamp(payload, prefix + names["finished"], required=False),
        "allow_failure": bool(boolean(payload, prefix + names["allow_failure"])),
    }
    if status == "in_progress" and job["started"] is None:
        raise PayloadError(prefix + names["started"], "an ISO 8601 timestamp (required while running)")
    if status in TERMINAL and not (job["finished"] or job["started"] or job["created"]):
        raise PayloadError(prefix + names["finished"], "an ISO 8601 timestamp (required once finished)")
    return job


def _stage_status(jobs: list[dict]) -> str:
    """A stage's status from its jobs, by the rule in the module docstring."""
    latest: dict[str, dict] = {}
    for job in jobs:
        if job["name"] not in latest or job["id"] > latest[job["name"]]["id"]:
            latest[job["name"]] = job
    current = list(latest.values())
    counted = [j for j in current if j["raw_status"] not in ("manual", "skipped")]
    if not counted:
        return "canceled" if all(j["raw_status"] == "skipped" for j in current) else "queued"
    statuses = {j["status"] for j in counted}
    if "in_progress" in statuses or ("queued" in statuses and statuses & TERMINAL):
        return "in_progress"
    if statuses == {"queued"}:
        return "queued"
    if any(j["status"] == "failed" and not j["allow_failure"] for j in counted):
        return "failed"
    return "canceled" if "canceled" in statuses else "succeeded"


def _stage(run_key: str, name: str, jobs: list[dict]) -> Update:
    status = _stage_status(jobs)
    if status in TERMINAL:
        status_at = _latest(*(j["finished"] or j["started"] or j["created"] for j in jobs))
    else:
        status_at = _latest(*(t for j in jobs for t in (j["created"], j["started"], j["finished"])))
    return Update(
        "stage_runs",
        f"{run_key}:stage:{name}",
        {
            "pipeline_run_id": run_key,
            "name": name,
            "category": category_for(name),
            "status": status,
            "status_at": status_at,
            "queued_at": _earliest(*(j["created"] for j in jobs)),
            "started_at": _earliest(*(j["started"] for j in jobs)),
            "finished_at": status_at if status in TERMINAL else None,
            "failed_once": any(j["status"] == "failed" and not j["allow_failure"] for j in jobs),
        },
    )


_BUILD_NAMES = {
    "id": "id",
    "name": "name",
    "stage": "stage",
    "status": "status",
    "created": "created_at",
    "started": "started_at",
    "finished": "finished_at",
    "allow_failure": "allow_failure",
}
_JOB_HOOK_NAMES = {
    "id": "build_id",
    "name": "build_name",
    "stage": "build_stage",
    "status": "build_status",
    "created": "build_created_at",
    "started": "build_started_at",
    "finished": "build_finished_at",
    "allow_failure": "build_allow_failure",
}


def _pipeline(payload: Mapping, config: Any) -> list[Update]:
    path, service, web_url = _project(payload, config)
    attrs = "object_attributes"
    pipeline_id = field(payload, f"{attrs}.id", int)
    run_key = f"gitlab:{path}:pipeline:{pipeline_id}"
    status = choice(payload, f"{attrs}.status", PIPELINE_STATUS)
    created = timestamp(payload, f"{attrs}.created_at")
    finished = timestamp(payload, f"{attrs}.finished_at", required=False)
    builds = field(payload, "builds", list, required=False) or []
    jobs = [_read_job(payload, f"builds.{i}.", _BUILD_NAMES) for i in range(len(builds))]
    seen = _latest(created, *(t for j in jobs for t in (j["created"], j["started"], j["finished"])))
    status_at = (finished or seen) if status in TERMINAL else seen
    url = field(payload, f"{attrs}.url", required=False) or (
        f"{web_url}/-/pipelines/{pipeline_id}" if web_url else None
    )
    updates = [
        Update(
            "pipeline_runs",
            run_key,
            {
                "source": NAME,
                "pipeline": path,
                "service": service,
                "revision": field(payload, f"{attrs}.sha"),
                "branch": (
                    None if boolean(payload, f"{attrs}.tag") else field(payload, f"{attrs}.ref", required=False)
                ),
                "trigger": field(payload, f"{attrs}.source", required=False),
                "url": url,
                "status": status,
                "status_at": status_at,
                "queued_at": created,
                "started_at": _earliest(*(j["started"] for j in jobs)),
                "finished_at": status_at if status in TERMINAL else None,
            },
        )
    ]
    stages: dict[str, list[dict]] = {}
    for job in jobs:
        stages.setdefault(job["stage"], []).append(job)
        updates.append(_job(run_key, web_url, job))
    updates.extend(_stage(run_key, name, stage_jobs) for name, stage_jobs in sorted(stages.items()))
    return updates


def _build(payload: Mapping, config: Any) -> list[Update]:
    path, _, web_url = _project(payload, config)
    pipeline_id = field(payload, "pipeline_id", int, required=False)
    if pipeline_id is None:  # legacy Build Hook: the "commit" is the pipeline
        pipeline_id = field(payload, "commit.id", int, required=False)
    if pipeline_id is None:
        raise PayloadError("pipeline_id", "an integer (required)")
    run_key = f"gitlab:{path}:pipeline:{pipeline_id}"
    job = _read_job(payload, "", _JOB_HOOK_NAMES)
    stage = Update(
        "stage_runs",
        f"{run_key}:stage:{job['stage']}",
        {
            "pipeline_run_id": run_key,
            "name": job["stage"],
            "category": category_for(job["stage"]),
            "queued_at": job["created"],
            "started_at": job["started"],
            "failed_once": job["status"] == "failed" and not job["allow_failure"],
        },
    )
    return [_job(run_key, web_url, job), stage]


def _deployment(payload: Mapping, config: Any) -> list[Update]:
    path, service, _ = _project(payload, config)
    key = f"gitlab:{path}:deployment:{field(payload, 'deployment_id', int)}"
    status = choice(payload, "status", DEPLOYMENT_STATUS)
    status_at = timestamp(payload, "status_changed_at")
    environment = field(payload, "environment")
    commit_url = field(payload, "commit_url", required=False) or ""
    last = commit_url.rstrip("/").rsplit("/", 1)[-1].lower()
    sha = last if _SHA.fullmatch(last) else None
    revision = sha or field(payload, "short_sha", required=False)
    if revision is None:
        raise PayloadError("commit_url", "a commit URL ending in the full SHA (or a short_sha)", commit_url or None)
    updates = [
        Update(
            "deployments",
            key,
            {
                "source": NAME,
                "service": service,
                "team": config.team_for(service),
                "environment": environment,
                "production": (
                    field(payload, "environment_tier", required=False) == "production"
                    or config.is_production_environment(environment)
                ),
                "status": status,
                "status_at": status_at,
                "started_at": status_at if status == "in_progress" else None,
                "finished_at": status_at if status in ("success", "failure", "canceled") else None,
                "revision": revision,
                "url": field(payload, "deployable_url", required=False),
                "is_rollback": False,
                "hotfix": False,
            },
        )
    ]
    if sha:
        updates.append(Update("deployment_changes", f"{key}|{sha}", {"deployment_id": key, "change_id": sha}))
    return updates


def _push(payload: Mapping, config: Any) -> list[Update]:
    commits = field(payload, "commits", list, required=False) or []
    if not commits:
        return []
    path, service, _ = _project(payload, config)
    head = field(payload, "after", required=False)
    updates = []
    for i in range(len(commits)):
        updates.append(_commit(payload, f"commits.{i}", service, path, head))
    return updates


def _commit(payload: Mapping, prefix: str, service: str, path: str, head: str | None) -> Update:
    """A commit object of a hook at `prefix` (id, message, timestamp, author) as a change pushed with `head`."""
    message = (field(payload, f"{prefix}.message", required=False) or "").strip()
    return Update(
        "changes",
        field(payload, f"{prefix}.id"),
        {
            "service": service,
            "repository": path,
            "committed_at": timestamp(payload, f"{prefix}.timestamp"),
            "author": field(payload, f"{prefix}.author.name", required=False),
            "title": message.splitlines()[0] if message else None,
            "pushed_head": head,
        },
    )


def _merge_request(payload: Mapping, config: Any) -> list[Update]:
    attributes = "object_attributes"
    action = field(payload, f"{attributes}.action", required=False)
    if field(payload, f"{attributes}.state", required=False) != "merged" or action not in (None, "merge"):
        return []
    path, service, _ = _project(payload, config)
    # A fast-forward merge has no merge commit: the source branch's head is what was merged.
    merge_sha = (
        field(payload, f"{attributes}.merge_commit_sha", required=False)
        or field(payload, f"{attributes}.squash_commit_sha", required=False)
        or field(payload, f"{attributes}.last_commit.id", required=False)
    )
    if not merge_sha:
        raise PayloadError(f"{attributes}.merge_commit_sha", "a commit SHA (or last_commit.id) for a merged MR")
    updates = [
        Update(
            "changes",
            merge_sha,
            {
                "service": service,
                "repository": path,
                "merged_at": timestamp(payload, f"{attributes}.merged_at", required=False)
                or timestamp(payload, f"{attributes}.updated_at"),
                "pr": field(payload, f"{attributes}.iid", int),
                "title": field(payload, f"{attributes}.title", required=False),
                "author": field(payload, "user.username", required=False),
            },
        )
    ]
    last = field(payload, f"{attributes}.last_commit.id", required=False)
    if last == merge_sha:
        updates.append(
            Update("changes", last, {"committed_at": timestamp(payload, f"{attributes}.last_commit.timestamp")})
        )
    elif last:
        updates.append(_commit(payload, f"{attributes}.last_commit", service, path, merge_sha))
    return updates


HANDLERS: dict[str, Callable[[Mapping, Any], list[Update]]] = {
    "pipeline": _pipeline,
    "build": _build,
    "deployment": _deployment,
    "push": _push,
    "merge_request": _merge_request,
}


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """Turn one GitLab webhook payload into projection updates; other hooks give none."""
    return dispatch(HANDLERS, kind, payload, config)
