"""AWS CodePipeline: EventBridge execution state changes (pipeline, stage, action) and the API's
execution history (one archived payload per execution: ListPipelineExecutions' summary with that
execution's ListActionExecutions details and, when the summary lacks the trigger or source revisions,
GetPipelineExecution's `pipelineExecution`), as the same projection rows.

- A stage that `config.is_production_stage(pipeline, stage)` names is a production deployment
  `codepipeline:{pipeline}:{execution}` (environment "production") whose status follows the stage.
- The source action's external execution id is the commit SHA (CodeCommit, CodeStar connections,
  GitHub): it becomes the run's revision and the deployment's commit. In the API history the summary's
  source revisions come first, then the succeeded source actions' ids, then GetPipelineExecution's
  artifact revisions (whose provider is that of the action that output the artifact). The link is
  written even for an execution that never reaches production: harmless, analysis joins links on
  stored deployments.
  S3 and ECR sources give an object version or image digest, not a commit: no revision.
- `pipeline-execution-attempt` counts retries of the execution; a stage records the attempt in which
  it reached its status (the API history does not say, so its stages and runs have none).
- Executions triggered by AutomatedRollback/ManualRollback (or of executionType ROLLBACK) are
  rollbacks; what they roll back is resolved by analysis (the service's previous deployment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gatewatch.errors import PayloadError

from .base import TERMINAL, Update, category_for, choice, field, timestamp

NAME = "codepipeline"
DETAIL_TYPES = {
    "CodePipeline Pipeline Execution State Change": "pipeline",
    "CodePipeline Stage Execution State Change": "stage",
    "CodePipeline Action Execution State Change": "action",
}
HISTORY = "execution-history"
EVENT_STATES = {
    "STARTED": "in_progress",
    "RESUMED": "in_progress",
    "STOPPING": "in_progress",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "canceled",
    "STOPPED": "canceled",
    "SUPERSEDED": "superseded",
    "ABANDONED": "canceled",
}
LEVEL_STATES = {
    level: {state: EVENT_STATES[state] for state in states}
    for level, states in (  # as documented
        ("pipeline", ("STARTED", "SUCCEEDED", "RESUMED", "FAILED", "CANCELED", "SUPERSEDED", "STOPPING", "STOPPED")),
        ("stage", ("STARTED", "SUCCEEDED", "RESUMED", "FAILED", "CANCELED", "STOPPING", "STOPPED")),
        ("action", ("STARTED", "SUCCEEDED", "FAILED", "CANCELED", "ABANDONED")),
    )
}
API_STATES = {
    "InProgress": "in_progress",
    "Stopping": "in_progress",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Cancelled": "canceled",
    "Stopped": "canceled",
    "Superseded": "superseded",
    "Abandoned": "canceled",
}
DEPLOYMENT_STATUS = {
    "queued": "pending",
    "in_progress": "in_progress",
    "succeeded": "success",
    "failed": "failure",
    "canceled": "canceled",
    "superseded": "canceled",
}
ROLLBACK_TRIGGERS = {"AutomatedRollback", "ManualRollback"}
GIT_PROVIDERS = frozenset({"CodeCommit", "CodeStarSourceConnection", "GitHub"})
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
CATEGORIES = {
    "source": "source",
    "build": "build",
    "test": "test",
    "deploy": "deploy",
    "approval": "approval",
    "invoke": "invoke",
    "compute": "build",
}


def detect(payload: Any, hint: str | None = None) -> str | None:
    """EventBridge events from aws.codepipeline, or an archived API execution history."""
    if type(payload) is not dict and not isinstance(payload, Mapping):
        return None
    if payload.get("source") == "aws.codepipeline" and "detail-type" in payload:
        return DETAIL_TYPES.get(str(payload["detail-type"]), "unknown")
    if "pipelineExecutionSummary" in payload and "pipelineName" in payload:
        return HISTORY
    return None


def event_id(kind: str, payload: Any) -> str | None:
    """EventBridge's event id (a redelivery repeats it); API history dedupes on content."""
    return str(payload["id"]) if kind in DETAIL_TYPES.values() and payload.get("id") else None


def _category(raw: str | None, name: str) -> str:
    return CATEGORIES.get((raw or "").lower()) or category_for(name)


def _commit(provider: str | None, revision: str | None) -> str | None:
    """The revision when it is a Git commit: a Git provider's, or a bare SHA when the provider is unknown."""
    if revision and (provider in GIT_PROVIDERS or (provider is None and _SHA.fullmatch(revision))):
        return revision
    return None


def _deployment(
    config: Any, pipeline: str, execution: str, stage: str, status: str, at, started, finished, rollback: bool
) -> Update:
    service = config.service_for_pipeline(pipeline)
    values = {
        "source": NAME,
        "service": service,
        "team": config.team_for(service),
        "environment": "production",
        "production": True,
        "status": DEPLOYMENT_STATUS[status],
        "status_at": at,
        "finished_at": finished if status in TERMINAL else None,
        "pipeline_run_id": f"codepipeline:{pipeline}:{execution}",
        "is_rollback": rollback,
    }
    if started is not None:
        values["started_at"] = started
    return Update("deployments", f"codepipeline:{pipeline}:{execution}", values)


