"""AWS CodeDeploy: EventBridge "CodeDeploy Deployment State-change Notification" and "CodeDeploy
Instance State-change Notification" events, as deployments `codedeploy:{deploymentId}`.

- The event carries the application, deployment group, deployment id, state and (instance events)
  the instance id, nothing more. The service is `services.codedeploy` of `application/group`, else of
  the application, else the application's name; the deployment is production (environment
  "production") when the group matches `production.deployment_group_pattern`, else its environment
  is the group's name.
- Deployment states: START and READY (blue/green: the replacement is ready for traffic) are
  in_progress, SUCCESS success, FAILURE failure, STOP canceled; a state's event time is its time.
- An instance event is only evidence that the deployment runs: it marks the deployment in_progress
  without a status time, so any deployment event outranks it whichever arrives first (an instance
  finishing late never reopens a finished deployment), and its time is a first-seen start.
- Rollbacks: who created a deployment (`creator` codeDeployRollback) and `rollbackInfo` come only from
  the GetDeployment API, not in these events, so no rollback is recorded from them: an automatic
  rollback is a new deployment of the same group, the original ends in FAILURE or STOP.
- A deployment that a CodePipeline action started is linked at read time (collector.loaders): the
  action's external execution id is the deployment id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Update, choice, dispatch, field, timestamp

NAME = "codedeploy"
PREFIX = "codedeploy:"
DETAIL_TYPES = {
    "CodeDeploy Deployment State-change Notification": "deployment",
    "CodeDeploy Instance State-change Notification": "instance",
}
OTHER = "other"  # e.g. CloudTrail API calls from aws.codedeploy: archived, nothing to project
DEPLOYMENT_STATES = {
    "START": "in_progress",
    "READY": "in_progress",
    "SUCCESS": "success",
    "FAILURE": "failure",
    "STOP": "canceled",
}
# as documented for instances: whichever, the deployment is running (see the module docstring)
INSTANCE_STATES = dict.fromkeys(("START", "READY", "SUCCESS", "FAILURE"), "in_progress")
FINISHED = frozenset({"success", "failure", "canceled"})


def detect(payload: Any, hint: str | None = None) -> str | None:
    """EventBridge events from aws.codedeploy."""
    if not isinstance(payload, Mapping) or payload.get("source") != "aws.codedeploy":
        return None
    return DETAIL_TYPES.get(str(payload.get("detail-type")), OTHER)


def event_id(kind: str, payload: Any) -> str | None:
    """EventBridge's event id (a redelivery repeats it)."""
    return str(payload["id"]) if kind in DETAIL_TYPES.values() and payload.get("id") else None


def _described(payload: Mapping, config: Any) -> dict[str, Any]:
    """The columns every event of a deployment gives alike: source, service, team, environment."""
    application = field(payload, "detail.application", str)
    group = field(payload, "detail.deploymentGroup", str)
    service = config.service_for_codedeploy(application, group)
    production = config.is_production_deployment_group(group)
    return {
        "source": NAME,
        "service": service,
        "team": config.team_for(service),
        "environment": "production" if production else group,
        "production": production,
    }


def _deployment(payload: Mapping, config: Any) -> list[Update]:
    at = timestamp(payload, "time")
    status = choice(payload, "detail.state", DEPLOYMENT_STATES)
    values = {
        **_described(payload, config),
        "status": status,
        "status_at": at,
        "finished_at": at if status in FINISHED else None,
    }
    if field(payload, "detail.state", str) == "START":
        values["started_at"] = at
    return [Update("deployments", PREFIX + field(payload, "detail.deploymentId", str), values)]


def _instance(payload: Mapping, config: Any) -> list[Update]:
    at = timestamp(payload, "time")
    status = choice(payload, "detail.state", INSTANCE_STATES)
    field(payload, "detail.instanceId", str)  # what makes it an instance event
    values = {**_described(payload, config), "status": status, "status_at": None, "started_at": at}
    return [Update("deployments", PREFIX + field(payload, "detail.deploymentId", str), values)]


HANDLERS = {"deployment": _deployment, "instance": _instance}


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """Projection updates for one CodeDeploy EventBridge event."""
    return dispatch(HANDLERS, kind, payload, config)
