"""CodeDeploy history through boto3: an application's deployments created since a time (ListDeploymentGroups
when no group is given, ListDeployments paginated, BatchGetDeployments 25 ids at a time), archived as one
payload per deployment (kind `deployment-info` of the codedeploy source) and projected into the rows its
EventBridge events give, plus what only the API knows: rollbacks (`creator`, `rollbackInfo`).

Deployments are stored in batches as they are read; running it again stores only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from sqlalchemy import Engine

from gatewatch.errors import ConfigError, SourceUnavailable

from ..config import Config
from ..ingest import Envelope, IngestSummary, ingest
from .codepipeline import BATCH, batches, jsonable, make_client, message, setup_error, with_progress

__all__ = ["backfill", "deployment_infos", "make_codedeploy_client"]

BATCH_GET = 25  # BatchGetDeployments' limit
NOT_FOUND = frozenset(
    {
        "ApplicationDoesNotExistException",
        "DeploymentGroupDoesNotExistException",
        "InvalidApplicationNameException",
        "InvalidDeploymentGroupNameException",
    }
)
REFUSED = frozenset(
    {"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"}
)


def make_codedeploy_client(region: str | None = None, endpoint_url: str | None = None):
    """A boto3 CodeDeploy client from the usual AWS credential chain; setup mistakes as ConfigError."""
    return make_client(region, endpoint_url, service="codedeploy")


def deployment_groups(client, application: str) -> list[str]:
    """Every deployment group of `application` (ListDeployments needs one with an application)."""
    pages = client.get_paginator("list_deployment_groups").paginate(applicationName=application)
    return [group for page in pages for group in page.get("deploymentGroups", [])]


def deployment_ids(client, application: str, groups: Iterable[str], since: datetime) -> Iterator[str]:
    """The ids of the deployments of each group created at or after `since`."""
    paginator = client.get_paginator("list_deployments")
    for group in groups:
        for page in paginator.paginate(
            applicationName=application, deploymentGroupName=group, createTimeRange={"start": since}
        ):
            yield from page.get("deployments", [])


def deployment_infos(
    client,
    application: str,
    groups: Iterable[str] | None,
    since: datetime,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict]:
    """Each deployment of the groups (default: all of the application's) created since `since`, as
    `{"deploymentInfo": ...}` with ISO 8601 times, ready to archive."""
    groups = list(groups or ()) or deployment_groups(client, application)
    ids = list(deployment_ids(client, application, groups, since))
    for start in range(0, len(ids), BATCH_GET):
        for info in client.batch_get_deployments(deploymentIds=ids[start : start + BATCH_GET]).get(
            "deploymentsInfo", []
        ):
            yield jsonable({"deploymentInfo": info})
            if progress:
                progress(1)


def _explain(exc: Exception, application: str) -> Exception:
    from botocore.exceptions import ClientError, ParamValidationError

    setup = setup_error(exc)
    if setup is not None:
        return setup
    if isinstance(exc, ParamValidationError):
        return ConfigError(f"application {application!r} or a deployment group is not a valid name: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in NOT_FOUND:
            return ConfigError(f"{message(exc)}: check --application, --deployment-group and --region")
        if code in REFUSED:
            return ConfigError(
                f"AWS refused the request ({code}): check the credentials (AWS_PROFILE); they need "
                "codedeploy:ListDeploymentGroups, codedeploy:ListDeployments and codedeploy:BatchGetDeployments"
            )
        return SourceUnavailable(f"CodeDeploy answered {code or 'an error'} for {application!r}: {message(exc)}")
    return SourceUnavailable(f"CodeDeploy could not be reached: {exc}")


def _envelopes(payloads: list[dict]) -> Iterator[Envelope]:
    for payload in payloads:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        yield Envelope(text, payload, "codedeploy", None, f"codedeploy:{payload['deploymentInfo']['deploymentId']}")


def backfill(
    engine: Engine,
    config: Config,
    client,
    application: str,
    since: datetime,
    groups: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH,
) -> IngestSummary:
    """Archive and project the application's deployments (of `groups`, default all) created since `since`."""
    from botocore.exceptions import BotoCoreError, ClientError

    summary = IngestSummary()
    try:
        for batch in batches(deployment_infos(client, application, groups, since, progress), batch_size):
            summary.add(ingest(engine, _envelopes(batch), config, batch_size=batch_size))
    except (BotoCoreError, ClientError) as exc:
        raise with_progress(_explain(exc, application), summary.stored, "deployment(s)") from None
    return summary