def _revision_updates(config: Any, pipeline: str, execution: str, sha: str) -> list[Update]:
    run = f"codepipeline:{pipeline}:{execution}"
    return [
        Update(
            "pipeline_runs",
            run,
            {"source": NAME, "pipeline": pipeline, "service": config.service_for_pipeline(pipeline), "revision": sha},
        ),
        Update("deployment_changes", f"{run}|{sha}", {"deployment_id": run, "change_id": sha}),
    ]


def _event(kind: str, payload: Mapping, config: Any) -> list[Update]:
    if kind == "unknown":
        raise PayloadError("detail-type", "one of " + ", ".join(DETAIL_TYPES), payload.get("detail-type"))
    at = timestamp(payload, "time")
    pipeline = field(payload, "detail.pipeline", str)
    execution = field(payload, "detail.execution-id", str)
    status = choice(payload, "detail.state", LEVEL_STATES[kind])
    started = timestamp(payload, "detail.start-time", required=False)
    state = field(payload, "detail.state", str)
    trigger = field(payload, "detail.execution-trigger.trigger-type", str, required=False)
    attempt = field(payload, "detail.pipeline-execution-attempt", int, required=False)
    rollback = trigger in ROLLBACK_TRIGGERS
    run = f"codepipeline:{pipeline}:{execution}"
    finished = at if status in TERMINAL else None
    first_seen = at if state == "STARTED" else None
    service = config.service_for_pipeline(pipeline)
    if kind == "pipeline":
        values = {
            "source": NAME,
            "pipeline": pipeline,
            "service": service,
            "status": status,
            "status_at": at,
            "finished_at": finished,
            "started_at": started or first_seen,
            "trigger": trigger,
            "attempt": attempt,
            "is_rollback": rollback,
        }
        return [Update("pipeline_runs", run, values)]
    stage = field(payload, "detail.stage", str)
    stage_id = f"{run}:stage:{stage}"
    base_run = Update(
        "pipeline_runs",
        run,
        {
            "source": NAME,
            "pipeline": pipeline,
            "service": service,
            "started_at": started,
            "trigger": trigger,
            "is_rollback": rollback,
        },
    )
    if kind == "stage":
        updates = [
            base_run,
            Update(
                "stage_runs",
                stage_id,
                {
                    "pipeline_run_id": run,
                    "name": stage,
                    "category": category_for(stage),
                    "status": status,
                    "status_at": at,
                    "started_at": first_seen,
                    "finished_at": finished,
                    "attempt": attempt,
                    "failed_once": status == "failed",
                },
            ),
        ]
        if config.is_production_stage(pipeline, stage):
            updates.append(_deployment(config, pipeline, execution, stage, status, at, first_seen, finished, rollback))
        return updates
    action = field(payload, "detail.action", str)
    category = _category(field(payload, "detail.type.category", str, required=False), action)
    provider = field(payload, "detail.type.provider", str, required=False)
    external = field(payload, "detail.execution-result.external-execution-id", str, required=False)
    updates = [
        base_run,
        Update("stage_runs", stage_id, {"pipeline_run_id": run, "name": stage, "category": category_for(stage)}),
        Update(
            "action_runs",
            f"{stage_id}:action:{action}",
            {
                "pipeline_run_id": run,
                "stage_run_id": stage_id,
                "name": action,
                "category": category,
                "provider": provider,
                "external_id": external,
                "url": field(payload, "detail.execution-result.external-execution-url", str, required=False),
                "status": status,
                "status_at": at,
                "started_at": first_seen,
                "finished_at": finished,
                "failed_once": status == "failed",
            },
        ),
    ]
    sha = _commit(provider, external) if category == "source" and status == "succeeded" else None
    if sha:
        updates += _revision_updates(config, pipeline, execution, sha)
    return updates


