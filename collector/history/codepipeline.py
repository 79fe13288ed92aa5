"""CodePipeline history through boto3: ListPipelineExecutions and ListActionExecutions, paginated,
archived as one payload per execution (kind `execution-history`) and projected like EventBridge
events of the same execution."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Engine

from ..config import Config
from ..errors import ConfigError, SourceUnavailable
from ..ingest import IngestSummary, ingest_payloads
from ..timeutil import as_utc


def make_client(region: str | None = None, endpoint_url: str | None = None):
    """A boto3 CodePipeline client (credentials from the usual AWS chain)."""
    import boto3

    return boto3.client("codepipeline", region_name=region, endpoint_url=endpoint_url)


def jsonable(value: Any) -> Any:
    """API responses with datetimes as ISO 8601 strings, ready to archive as JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def execution_histories(client, pipeline: str, since: datetime,
                        progress: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Each execution of `pipeline` started at or after `since` (newest first), with its actions."""
    executions = client.get_paginator("list_pipeline_executions")
    actions = client.get_paginator("list_action_executions")
    for page in executions.paginate(pipelineName=pipeline, PaginationConfig={"PageSize": 100}):
        for summary in page.get("pipelineExecutionSummaries", []):
            started = summary.get("startTime")
            if started is not None and as_utc(started) < since:
                return  # the API lists newest first: everything after this is older
            details: list[dict] = []
            for action_page in actions.paginate(pipelineName=pipeline,
                                                filter={"pipelineExecutionId": summary["pipelineExecutionId"]},
                                                PaginationConfig={"PageSize": 100}):
                details.extend(action_page.get("actionExecutionDetails", []))
            yield jsonable({"pipelineName": pipeline, "pipelineExecutionSummary": summary,
                            "actionExecutionDetails": details})
            if progress:
                progress(1)


def _explain(exc: Exception, pipeline: str, region: str | None) -> Exception:
    from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                     NoRegionError)

    if isinstance(exc, NoCredentialsError):
        return ConfigError("no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY (or run where an IAM role provides them)")
    if isinstance(exc, NoRegionError):
        return ConfigError("no AWS region: pass --region or set AWS_REGION")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "PipelineNotFoundException":
            return ConfigError(f"pipeline {pipeline!r} not found in region {region or 'default'}; check --pipeline "
                               "and --region")
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            return ConfigError(f"AWS refused the request ({code}): the credentials need "
                               "codepipeline:ListPipelineExecutions and codepipeline:ListActionExecutions")
        return SourceUnavailable(f"CodePipeline answered {code or 'an error'} for {pipeline!r}: "
                                 f"{exc.response.get('Error', {}).get('Message', '')}")
    if isinstance(exc, (EndpointConnectionError, BotoCoreError)):
        return SourceUnavailable(f"CodePipeline could not be reached: {exc}")
    return exc


def backfill(engine: Engine, config: Config, client, pipelines: Iterable[str], since: datetime,
             progress: Callable[[int], None] | None = None, region: str | None = None) -> IngestSummary:
    """Archive and project the history of each pipeline since `since`."""
    from botocore.exceptions import BotoCoreError, ClientError

    summary = IngestSummary()
    for pipeline in pipelines:
        try:
            summary.add(ingest_payloads(engine, execution_histories(client, pipeline, since, progress), config,
                                        source="codepipeline", origin=f"codepipeline:{pipeline}"))
        except (BotoCoreError, ClientError) as exc:
            raise _explain(exc, pipeline, region) from None
    return summary
