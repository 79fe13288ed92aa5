"""`gatewatch demo`: a realistic organisation's delivery history, ingested like any user's events."""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path

import click
import yaml
from sqlalchemy import func, select

from collector import demo as demo_mod
from collector.config import Config, load_config
from collector.errors import ConfigError
from collector.ingest import IngestSummary
from collector.models import raw_events
from gates import demo as gate_demo

from .common import Progress, State, echo_json, pass_state

CONFIG_FILE = "gatewatch.yaml"
HEADER = """\
# Written by `gatewatch demo`: the service of each demo CodePipeline pipeline, GitHub repository and
# PagerDuty service, and the team owning each service (CodePipeline and PagerDuty events name no team).
# Keep it while the demo's events are in the store: `gatewatch replay` re-projects them with it.
# See the README's "Configuration" section for the other settings.
"""
PLATFORMS = {"codepipeline": "AWS CodePipeline", "github": "GitHub Actions"}


def merged_config(config: Config, mapping: dict) -> Config:
    """`config` with the demo's maps added underneath: the user's own entries win."""
    services = mapping["services"]
    return dataclasses.replace(
        config,
        pipeline_services={**services["pipelines"], **config.pipeline_services},
        repository_services={**services["repositories"], **config.repository_services},
        pagerduty_services={**services["pagerduty"], **config.pagerduty_services},
        service_teams={**mapping["teams"], **config.service_teams},
        slos=config.slos or mapping["slos"],
        gate_policies=config.gate_policies or mapping["gates"]["policies"],
    )


def _absolute_folders(mapping: dict) -> dict:
    """The mapping with its demo folders as absolute paths (for a configuration file elsewhere)."""
    return {**mapping, "slos": str(Path(mapping["slos"]).resolve()),
            "gates": {"policies": str(Path(mapping["gates"]["policies"]).resolve())}}


def write_config(path: Path, mapping: dict) -> bool:
    """Create `path` with the demo's maps; False when it already exists (never overwritten)."""
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(HEADER)
            yaml.safe_dump(mapping, out, sort_keys=False, default_flow_style=False)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}; run the demo in a folder you can write to, "
                          "or pass --config FILE") from None
    return True


def _config_for_run(state: State, mapping: dict) -> tuple[Config, str | None, str | None]:
    """(config to ingest with, config file written, warning): a new ./gatewatch.yaml, else a merge."""
    config = state.config
    if config.source_path is None:
        path = Path(CONFIG_FILE)
        if write_config(path, mapping):
            return load_config(str(path)), str(path.resolve()), None
    mapping = _absolute_folders(mapping)
    merged = merged_config(config, mapping)
    if merged == config:  # the configuration already holds the demo's maps (a demo run before wrote it)
        return config, None, None
    warning = (f"warning: the configuration {config.source_path or CONFIG_FILE} is in use, so the demo's maps "
               "(services.pipelines, services.repositories, services.pagerduty, teams) and folders (slos, "
               "gates.policies) were added under it for this run only. Add them to it, or `gatewatch replay` will "
               "give the demo's CodePipeline and PagerDuty events other service names and no team:\n"
               + yaml.safe_dump(mapping, sort_keys=False, default_flow_style=False).rstrip())
    return merged, None, warning


def _stored_events(state: State) -> int:
    with state.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(raw_events)).scalar_one()


def _describe(result: demo_mod.DemoResult, before: int) -> list[str]:
    days = (result.end - result.start).days
    lines = [f"Demo organisation: {len(result.services)} services in {len(result.teams)} teams, {days} days "
             f"from {result.start:%Y-%m-%d} to {result.end:%Y-%m-%d} (seed {result.seed})"]
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
    lines = [f"Ingest: stored {summary.stored:,} ({sources}), duplicates {summary.duplicates:,}, "
             f"quarantined {len(summary.quarantined):,}"]
    lines += [f"  quarantined {q.origin} [{q.source}/{q.kind}]: {q.error}" for q in summary.quarantined[:shown]]
    if len(summary.quarantined) > shown:
        lines.append(f"  ... and {len(summary.quarantined) - shown:,} more: `gatewatch quarantine` lists them")
    return lines


