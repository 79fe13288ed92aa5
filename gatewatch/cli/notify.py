"""`gatewatch notify`: send a test message to a channel, list what was notified, scan for what to notify."""

from __future__ import annotations

import click

from gatewatch import api
from gatewatch.errors import ConfigError

from .common import State, echo_json, pass_state

EXIT_OK, EXIT_FAILED = 0, 1


@click.group()
def notify() -> None:
    """Notifications to Slack, PagerDuty, SNS, webhooks and files (`notify:` in gatewatch.yaml)."""


@notify.command("test")
@click.argument("channel")
@click.option("--json", "as_json", is_flag=True, help="Print the stored outcome as JSON.")
@pass_state
def test(state: State, channel: str, as_json: bool) -> None:
    """Send a test message to CHANNEL (a name under notify.channels); it is recorded like any other.

    Exit status: 0 sent; 1 not sent (the reason on one line: an HTTP status, a connection error, an
    environment variable that is not set); 2 no such channel or a configuration error.
    """
    row = api.test_channel(state.engine, state.config, channel)
    if as_json:
        echo_json(row)
    elif row["status"] == "sent":
        click.echo(f"sent a test message to {channel} ({row['channel_type']}, {row['attempts']} attempt(s))")
    else:
        click.echo(f"error: test message to {channel} ({row['channel_type']}) failed: {row['error']}", err=True)
    raise SystemExit(EXIT_OK if row["status"] == "sent" else EXIT_FAILED)


@notify.command("list")
@click.option(
    "--status", type=click.Choice(["sent", "failed", "suppressed"]), help="Only notifications with this outcome."
)
@click.option("--since", metavar="TIME", help="Only since this time (ISO 8601, or a duration ago such as 24h).")
@click.option("--channel", help="Only this channel.")
@click.option("--service", help="Only this service.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON (with the bodies sent).")
@pass_state
def list_(
    state: State,
    status: str | None,
    since: str | None,
    channel: str | None,
    service: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List stored notifications, newest first: when, outcome, channel, event, service and summary
    (and the error of a failed one). Exit status: 0; 2 a bad option."""
    rows = api.list_notifications(
        state.engine,
        status=status,
        since=api.parse_time(since, "--since") if since else None,
        channel=channel,
        service=service,
        limit=limit,
    )
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no notifications")
    for row in rows:
        click.echo(
            f"{row['created_at']:%Y-%m-%d %H:%M:%S}  {row['status']:<10} {row['channel']:<16} "
            f"{row['event']}{' (resolve)' if row['action'] == 'resolve' else ''}  {row['service'] or '-'}  "
            f"{row['summary']}"
        )
        if row["error"]:
            click.echo(f"    error: {row['error']}")


@notify.command("scan")
@click.option("--json", "as_json", is_flag=True, help="Print what was notified as JSON.")
@pass_state
def scan(state: State, as_json: bool) -> None:
    """Notify what is wrong now: every SLO's burn-rate alerts (trigger when a page or ticket alert
    fires, resolve when it stops; stale or unreadable SLI data: a data_stale notification) and the
    production deployments that failed within the dedupe window. Run it from cron (or set
    notify.scan_interval for `gatewatch serve`): what was sent within the dedupe window is not sent again.

    Exit status: 0 nothing failed to send; 1 a notification failed (recorded; see `notify list
    --status failed`); 2 configuration error (no channels).
    """
    if not state.config.notify.channels:
        raise ConfigError("no notification channels configured: add notify.channels to gatewatch.yaml")
    found = api.scan_notifications(state.engine, state.config)
    if as_json:
        echo_json(found.to_dict())
    else:
        click.echo(
            f"scanned {found.slos} SLO(s) and {found.failed_deployments} failed production deployment(s): "
            f"{found.count('sent')} sent, {found.count('failed')} failed, {found.count('suppressed')} suppressed"
        )
        for row in found.notifications:
            if row["status"] != "suppressed":
                click.echo(f"  {row['status']:<7} {row['channel']:<16} {row['event']}  {row['summary']}")
    for error in found.errors:
        click.echo(f"note: {error}", err=True)
    raise SystemExit(EXIT_FAILED if found.count("failed") else EXIT_OK)
