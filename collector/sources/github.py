"""GitHub webhooks: Actions workflow runs, jobs and steps, deployments and their statuses, pushed
commits, merged pull requests and incident-labelled issues, as projection updates.

Conventions worth knowing:
- A completed run, job or step takes its status from its conclusion: success and neutral count as
  succeeded; failure, timed_out and startup_failure as failed; cancelled, and also skipped and
  stale (nothing ran to a verdict, so they must not inflate success rates), as canceled;
  action_required (waiting for someone to approve it) as queued.
- A queued job's `started_at` is a placeholder GitHub sets to its creation time, so `started_at` is
  read only once a job or step is running.
- A deployment's free-form `payload` object may carry Gatewatch's release facts:
  `{"version": "1.4.0", "hotfix": true, "rollback_of": "<deployment id>"}`. A bare GitHub deployment
  id in `rollback_of` means a deployment of the same repository; anything else is kept as given.
- `deployment_status` `inactive` means a later deployment superseded this one: it updates nothing
  but the descriptive columns, so it can never undo a success.
- An issue is an incident while it carries the configured incident label (default "incident"); a
  label such as `severity:high`, `sev1` or `severity/2` gives its severity (`high`, `sev1`, `sev2`).
  Events of an issue without the label (e.g. after it was removed) change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .. import payload_text
from .base import TERMINAL, Update, boolean, category_for, choice, dispatch, field, timestamp

NAME = "github"
PROGRESS = {
    "requested": "queued",
    "queued": "queued",
    "waiting": "queued",
    "pending": "queued",
    "in_progress": "in_progress",
    "completed": "completed",
}
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
DEPLOYMENT_STATES = {
    "success": "success",
    "failure": "failure",
    "error": "failure",
    "in_progress": "in_progress",
    "queued": "pending",
    "pending": "pending",
    "inactive": "",
}
_EVENT_NAME = re.compile(r"[a-z][a-z_]{1,63}")
_SEVERITY = re.compile(r"(?i)^(?:(?:severity|sev)\s*[:/=_ -]\s*|sev(?=\d))([a-z0-9][a-z0-9_-]*)$")


_REVIEW_KEYS = frozenset({"since", "workflow_job_run", "workflow_job_runs", "approver", "requestor", "reviewers"})


def _looks_like_github(payload: Mapping) -> bool:
    if "object_kind" in payload:
        return False  # GitLab's marker
    repository, sender = payload.get("repository"), payload.get("sender")
    return (
        (isinstance(repository, Mapping) and "full_name" in repository)
        or "hook_id" in payload
        or (isinstance(sender, Mapping) and "login" in sender)
    )


def _shape(payload: Mapping) -> str:
    """The X-GitHub-Event name a payload's shape implies ("other" for events we do not project)."""

    def has(key: str) -> bool:
        return isinstance(payload.get(key), Mapping)

    if "zen" in payload and "hook_id" in payload:
        return "ping"
    if has("workflow_job"):
        return "workflow_job"
    if "deployment_callback_url" in payload:
        return "deployment_protection_rule"  # carries the deployment it asks about; not a new deployment
    if has("deployment_status") and has("deployment"):
        return "deployment_status"
    if has("deployment"):
        return "deployment"
    if has("workflow_run"):
        # A review of a waiting deployment carries its (waiting) workflow run; it is not a run event.
        return "deployment_review" if not _REVIEW_KEYS.isdisjoint(payload) else "workflow_run"
    for name in ("check_run", "check_suite"):
        if has(name):
            return name
    if has("pull_request"):
        for extra, kind in (
            ("review", "pull_request_review"),
            ("comment", "pull_request_review_comment"),
            ("thread", "pull_request_review_thread"),
        ):
            if extra in payload:
                return kind
        return "pull_request"
    if has("issue"):
        return "issue_comment" if "comment" in payload else "issues"
    if all(key in payload for key in ("ref", "before", "after", "commits")):
        return "push"
    return "other"


def detect(payload: Any, hint: str | None = None) -> str | None:
    """The GitHub event name: the X-GitHub-Event header when given, else read from the body's shape."""
    if not isinstance(payload, Mapping) or not _looks_like_github(payload):
        return None
    if hint:
        name = hint.strip().lower()
        return name if _EVENT_NAME.fullmatch(name) else None
    return _shape(payload)


def event_id(kind: str, payload: Any) -> str | None:
    """GitHub's delivery id travels in a header, not the body: dedupe on the content hash."""
    return None


def _repository(payload: Mapping, config: Any) -> tuple[str, str, str | None]:
    repo = field(payload, "repository.full_name")
    service = config.service_for_repository(repo)
    return repo, service, config.team_for(service)


def _status(payload: Mapping, path: str) -> str:
    """Canonical run status of a workflow run, job or step at `path` (status, then conclusion)."""
    progress = choice(payload, f"{path}.status", PROGRESS)
    if progress == "completed":
        return choice(payload, f"{path}.conclusion", CONCLUSIONS)
    return progress


