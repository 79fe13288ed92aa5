"""`gatewatch db`, `ingest`, `replay` and `quarantine`: the store and the one ingest path."""
from __future__ import annotations

import click
from sqlalchemy import func, select

from collector import ingest as ingest_mod
from collector.db import current_revision, describe_url, head_revision, upgrade
from collector.models import raw_events

from .common import Progress, State, echo_json, pass_state


@click.group()
def db() -> None:
    """Manage the store's schema (migrations are also applied on first use)."""


@db.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def db_upgrade(state: State, as_json: bool) -> None:
    """Apply pending migrations to the store."""
    from collector.db import create_store_engine

    engine = create_store_engine(state.db)
    before, after = upgrade(engine)
    if as_json:
        echo_json({"database": describe_url(state.url), "from": before, "to": after})
    elif before == after:
        click.echo(f"{describe_url(state.url)} is up to date (revision {after}).")
    else:
        click.echo(f"{describe_url(state.url)}: migrated from {before or 'empty'} to {after}.")


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the schema revision of the store and the newest one this version ships."""
    from collector.db import create_store_engine

    click.echo(f"{describe_url(state.url)}: at {current_revision(create_store_engine(state.db)) or 'empty'}, "
               f"head {head_revision()}")


def print_summary(summary: ingest_mod.IngestSummary, as_json: bool) -> None:
    """The ingest summary, for people or (--json) machines."""
    if as_json:
        echo_json(summary.to_dict())
        return
    sources = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_source.items())) or "none"
    click.echo(f"stored {summary.stored} ({sources}), duplicates {summary.duplicates}, "
               f"quarantined {len(summary.quarantined)}"
               + (f", {summary.ignored} with nothing to project" if summary.ignored else ""))
    for q in summary.quarantined:
        click.echo(f"  quarantined {q.origin} [{q.source}/{q.kind}]: {q.error}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--source", type=click.Choice(ingest_mod.SOURCE_CHOICES), default="auto", show_default=True,
              help="Which system the payloads come from; auto detects each payload.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def ingest(state: State, files: tuple[str, ...], source: str, as_json: bool) -> None:
    """Ingest payload FILES (JSON object, JSON list, NDJSON or CSV; - reads stdin).

    Every payload is archived raw; one that cannot be parsed is quarantined with its reason.
    Exit status: 0 all stored, 1 something was quarantined (still archived), 2 usage error.
    """
    envelopes = ingest_mod.read_files(files, None if source == "auto" else source)
    progress = Progress("ingested")
    summary = ingest_mod.ingest(state.engine, envelopes, state.config, progress=progress)
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
    engine = state.engine
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(raw_events)).scalar_one()
    progress = Progress("replayed", total)
    summary = ingest_mod.replay(engine, state.config, progress=progress)
    progress.finish()
    if as_json:
        echo_json(summary.to_dict())
        return
    click.echo(f"replayed {summary.events} events: {summary.recovered} recovered from quarantine, "
               f"{summary.newly_quarantined} newly quarantined, {summary.still_quarantined} still quarantined")
    click.echo("rows: " + ", ".join(f"{k} {v}" for k, v in summary.rows.items()))


@click.command()
@click.option("--limit", default=50, show_default=True, help="Show at most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def quarantine(state: State, limit: int, as_json: bool) -> None:
    """List quarantined payloads with their reasons (fix the parser or config, then `replay`)."""
    with state.engine.connect() as conn:
        rows = conn.execute(
            select(raw_events.c.id, raw_events.c.source, raw_events.c.kind, raw_events.c.received_at,
                   raw_events.c.error)
            .where(raw_events.c.status == ingest_mod.QUARANTINED)
            .order_by(raw_events.c.id.desc()).limit(limit)).mappings().all()
    if as_json:
        echo_json([dict(r) for r in rows])
        return
    if not rows:
        click.echo("nothing is quarantined")
    for r in rows:
        click.echo(f"#{r['id']} {r['received_at']:%Y-%m-%d %H:%M:%S} [{r['source']}/{r['kind']}] {r['error']}")