def _extras(extras: gate_demo.DemoExtras) -> list[str]:
    lines = [f"Demo files: {extras.folder} (SLO files, a canary config and samples, gate policies)"]
    burning = [s["service"] for s in extras.slos if s["profile"] == "burning"]
    lines.append(f"  SLOs: {len(extras.slos)} in {extras.folder / 'slos'}"
                 + (f"; {', '.join(burning)} is burning its error budget fast" if burning else ""))
    new_runs = sum(r["new"] for r in extras.canary_runs)
    verdicts = ", ".join(f"{r['verdict']} ({r['service']})" for r in extras.canary_runs) or "none"
    lines.append(f"  Canary runs: {new_runs} stored, {len(extras.canary_runs) - new_runs} already there: {verdicts}")
    for d in extras.gate_decisions:
        state = "decided" if d["new"] else "already decided"
        lines.append(f"  Gate {d['gate']} {state}: {d['decision']} for {d['deployment_id']}")
    return lines


def _outcome(result: demo_mod.DemoResult, seconds: float) -> list[str]:
    summary = result.summary
    lines = []
    if summary.stored == 0 and summary.duplicates:
        lines.append(f"Nothing new: this demo (seed {result.seed}, end {result.end:%Y-%m-%d}) is already in the "
                     f"store; all {summary.duplicates:,} payloads were duplicates.")
    lines.append(f"Done in {seconds:.1f} s (ingest {result.ingest_seconds:.1f} s).")
    lines.append("Next: `gatewatch dora` for the delivery metrics, `gatewatch canary show RUN_ID` for a canary run, "
                 "`gatewatch dashboard` to explore them, `gatewatch ingest FILE...` to add your own events.")
    return lines


@click.command()
@click.option("--services", default=demo_mod.DEFAULT_SERVICES, show_default=True,
              type=click.IntRange(1, demo_mod.MAX_SERVICES), help="How many services (about half on AWS "
              "CodePipeline, half on GitHub Actions), in three teams.")
@click.option("--days", default=demo_mod.DEFAULT_DAYS, show_default=True,
              type=click.IntRange(1, demo_mod.MAX_DAYS), help="How many days of history.")
@click.option("--seed", default=demo_mod.DEFAULT_SEED, show_default=True, type=int,
              help="Random seed: the same seed and end date give the same events.")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The history ends at 00:00 UTC of this day (default: today).")
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
    mapping = demo_mod.demo_config_mapping(services, seed)
    before = _stored_events(state)  # reach the store before writing any file
    config, written, warning = _config_for_run(state, mapping)
    click.echo(f"generating {days} days of history for {services} services ...", err=True)
    progress = Progress("ingested")
    result = demo_mod.run_demo(state.engine, config, services, days, seed, end.date() if end else None,
                               progress=progress)
    progress.finish()
    extras = gate_demo.build(state.engine, result.services, result.start, result.end, seed,
                             Path(demo_mod.DEMO_FILES).resolve())
    seconds = time.perf_counter() - began
    if warning:
        click.echo(warning, err=True)
    if as_json:
        echo_json({**result.to_dict(), "seconds": round(seconds, 2), "store_events_before": before,
                   "config": mapping, "config_file": config.source_path, "config_written": written,
                   "demo_files": extras.to_dict()})
        raise SystemExit(result.summary.exit_code)
    click.echo("\n".join(_describe(result, before) + _ingested(result.summary) + _extras(extras)
                          + _outcome(result, seconds)))
    if written:
        click.echo(f"Config: wrote the demo's service and team maps to {written}; it is used from now on, "
                   "and `gatewatch replay` reproduces the same rows with it.")
    raise SystemExit(result.summary.exit_code)
