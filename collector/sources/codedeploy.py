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
  the API, not in these events, so no rollback is recorded from them: an automatic rollback is a new
  deployment of the same group, the original ends in FAILURE or STOP.
- A deployment read from the API (`collect codedeploy`: BatchGetDeployments' DeploymentInfo, archived
  as `{"deploymentInfo": {...}}`, kind `deployment-info`) gives the same row: Created/Queued pending,
  InProgress/Baking/Ready in_progress, Succeeded success, Failed failure, Stopped canceled, at
  `completeTime` once finished (else `startTime`, else `createTime`); `startTime` is `started_at`.
  A Failed or Stopped deployment whose `rollbackInfo.rollbackDeploymentId` names its rollback is
  rolled_back (final for a deployment: a FAILURE event loses to it whatever its time, in either
  order). A deployment created by a rollback (`creator`
  codeDeployRollback or CloudFormationRollback, or with `rollbackInfo.rollbackTriggeringDeploymentId`)
  is a rollback (`is_rollback`), of `codedeploy:{rollbackTriggeringDeploymentId}` when given.
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
DEPLOYMENT_INFO = "deployment-info"
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
API_STATUSES = {
    "Created": "pending",
    "Queued": "pending",
    "InProgress": "in_progress",
    "Baking": "in_progress",
    "Ready": "in_progress",
    "Succeeded": "success",
    "Failed": "failure",
    "Stopped": "canceled",
}
ROLLBACK_CREATORS = frozenset({"codeDeployRollback", "CloudFormationRollback"})


def detect(payload: Any, hint: str | None = None) -> str | None:
    """EventBridge events from aws.codedeploy, or a deployment archived by `collect codedeploy`."""
    if not isinstance(payload, Mapping):
        return None
    if isinstance(payload.get("deploymentInfo"), Mapping) and "deploymentId" in payload["deploymentInfo"]:
        return DEPLOYMENT_INFO
    if payload.get("source") != "aws.codedeploy":
        return None
    return DETAIL_TYPES.get(str(payload.get("detail-type")), OTHER)


def event_id(kind: str, payload: Any) -> str | None:
    """EventBridge's event id (a redelivery repeats it); an API deployment dedupes on content."""
    return str(payload["id"]) if kind in DETAIL_TYPES.values() and payload.get("id") else None


def _described(application: str, group: str, config: Any) -> dict[str, Any]:
    """The columns every record of a deployment gives alike: source, service, team, environment."""
    service = config.service_for_codedeploy(application, group)
    production = config.is_production_deployment_group(group)
    return {
        "source": NAME,
        "service": service,
        "team": config.team_for(service),
        "environment": "production" if production else group,
        "production": production,
    }


def _event_described(payload: Mapping, config: Any) -> dict[str, Any]:
    return _described(field(payload, "detail.application"), field(payload, "detail.deploymentGroup"), config)


def _deployment(payload: Mapping, config: Any) -> list[Update]:
    at = timestamp(payload, "time")
    status = choice(payload, "detail.state", DEPLOYMENT_STATES)
    values = {
        **_event_described(payload, config),
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
    values = {
        **_event_described(payload, config),
        "status": status,
        "status_at": None,
        "started_at": at,
    }
    return [Update("deployments", PREFIX + field(payload, "detail.deploymentId", str), values)]


def _deployment_info(payload: Mapping, config: Any) -> list[Update]:
    info = "deploymentInfo."
    status = choice(payload, info + "status", API_STATUSES)
    finished = status in FINISHED
    started = timestamp(payload, info + "startTime", required=False)
    at = (
        timestamp(payload, info + "completeTime")
        if finished
        else started or timestamp(payload, info + "createTime", required=False)
    )
    rolled_back_by = field(payload, info + "rollbackInfo.rollbackDeploymentId", required=False)
    if rolled_back_by and status in ("failure", "canceled"):
        status = "rolled_back"
    rollback_of = field(payload, info + "rollbackInfo.rollbackTriggeringDeploymentId", required=False)
    creator = field(payload, info + "creator", required=False)
    group = field(payload, info + "deploymentGroupName")
    values = {
        **_described(field(payload, info + "applicationName"), group, config),
        "status": status,
        "status_at": at,
        "started_at": started,
        "finished_at": at if finished else None,
        "is_rollback": creator in ROLLBACK_CREATORS or rollback_of is not None,
        "rollback_of": PREFIX + rollback_of if rollback_of else None,
    }
    return [Update("deployments", PREFIX + field(payload, info + "deploymentId"), values)]


HANDLERS = {"deployment": _deployment, "instance": _instance, DEPLOYMENT_INFO: _deployment_info}


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """Projection updates for one CodeDeploy EventBridge event or API deployment."""
    return dispatch(HANDLERS, kind, payload, config)
