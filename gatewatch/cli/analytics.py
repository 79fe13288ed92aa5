"""`gatewatch dora` and `gatewatch pipelines`: delivery analytics over the store."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from typing import Any

import click

from gatewatch import api
from gatewatch.errors import ConfigError

from .common import State, echo_json, pass_state


def filters(command: Callable) -> Callable:
    """The window and scope options shared by `dora` and `pipelines`."""
    options = [
        click.option(
            "--since", metavar="DURATION", help="Window: the last N days up to today, e.g. 90d (default 90d)."
        ),
        click.option("--start", metavar="DATE", help="Window start (a local date in --tz)."),
        click.option("--end", metavar="DATE", help="Window end, excluded (a local date in --tz)."),
        click.option("--service", help="Only this service."),
        click.option("--team", help="Only services of this team."),
        click.option(
            "--env",
            "environment",
            metavar="ENV",
            help="Only this environment (dora default: every environment configured as production).",
        ),
        click.option("--tz", default="UTC", show_default=True, help="Time zone that draws days and weeks."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        click.option("--csv", "as_csv", is_flag=True, help="Print CSV."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _scope(service: str | None, team: str | None, environment: str | None) -> api.Scope:
    return api.Scope(service=service, team=team, environment=environment)


def _fmt_hours(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def dora_lines(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The human rows: metric, value, tier."""
    df, lt, cfr, rt, rw = (
        report[k] for k in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "rework_rate")
    )
    rows = []
    if df["per_day"] is None:
        rows.append(("Deployment frequency", f"no data ({df['reason']})", "-"))
    else:
        median = "-" if df["weekly_median"] is None else f"{df['weekly_median']:g}"
        rows.append(
            (
                "Deployment frequency",
                f"{df['deployments']} deployments, {df['per_day']:.2f}/day, "
                f"{df['per_week']:.1f}/week, {_pct(df['deploy_day_share'])} of days, weekly median {median}",
                df["tier"] or "-",
            )
        )
    if lt["median_hours"] is None:
        rows.append(("Change lead time", f"no data ({lt['reason']})", "-"))
    else:
        rows.append(
            (
                "Change lead time",
                f"median {_fmt_hours(lt['median_hours'])}, p75 {_fmt_hours(lt['p75_hours'])}, "
                f"p90 {_fmt_hours(lt['p90_hours'])}, mean {_fmt_hours(lt['mean_hours'])} "
                f"({lt['changes']} changes)",
                lt["tier"] or "-",
            )
        )
    if cfr["rate"] is None:
        rows.append(("Change failure rate", f"no data ({cfr['reason']})", "-"))
    else:
        rows.append(
            (
                "Change failure rate",
                f"{_pct(cfr['rate'])} ({cfr['failed']} of {cfr['deployments']})",
                cfr["tier"] or "-",
            )
        )
    if rt["median_hours"] is None:
        extra = f", {rt['open']} open" if rt["open"] else ""
        rows.append(("Failed deployment recovery", f"no data ({rt['reason']}{extra})", "-"))
    else:
        rows.append(
            (
                "Failed deployment recovery",
                f"median {_fmt_hours(rt['median_hours'])}, "
                f"p90 {_fmt_hours(rt['p90_hours'])}, mean {_fmt_hours(rt['mean_hours'])} "
                f"({rt['recovered']} recovered, {rt['open']} open)",
                rt["tier"] or "-",
            )
        )
    if rw["rate"] is None:
        rows.append(("Rework rate", f"no data ({rw['reason']})", "-"))
    else:
        rows.append(("Rework rate", f"{_pct(rw['rate'])} ({rw['rework']} of {rw['deployments']})", "-"))
    return rows


FLAT_COLUMNS = (
    ("deployment_frequency", ("deployments", "per_day", "per_week", "deploy_day_share", "weekly_median", "tier")),
    ("lead_time", ("changes", "median_hours", "p75_hours", "p90_hours", "mean_hours", "tier")),
    ("change_failure_rate", ("failed", "deployments", "rate", "tier")),
    ("recovery_time", ("failures", "recovered", "open", "median_hours", "p90_hours", "mean_hours", "tier")),
    ("rework_rate", ("rework", "deployments", "rate")),
)


