"""`gatewatch demo`: a realistic organisation's delivery history, ingested like any user's events."""

from __future__ import annotations

import time
from datetime import datetime

import click

from gatewatch import api
from gatewatch.api import DemoExtras, DemoResult, IngestSummary

from .common import Progress, State, echo_json, pass_state

PLATFORMS = {"codepipeline": "AWS CodePipeline", "github": "GitHub Actions"}


def _describe(result: DemoResult, before: int) -> list[str]:
    days = (result.end - result.start).days
    lines = [
        f"Demo organisation: {len(result.services)} services in {len(result.teams)} teams, {days} days "
        f"from {result.start:%Y-%m-%d} to {result.end:%Y-%m-%d} (seed {result.seed})"
    ]
    platform = {s.name: PLATFORMS[s.platform] for s in result.services}
    for team, names in result.teams.items():
        lines.append(f"  {team}: " + ", ".join(f"{n} ({platform[n]})" for n in names))
    per_source: dict[str, list[str]] = {}
    totals: dict[str, int] = {}
    for (source, kind), n in sorted(result.payloads.items()):
        per_source.setdefault(source, []).append(f"{kind} {n:,}")
        totals[source] = totals.get(source, 0) + n
    lines.append(f"Payloads: {sum(totals.values()):,}, generated in {result.generate_seconds:.1f} s")
    for source, kinds in per_source.items():
        lines.append(f"  {source} {totals[source]:,}: " + ", ".join(kinds))
    if before and result.summary.stored:
        lines.append(f"note: the store already held {before:,} events; the demo's were added to them.")
    return lines


def _ingested(summary: IngestSummary, shown: int = 10) -> list[str]:
    sources = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.by_source.items())) or "none"
    lines = [
        f"Ingest: stored {summary.stored:,} ({sources}), duplicates {summary.duplicates:,}, "
        f"quarantined {len(summary.quarantined):,}"
    ]
    lines += [f"  quarantined {q.origin} [{q.source}/{q.kind}]: {q.error}" for q in summary.quarantined[:shown]]
    if len(summary.quarantined) > shown:
        lines.append(f"  ... and {len(summary.quarantined) - shown:,} more: `gatewatch quarantine` lists them")
    return lines


def _extras(extras: DemoExtras) -> list[str]:
    lines = [f"Demo files: {extras.folder} (SLO files, a canary config and samples, gate policies)"]
    burning = [s["service"] for s in extras.slos if s["profile"] == "burning"]
    lines.append(
        f"  SLOs: {len(extras.slos)} in {extras.folder / 'slos'}"
        + (f"; {', '.join(burning)} is burning its error budget fast" if burning else "")
    )
    new_runs = sum(r["new"] for r in extras.canary_runs)
    verdicts = ", ".join(f"{r['verdict']} ({r['service']})" for r in extras.canary_runs) or "none"
    lines.append(f"  Canary runs: {new_runs} stored, {len(extras.canary_runs) - new_runs} already there: {verdicts}")
    for d in extras.gate_decisions:
        state = "decided" if d["new"] else "already decided"
        lines.append(f"  Gate {d['gate']} {state}: {d['decision']} for {d['deployment_id']}")
    if extras.notifications:
        sent = [n for n in extras.notifications if n["status"] == "sent"]
        events = ", ".join(f"{n['event']} ({n['service']})" for n in sent) or "none new"
        where = f" to {extras.outbox}" if extras.outbox else ""
        lines.append(
            f"  Notifications: {len(sent)} sent{where}, {len(extras.notifications) - len(sent)} not sent again "
            f"or failed: {events} (`gatewatch notify list`)"
        )
    return lines


def _outcome(result: DemoResult, seconds: float) -> list[str]:
    summary = result.summary
    lines = []
    if summary.stored == 0 and summary.duplicates:
        lines.append(
            f"Nothing new: this demo (seed {result.seed}, end {result.end:%Y-%m-%d}) is already in the "
            f"store; all {summary.duplicates:,} payloads were duplicates."
        )
    lines.append(f"Done in {seconds:.1f} s (ingest {result.ingest_seconds:.1f} s).")
    lines.append(
        "Next: `gatewatch dora` for the delivery metrics, `gatewatch canary show RUN_ID` for a canary run, "
        "`gatewatch dashboard` to explore them, `gatewatch ingest FILE...` to add your own events."
    )
    return lines


@click.command()
@click.option(
    "--services",
    default=api.DEMO_DEFAULT_SERVICES,
    show_default=True,
    type=click.IntRange(1, api.DEMO_MAX_SERVICES),
    help="How many services (about half on AWS CodePipeline, half on GitHub Actions), in three teams.",
)
@click.option(
    "--days",
    default=api.DEMO_DEFAULT_DAYS,
    show_default=True,
    type=click.IntRange(1, api.DEMO_MAX_DAYS),
    help="How many days of history.",
)
@click.option(
    "--seed",
    default=api.DEMO_DEFAULT_SEED,
    show_default=True,
    type=int,
    help="Random seed: the same seed and end date give the same events.",
)
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="The history ends at 00:00 UTC of this day (default: today).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
def demo(state: State, services: int, days: int, seed: int, end: datetime | None, as_json: bool) -> None:
    """Build a demo organisation's delivery history and ingest it like real events.

    Three teams' services release through AWS CodePipeline or GitHub Actions: GitHub push and
    pull_request webhooks, CodePipeline EventBridge events, workflow runs and jobs, deployments,
    PagerDuty incidents and a few generic records, including flaky tests, failed deploys,
    rollbacks, hotfixes and incidents. Every payload takes the normal ingest path into the store.
    It then writes ./gatewatch-demo/ (SLO files with SLI counts, a canary config and samples, gate
    policies), stores judged canary runs of recent deployments and makes three gate decisions.

    Without a configuration file, the demo writes its service and team maps and its folders to
    ./gatewatch.yaml (never overwriting one). Running it again with the same options stores nothing new.
    Exit status: 0 stored (or all duplicates), 1 something was quarantined.
    """
    began = time.perf_counter()
    click.echo(f"generating {days} days of history for {services} services ...", err=True)
    progress = Progress("ingested")
    try:
        run = api.build_demo(
            state.engine, state.config, services, days, seed, end.date() if end else None, progress=progress
        )
    finally:
        progress.finish()
    result, extras, before, written = run.result, run.extras, run.store_events_before, run.config_written
    seconds = time.perf_counter() - began
    if run.warning:
        click.echo(run.warning, err=True)
    if as_json:
        echo_json(
            {
                **result.to_dict(),
                "seconds": round(seconds, 2),
                "store_events_before": before,
                "config": run.mapping,
                "config_file": run.config.source_path,
                "config_written": written,
                "demo_files": extras.to_dict(),
            }
        )
        raise SystemExit(result.summary.exit_code)
    click.echo(
        "\n".join(_describe(result, before) + _ingested(result.summary) + _extras(extras) + _outcome(result, seconds))
    )
    if written:
        click.echo(
            f"Config: wrote the demo's service and team maps to {written}; it is used from now on, "
            "and `gatewatch replay` reproduces the same rows with it."
        )
    raise SystemExit(result.summary.exit_code)
