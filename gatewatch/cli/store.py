"""`gatewatch db`, `ingest`, `replay` and `quarantine`: the store and the one ingest path."""

from __future__ import annotations

import click

from gatewatch import api

from .common import Progress, State, echo_json, pass_state


@click.group()
def db() -> None:
    """Manage the store's schema (migrations are also applied on first use)."""


@db.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def db_upgrade(state: State, as_json: bool) -> None:
    """Apply pending migrations to the store."""
    before, after, where = api.upgrade_store(state.url)
    if as_json:
        echo_json({"database": where, "from": before, "to": after})
    elif before == after:
        click.echo(f"{where} is up to date (revision {after}).")
    else:
        click.echo(f"{where}: migrated from {before or 'empty'} to {after}.")


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the schema revision of the store and the newest one this version ships."""
    current, head, where = api.store_revision(state.url)
    click.echo(f"{where}: at {current or 'empty'}, head {head}")


def print_summary(summary: api.IngestSummary, as_json: bool) -> None:
    """The ingest summary, for people or (--json) machines."""
    if as_json:
        echo_json(summary.to_dict())
        return
    sources = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_source.items())) or "none"
    click.echo(
        f"stored {summary.stored} ({sources}), duplicates {summary.duplicates}, "
        f"quarantined {len(summary.quarantined)}"
        + (f", {summary.ignored} with nothing to project" if summary.ignored else "")
    )
    for q in summary.quarantined:
        click.echo(f"  quarantined {q.origin} [{q.source}/{q.kind}]: {q.error}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option(
    "--source",
    type=click.Choice(api.SOURCE_CHOICES),
    default="auto",
    show_default=True,
    help="Which system the payloads come from; auto detects each payload.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def ingest(state: State, files: tuple[str, ...], source: str, as_json: bool) -> None:
    """Ingest payload FILES (JSON object, JSON list, NDJSON or CSV; - reads stdin).

    Every payload is archived raw; one that cannot be parsed is quarantined with its reason.
    Exit status: 0 all stored, 1 something was quarantined (still archived), 2 usage error.
    """
    progress = Progress("ingested")
    summary = api.ingest_files(state.engine, state.config, files, None if source == "auto" else source, progress)
    progress.finish()
    print_summary(summary, as_json)
    raise SystemExit(summary.exit_code)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def replay(state: State, as_json: bool) -> None:
    """Rebuild every normalised table from the raw archive, retrying quarantined payloads.

    Run it after upgrading Gatewatch (a parser fix) or changing gatewatch.yaml. It runs in one
    transaction: readers see the old tables until it commits.
    """
    progress = Progress("replayed", api.count_raw_events(state.engine))
    summary = api.replay(state.engine, state.config, progress)
    progress.finish()
    if as_json:
        echo_json(summary.to_dict())
        return
    click.echo(
        f"replayed {summary.events} events: {summary.recovered} recovered from quarantine, "
        f"{summary.newly_quarantined} newly quarantined, {summary.still_quarantined} still quarantined"
    )
    click.echo("rows: " + ", ".join(f"{k} {v}" for k, v in summary.rows.items()))


@click.command()
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="Show at most this many reasons, newest first.",
)
@click.option(
    "--examples",
    default=3,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Payloads shown per reason (their first bytes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def quarantine(state: State, limit: int, examples: int, as_json: bool) -> None:
    """List quarantined payloads grouped by reason, with a count and the first bytes of the newest
    payloads of each (fix the parser or config, then `replay`)."""
    groups = api.quarantine_groups(state.engine, limit, examples)
    if as_json:
        echo_json(groups)
        return
    if not groups:
        click.echo("nothing is quarantined")
    for g in groups:
        times = f"{g['first_received_at']:%Y-%m-%d %H:%M:%S}"
        if g["count"] > 1:
            times += f" .. {g['last_received_at']:%Y-%m-%d %H:%M:%S}"
        click.echo(f"{g['count']:>5} x [{g['source']}/{g['kind']}] {g['error']}  ({times})")
        for example in g["examples"]:
            head = " ".join(example["head"].split())
            click.echo(f"        #{example['id']} {head[:100]}{'...' if len(head) > 100 else ''}")
        if g["count"] > len(g["examples"]):
            click.echo(f"        ... and {g['count'] - len(g['examples'])} more")