def _workflow_run(payload: Mapping, config: Any) -> list[Update]:
    repo, service, _ = _repository(payload, config)
    run_id = field(payload, "workflow_run.id", int)
    status = _status(payload, "workflow_run")
    status_at = timestamp(payload, "workflow_run.updated_at")
    pipeline = (
        field(payload, "workflow_run.name", required=False)
        or field(payload, "workflow.name", required=False)
        or field(payload, "workflow_run.path")
    )
    return [
        Update(
            "pipeline_runs",
            f"github:{repo}:run:{run_id}",
            {
                "source": NAME,
                "pipeline": pipeline,
                "service": service,
                "revision": field(payload, "workflow_run.head_sha"),
                "branch": field(payload, "workflow_run.head_branch", required=False),
                "trigger": field(payload, "workflow_run.event", required=False),
                "url": field(payload, "workflow_run.html_url", required=False),
                "status": status,
                "status_at": status_at,
                "queued_at": timestamp(payload, "workflow_run.created_at", required=False),
                "started_at": timestamp(payload, "workflow_run.run_started_at", required=False),
                "finished_at": status_at if status in TERMINAL else None,
                "attempt": field(payload, "workflow_run.run_attempt", int, required=False),
            },
        )
    ]


def _event_time(payload: Mapping, path: str, status: str, *, required: bool = True) -> datetime | None:
    """When a job or step reached `status`: completed_at, started_at or created_at."""
    if status in TERMINAL:
        return timestamp(payload, f"{path}.completed_at", required)
    if status == "in_progress":
        return timestamp(payload, f"{path}.started_at", required)
    return timestamp(payload, f"{path}.created_at", required)


def _workflow_job(payload: Mapping, config: Any) -> list[Update]:
    repo, _, _ = _repository(payload, config)
    job = "workflow_job"
    run_key = f"github:{repo}:run:{field(payload, f'{job}.run_id', int)}"
    stage_key = f"{run_key}:job:{field(payload, f'{job}.id', int)}"
    name = field(payload, f"{job}.name")
    status = _status(payload, job)
    status_at = _event_time(payload, job, status)
    updates = [
        Update(
            "stage_runs",
            stage_key,
            {
                "pipeline_run_id": run_key,
                "name": name,
                "category": category_for(name),
                "status": status,
                "status_at": status_at,
                "queued_at": timestamp(payload, f"{job}.created_at", required=False),
                "started_at": None if status == "queued" else timestamp(payload, f"{job}.started_at", required=False),
                "finished_at": status_at if status in TERMINAL else None,
                "attempt": field(payload, f"{job}.run_attempt", int, required=False),
                "failed_once": status == "failed",
            },
        )
    ]
    for i in range(len(field(payload, f"{job}.steps", list, required=False) or [])):
        path = f"{job}.steps.{i}"
        step_name = field(payload, f"{path}.name")
        step_status = _status(payload, path)
        step_at = (
            _event_time(payload, path, step_status, required=False) if step_status != "queued" else None
        ) or status_at
        updates.append(
            Update(
                "action_runs",
                f"{stage_key}:step:{field(payload, f'{path}.number', int)}",
                {
                    "pipeline_run_id": run_key,
                    "stage_run_id": stage_key,
                    "name": step_name,
                    "category": category_for(step_name),
                    "provider": "github-actions",
                    "status": step_status,
                    "status_at": step_at,
                    "started_at": (
                        None if step_status == "queued" else timestamp(payload, f"{path}.started_at", required=False)
                    ),
                    "finished_at": step_at if step_status in TERMINAL else None,
                    "failed_once": step_status == "failed",
                },
            )
        )
    if isinstance(payload.get("deployment"), Mapping):
        updates.extend(_deployment(payload, config, run_key))
    return updates


def _release_facts(payload: Mapping, repo: str) -> tuple[str | None, bool, str | None]:
    """(version, hotfix, rollback_of) from the deployment's free-form payload (see module docstring)."""
    raw = payload["deployment"].get("payload")
    if isinstance(raw, str):
        try:
            raw = payload_text.loads(raw)  # a string of JSON, with the same nesting limit as a body
        except ValueError:
            return None, False, None  # free text is allowed by GitHub and carries no facts for us
    if not isinstance(raw, Mapping):
        return None, False, None
    holder = {"deployment": {"payload": raw}}
    version = field(holder, "deployment.payload.version", required=False)
    hotfix = bool(boolean(holder, "deployment.payload.hotfix"))
    rollback_of = field(holder, "deployment.payload.rollback_of", required=False)
    if rollback_of is not None and rollback_of.isdigit():
        rollback_of = f"github:{repo}:deployment:{rollback_of}"
    return version, hotfix, rollback_of