def flatten(report: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: window start/end and every figure as `<metric>.<field>`."""
    row = {"start": report["window"]["start"], "end": report["window"]["end"]}
    for metric, fields in FLAT_COLUMNS:
        for name in fields:
            row[f"{metric}.{name}"] = report[metric].get(name)
    return row


def _write_csv(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


@click.command()
@filters
@click.option("--by", type=click.Choice(api.BUCKETS), help="Also report each day, week or month (a `series`).")
@click.option(
    "--benchmark",
    metavar="NAME",
    help="Tier table: dora-2024 (default), dora-2023, or one defined under dora.benchmarks in gatewatch.yaml.",
)
@click.option(
    "--link-window",
    metavar="DURATION",
    help="How long after a deployment an unlinked incident of "
    "the same service is blamed on it (default 24h, or dora.link_window in gatewatch.yaml).",
)
@pass_state
def dora(
    state: State, since, start, end, service, team, environment, tz, as_json, as_csv, by, benchmark, link_window
) -> None:
    """The DORA keys for a window: deployment frequency, change lead time, change failure rate,
    failed deployment recovery time and rework rate, with performance tiers.

    Definitions are in the README. A metric without data is shown as no data (null in JSON) with
    the reason, never as 0.
    """
    if as_json and as_csv:
        raise ConfigError("choose one of --json and --csv")
    window = api.report_window(since, start, end, tz)
    report = api.dora_report(
        state.engine,
        state.config,
        window,
        _scope(service, team, environment),
        by=by,
        benchmark=benchmark,
        link_window=link_window,
    )
    report["filters"] = {"service": service, "team": team, "environment": environment or "production", "tz": tz}
    if as_json:
        echo_json(report)
        return
    if as_csv:
        _write_csv([flatten(item) for item in report.get("series") or [report]])
        return
    scope = ", ".join(f"{k}={v}" for k, v in report["filters"].items() if v)
    shown = window.as_dict()
    click.echo(
        f"DORA {shown['start'][:10]} .. {shown['end'][:10]} (end excluded; {scope}; benchmark {report['benchmark']})"
    )
    rows = dora_lines(report)
    width = max(len(r[0]) for r in rows)
    for metric, value, tier in rows:
        click.echo(f"  {metric:<{width}}  {tier:<6}  {value}")
    for item in report.get("series") or []:
        if item is (report.get("series") or [None])[0]:
            click.echo(
                f"\n  {'bucket':<10}  {'deploys':>7}  {'lead p50':>9}  {'CFR':>6}  {'recovery p50':>12}  {'rework':>6}"
            )
        click.echo(
            f"  {item['window']['start'][:10]:<10}  {item['deployment_frequency']['deployments']:>7}  "
            f"{_fmt_hours(item['lead_time']['median_hours']):>9}  {_pct(item['change_failure_rate']['rate']):>6}  "
            f"{_fmt_hours(item['recovery_time']['median_hours']):>12}  {_pct(item['rework_rate']['rate']):>6}"
        )


@click.command()
@filters
@pass_state
def pipelines(state: State, since, start, end, service, team, environment, tz, as_json, as_csv) -> None:
    """Pipeline metrics over all runs: deployment success and completion rates, failed pipeline rate,
    time to deploy (from commit and from merge), time to rollback (from finish and from detection),
    build duration, queue time, approval latency and flaky stages, per pipeline and per stage. `--csv`
    prints the per-stage table."""
    if as_json and as_csv:
        raise ConfigError("choose one of --json and --csv")
    window = api.report_window(since, start, end, tz)
    report = api.pipeline_report(state.engine, window, _scope(service, team, environment))
    report["warnings"] = api.production_stage_warnings(state.engine, state.config)
    if as_json:
        echo_json(report)
        return
    if as_csv:
        _write_csv(
            [
                {k: v for k, v in row.items() if k != "duration"}
                | {f"duration.{k}": v for k, v in row["duration"].items()}
                for row in report["per_stage"]
            ]
        )
        return
    dep, runs = report["deployments"], report["pipeline_runs"]
    click.echo(f"Pipelines {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (end excluded)")
    click.echo(
        f"  deployment success rate  {_pct(dep['success_rate'])} ({dep['successful']} of {dep['attempted']}, "
        f"{dep['rolled_back']} rolled back)"
    )
    click.echo(f"  completion rate          {_pct(dep['completion_rate'])} ({dep['completed']} of {dep['attempted']})")
    click.echo(
        f"  failed pipeline rate     {_pct(runs['failed_rate'])} ({runs['failed']} of {runs['finished']}; "
        f"{runs['superseded']} superseded, not counted)"
    )
    detection = report["detection_to_rollback"]
    click.echo(
        f"  rollbacks                {detection['rollbacks']} "
        f"({detection['without_detection']} without detection evidence)"
    )
    for key, label in (
        ("time_to_deploy", "time to deploy"),
        ("merge_to_production", "merge to production"),
        ("time_to_rollback", "time to rollback"),
        ("detection_to_rollback", "detection to rollback"),
        ("build_duration", "build duration"),
        ("queue_time", "queue time"),
        ("approval_latency", "approval latency"),
    ):
        s = report[key]
        click.echo(
            f"  {label:<24} "
            + (
                "no data"
                if not s["count"]
                else f"median {_fmt_hours(s['median_hours'])}, p90 {_fmt_hours(s['p90_hours'])}, "
                f"mean {_fmt_hours(s['mean_hours'])} (n={s['count']})"
            )
        )
    if report["per_stage"]:
        click.echo(
            f"\n  {'service':<16} {'pipeline':<24} {'stage':<18} {'runs':>5} {'success':>8} {'p50':>8} "
            f"{'p90':>8} {'flaky':>5}"
        )
        for row in report["per_stage"]:
            click.echo(
                f"  {str(row['service'])[:16]:<16} {str(row['pipeline'])[:24]:<24} {row['stage'][:18]:<18} "
                f"{row['runs']:>5} "
                f"{_pct(row['success_rate']):>8} {_fmt_hours(row['duration']['median_hours']):>8} "
                f"{_fmt_hours(row['duration']['p90_hours']):>8} {row['flaky']:>5}"
            )
    for warning in report["warnings"]:
        click.echo(f"\n  warning: {warning}")