def _history(payload: Mapping, config: Any) -> list[Update]:
    pipeline = field(payload, "pipelineName", str)
    field(payload, "pipelineExecutionSummary", dict)  # an object, or the payload is refused here
    execution = field(payload, "pipelineExecutionSummary.pipelineExecutionId", str)
    status = choice(payload, "pipelineExecutionSummary.status", API_STATES)
    updated = timestamp(payload, "pipelineExecutionSummary.lastUpdateTime")
    started = timestamp(payload, "pipelineExecutionSummary.startTime", required=False)
    trigger = field(payload, "pipelineExecutionSummary.trigger.triggerType", str, required=False) or field(
        payload, "pipelineExecution.trigger.triggerType", str, required=False
    )
    execution_type = field(payload, "pipelineExecutionSummary.executionType", str, required=False) or field(
        payload, "pipelineExecution.executionType", str, required=False
    )
    rollback = trigger in ROLLBACK_TRIGGERS or execution_type == "ROLLBACK"
    run = f"codepipeline:{pipeline}:{execution}"
    service = config.service_for_pipeline(pipeline)
    updates = [
        Update(
            "pipeline_runs",
            run,
            {
                "source": NAME,
                "pipeline": pipeline,
                "service": service,
                "status": status,
                "status_at": updated,
                "finished_at": updated if status in TERMINAL else None,
                "started_at": started,
                "trigger": trigger,
                "is_rollback": rollback,
            },
        )
    ]
    details = payload.get("actionExecutionDetails") or []
    if not isinstance(details, list):
        raise PayloadError("actionExecutionDetails", "a list of action executions", details)
    stages: dict[str, list[dict]] = {}
    source_providers: dict[str, str | None] = {}
    source_ids: list[tuple[str | None, str | None]] = []  # (provider, external id) of succeeded source actions
    artifact_providers: dict[str, str | None] = {}
    for i, _detail in enumerate(details):
        where = f"actionExecutionDetails.{i}"
        stage = field(payload, f"{where}.stageName", str)
        action = field(payload, f"{where}.actionName", str)
        a_status = choice(payload, f"{where}.status", API_STATES)
        a_started = timestamp(payload, f"{where}.startTime", required=False)
        a_updated = timestamp(payload, f"{where}.lastUpdateTime", required=False) or a_started or updated
        category = _category(field(payload, f"{where}.input.actionTypeId.category", str, required=False), action)
        provider = field(payload, f"{where}.input.actionTypeId.provider", str, required=False)
        external = field(payload, f"{where}.output.executionResult.externalExecutionId", str, required=False)
        if category == "source":
            source_providers[action] = provider
            if a_status == "succeeded":
                source_ids.append((provider, external))
            artifacts = field(payload, f"{where}.output.outputArtifacts", list, required=False) or []
            for j in range(len(artifacts)):
                artifact_providers[field(payload, f"{where}.output.outputArtifacts.{j}.name", str)] = provider
        stage_id = f"{run}:stage:{stage}"
        updates.append(
            Update(
                "action_runs",
                f"{stage_id}:action:{action}",
                {
                    "pipeline_run_id": run,
                    "stage_run_id": stage_id,
                    "name": action,
                    "category": category,
                    "provider": provider,
                    "external_id": external,
                    "url": field(payload, f"{where}.output.executionResult.externalExecutionUrl", str, required=False),
                    "status": a_status,
                    "status_at": a_updated,
                    "started_at": a_started,
                    "finished_at": a_updated if a_status in TERMINAL else None,
                    "failed_once": a_status == "failed",
                },
            )
        )
        stages.setdefault(stage, []).append(
            {"action": action, "status": a_status, "started": a_started, "updated": a_updated}
        )
    for stage, actions in stages.items():
        latest: dict[str, dict] = {}
        for item in sorted(actions, key=lambda a: (a["started"] or a["updated"], a["updated"])):
            latest[item["action"]] = item
        states = {a["status"] for a in latest.values()}
        s_status = (
            "in_progress"
            if "in_progress" in states
            else "failed"
            if "failed" in states
            else "canceled"
            if "canceled" in states
            else "succeeded"
        )
        s_updated = max(a["updated"] for a in actions)
        s_started = min((a["started"] for a in actions if a["started"]), default=None)
        finished = s_updated if s_status in TERMINAL else None
        updates.append(
            Update(
                "stage_runs",
                f"{run}:stage:{stage}",
                {
                    "pipeline_run_id": run,
                    "name": stage,
                    "category": category_for(stage),
                    "status": s_status,
                    "status_at": s_updated,
                    "started_at": s_started,
                    "finished_at": finished,
                    "failed_once": any(a["status"] == "failed" for a in actions),
                },
            )
        )
        if config.is_production_stage(pipeline, stage):
            updates.append(
                _deployment(config, pipeline, execution, stage, s_status, s_updated, s_started, finished, rollback)
            )
    candidates = [
        *_revisions(payload, "pipelineExecutionSummary.sourceRevisions", "actionName", source_providers),
        *source_ids,
        *_revisions(payload, "pipelineExecution.artifactRevisions", "name", artifact_providers),
    ]
    sha = next((sha for sha in (_commit(*c) for c in candidates) if sha), None)
    if sha:
        updates += _revision_updates(config, pipeline, execution, sha)
    return updates


def _revisions(
    payload: Mapping, path: str, key: str, providers: Mapping[str, str | None]
) -> list[tuple[str | None, str | None]]:
    """(provider, revision id) of each revision listed at `path`, the provider found by its `key`."""
    revisions = field(payload, path, list, required=False) or []
    return [
        (
            providers.get(field(payload, f"{path}.{i}.{key}", str, required=False) or ""),
            field(payload, f"{path}.{i}.revisionId", str, required=False),
        )
        for i in range(len(revisions))
    ]


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """Projection updates for one EventBridge event or one execution's API history."""
    if kind == HISTORY:
        return _history(payload, config)
    return _event(kind, payload, config)