def _deployment_row(payload: Mapping, config: Any, run_key: str | None) -> tuple[str, dict, list[Update]]:
    """The descriptive columns of the deployment in `payload`, and its link to the deployed commit."""
    repo, service, team = _repository(payload, config)
    key = f"github:{repo}:deployment:{field(payload, 'deployment.id', int)}"
    environment = field(payload, "deployment.environment")
    sha = field(payload, "deployment.sha")
    flag = boolean(payload, "deployment.production_environment")
    version, hotfix, rollback_of = _release_facts(payload, repo)
    if run_key is None and isinstance(payload.get("workflow_run"), Mapping):
        run_key = f"github:{repo}:run:{field(payload, 'workflow_run.id', int)}"
    values = {
        "source": NAME,
        "service": service,
        "team": team,
        "environment": environment,
        # GitHub sends production_environment false for every environment a repository did not mark, so the
        # flag can only add: production = the flag or a configured name (as the GitLab adapter's tier).
        "production": bool(flag) or config.is_production_environment(environment),
        "started_at": timestamp(payload, "deployment.created_at"),
        "version": version,
        "revision": sha,
        "pipeline_run_id": run_key,
        "rollback_of": rollback_of,
        "is_rollback": rollback_of is not None,
        "hotfix": hotfix,
        "url": field(payload, "deployment.url", required=False),
    }
    link = Update("deployment_changes", f"{key}|{sha}", {"deployment_id": key, "change_id": sha})
    return key, values, [link]


def _deployment(payload: Mapping, config: Any, run_key: str | None = None) -> list[Update]:
    key, values, links = _deployment_row(payload, config, run_key)
    values.update(status="pending", status_at=values["started_at"], finished_at=None)
    return [Update("deployments", key, values), *links]


def _deployment_status(payload: Mapping, config: Any) -> list[Update]:
    key, values, links = _deployment_row(payload, config, None)
    status = choice(payload, "deployment_status.state", DEPLOYMENT_STATES)
    if status:  # "" is inactive: superseded later, which says nothing about how this one ended
        status_at = timestamp(payload, "deployment_status.created_at")
        values.update(
            status=status, status_at=status_at, finished_at=status_at if status in ("success", "failure") else None
        )
    return [Update("deployments", key, values), *links]


def _push(payload: Mapping, config: Any) -> list[Update]:
    commits = field(payload, "commits", list, required=False) or []
    if not commits:
        return []  # tag pushes and branch deletions
    repo, service, _ = _repository(payload, config)
    head = field(payload, "after", required=False)
    updates = []
    for i in range(len(commits)):
        path = f"commits.{i}"
        message = field(payload, f"{path}.message", required=False) or ""
        updates.append(
            Update(
                "changes",
                field(payload, f"{path}.id"),
                {
                    "service": service,
                    "repository": repo,
                    "committed_at": timestamp(payload, f"{path}.timestamp"),
                    "author": (
                        field(payload, f"{path}.author.username", required=False)
                        or field(payload, f"{path}.author.name", required=False)
                    ),
                    "title": message.strip().splitlines()[0] if message.strip() else None,
                    "pushed_head": head,
                },
            )
        )
    return updates


def _pull_request(payload: Mapping, config: Any) -> list[Update]:
    if payload.get("action") != "closed" or field(payload, "pull_request.merged", bool, False) is not True:
        return []
    repo, service, _ = _repository(payload, config)
    return [
        Update(
            "changes",
            field(payload, "pull_request.merge_commit_sha"),
            {
                "service": service,
                "repository": repo,
                "merged_at": timestamp(payload, "pull_request.merged_at"),
                "pr": field(payload, "pull_request.number", int),
                "title": field(payload, "pull_request.title", required=False),
                "author": field(payload, "pull_request.user.login", required=False),
            },
        )
    ]


def _labels(payload: Mapping) -> list[str]:
    labels = field(payload, "issue.labels", list, required=False) or []
    names = [label.get("name") if isinstance(label, Mapping) else label for label in labels]
    return [name for name in names if isinstance(name, str)]


def _severity(labels: list[str]) -> str | None:
    found = []
    for label in labels:
        match = _SEVERITY.match(label.strip())
        if match:
            value = match.group(1).lower()
            found.append(f"sev{value}" if value.isdigit() else value)
    return min(found) if found else None


def _issue(payload: Mapping, config: Any) -> list[Update]:
    labels = _labels(payload)
    if config.incident_label.lower() not in {label.lower() for label in labels}:
        return []
    repo, service, _ = _repository(payload, config)
    status = choice(payload, "issue.state", {"open": "triggered", "closed": "resolved"})
    closed = timestamp(payload, "issue.closed_at") if status == "resolved" else None
    opened = timestamp(payload, "issue.created_at")
    return [
        Update(
            "incidents",
            f"github:{repo}:issue:{field(payload, 'issue.number', int)}",
            {
                "source": NAME,
                "service": service,
                "title": field(payload, "issue.title", required=False),
                "severity": _severity(labels),
                "status": status,
                "status_at": timestamp(payload, "issue.updated_at", required=False) or closed or opened,
                "opened_at": opened,
                "resolved_at": closed,
                "url": field(payload, "issue.html_url", required=False),
            },
        )
    ]


HANDLERS: dict[str, Callable[[Mapping, Any], list[Update]]] = {
    "workflow_run": _workflow_run,
    "workflow_job": _workflow_job,
    "deployment": _deployment,
    "deployment_status": _deployment_status,
    "push": _push,
    "pull_request": _pull_request,
    "issues": _issue,
}


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """Turn one GitHub webhook payload into projection updates; other events give none."""
    return dispatch(HANDLERS, kind, payload, config)
