"""`gatewatch collect`: backfill history from outside systems' APIs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gatewatch import api

from .common import Progress, State, pass_state
from .store import print_summary

if TYPE_CHECKING:
    from gatewatch.api import IngestSummary

F = TypeVar("F", bound=Callable[..., Any])


def aws_options(what: str, service: str) -> Callable[[F], F]:
    """--since, --region, --endpoint-url and --json, as every AWS backfill takes them."""
    options = [
        click.option(
            "--since",
            default="30d",
            show_default=True,
            metavar="DURATION",
            help=f"How far back to read {what}, e.g. 30d or 12h (or an ISO 8601 time).",
        ),
        click.option("--region", help="AWS region (default: the AWS configuration's)."),
        click.option("--endpoint-url", metavar="URL", help=f"Another {service} endpoint (e.g. a local emulator)."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def backfill(what: str, since: str, as_json: bool, read: Callable[[datetime, Progress], IngestSummary]) -> None:
    """Read from --since with a live progress line of `what`, print the summary, exit with its status."""
    start = api.parse_time(since, "--since", api.utcnow())
    progress = Progress(what)
    try:
        summary = read(start, progress)
    finally:
        progress.finish()  # ends a live progress line before any error message
    print_summary(summary, as_json)
    raise SystemExit(summary.exit_code)


@click.group()
def collect() -> None:
    """Backfill history from a system's API into the store (through the normal ingest path)."""


@collect.command("codepipeline")
@click.option(
    "--pipeline",
    "pipelines",
    multiple=True,
    required=True,
    metavar="NAME",
    help="Pipeline to read (repeat for several).",
)
@aws_options("executions", "CodePipeline")
@pass_state
def codepipeline(
    state: State, pipelines: tuple[str, ...], since: str, region: str | None, endpoint_url: str | None, as_json: bool
) -> None:
    """Read CodePipeline executions (ListPipelineExecutions, ListActionExecutions, and GetPipelineExecution
    when a summary lacks the trigger or revisions) and archive each as one payload; they project into the
    same rows as EventBridge events. Running it again stores only what changed. Credentials come from the
    usual AWS chain (AWS_PROFILE, environment, role); they need codepipeline:ListPipelineExecutions,
    codepipeline:ListActionExecutions and codepipeline:GetPipelineExecution. Executions are
    stored in batches as they are read, so an interrupted run keeps what it read; when AWS throttles a
    long backfill, AWS_RETRY_MODE=adaptive slows it down.

    Exit status: 0 done, 1 something was quarantined, 2 usage or credentials, 5 AWS unreachable.
    """
    client = api.codepipeline_client(region, endpoint_url)
    backfill(
        "executions",
        since,
        as_json,
        lambda start, progress: api.backfill_codepipeline(
            state.engine, state.config, client, pipelines, start, progress, region
        ),
    )


@collect.command("codecommit")
@click.option("--repository", required=True, metavar="NAME", help="CodeCommit repository to read.")
@click.option("--branch", metavar="NAME", help="Branch to read (default: the repository's default branch).")
@aws_options("commits", "CodeCommit")
@pass_state
def codecommit(
    state: State,
    repository: str,
    since: str,
    branch: str | None,
    region: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """Read a branch's commits (GetBranch, then GetCommit back through parents to --since) and archive
    each as one payload; they become `changes` with their commit times, for lead time. Running it again
    stores only what is new. Credentials come from the usual AWS chain; they need
    codecommit:GetRepository, codecommit:GetBranch and codecommit:GetCommit.

    Exit status: 0 done, 1 something was quarantined, 2 usage or credentials, 5 AWS unreachable.
    """
    client = api.codecommit_client(region, endpoint_url)
    backfill(
        "commits",
        since,
        as_json,
        lambda start, progress: api.backfill_codecommit(
            state.engine, state.config, client, repository, start, branch, progress
        ),
    )


@collect.command("codedeploy")
@click.option("--application", required=True, metavar="NAME", help="CodeDeploy application to read.")
@click.option(
    "--deployment-group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Deployment group to read (repeat for several; default: all of the application's).",
)
@aws_options("deployments (by creation time)", "CodeDeploy")
@pass_state
def codedeploy(
    state: State,
    application: str,
    groups: tuple[str, ...],
    since: str,
    region: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """Read an application's deployments (ListDeploymentGroups, ListDeployments, BatchGetDeployments)
    and archive each as one payload; they project into the same rows as EventBridge events, plus
    rollbacks (an automatic rollback and the deployment it rolled back). Running it again stores only
    what changed. Credentials come from the usual AWS chain; they need codedeploy:ListDeploymentGroups,
    codedeploy:ListDeployments and codedeploy:BatchGetDeployments.

    Exit status: 0 done, 1 something was quarantined, 2 usage or credentials, 5 AWS unreachable.
    """
    client = api.codedeploy_client(region, endpoint_url)
    backfill(
        "deployments",
        since,
        as_json,
        lambda start, progress: api.backfill_codedeploy(
            state.engine, state.config, client, application, start, groups, progress
        ),
    )
