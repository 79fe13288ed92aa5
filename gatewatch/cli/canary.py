"""`gatewatch canary`: judge a canary against its baseline, from a CSV file or live telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gatewatch import api
from gatewatch.errors import ConfigError

from .common import State, echo_json, pass_state

if TYPE_CHECKING:
    from gatewatch.api import Verdict

EXIT = {"pass": 0, "fail": 1, "marginal": 3, "nodata": 3, "continue": 3}


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def print_verdict(verdict: Verdict, run_id: str | None, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """The report: one line per metric, the verdict last (or the JSON document)."""
    if as_json:
        echo_json({"id": run_id, **verdict.to_dict(), **(extra or {})})
        return
    width = max((len(m.name) for m in verdict.metrics), default=6)
    for m in verdict.metrics:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[m.passed]
        crit = " critical" if m.critical else ""
        click.echo(
            f"  {mark} {m.name:<{width}}  {m.classification:<6} baseline n={m.baseline['n']} "
            f"median={_fmt(m.baseline['median'])}  canary n={m.canary['n']} median={_fmt(m.canary['median'])}"
            f"{crit}  | {m.reason}"
        )
    score = "n/a" if verdict.score is None else f"{verdict.score:.1f}"
    click.echo(f"verdict: {verdict.verdict.upper()} (score {score})" + (f", run {run_id}" if run_id else ""))
    if verdict.sequence is not None:
        look = verdict.sequence
        click.echo(
            f"  look {look['look']} at {look['elapsed_s'] / 60:.1f} min (a pass from "
            f"{look['min_duration_s'] / 60:g} min, the fixed-horizon judge at {look['max_duration_s'] / 60:g} min)"
        )
    for reason in verdict.reasons[:1]:
        click.echo(f"  {reason}")


@click.group()
def canary() -> None:
    """Judge a canary against its baseline (Mann-Whitney / Hodges-Lehmann, proportions).

    Exit status: 0 pass, 1 fail, 3 marginal, no data or (a sequential canary) continue, 2 usage or
    configuration error.
    """


def _finish(outcome: api.CanaryOutcome, as_json: bool) -> None:
    print_verdict(outcome.verdict, outcome.run_id, as_json)
    raise SystemExit(EXIT[outcome.verdict.verdict])


@canary.command("judge")
@click.option("--config", "config_path", required=True, metavar="FILE", help="Canary config (YAML).")
@click.option(
    "--data",
    required=True,
    metavar="CSV",
    help="Samples: columns metric, group (baseline|canary), "
    "value [, timestamp]; good and total for proportion metrics.",
)
@click.option("--deployment", metavar="ID", help="The deployment this canary belongs to (recorded with the run).")
@click.option(
    "--sequence",
    metavar="KEY",
    help="For a config with mode: sequential, the sequence this look continues (one key per rollout; "
    "its looks are stored, so any process continues it).",
)
@click.option("--no-store", is_flag=True, help="Do not record the run in the store.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@pass_state
def judge_command(
    state: State,
    config_path: str,
    data: str,
    deployment: str | None,
    sequence: str | None,
    no_store: bool,
    as_json: bool,
) -> None:
    """Judge samples from a CSV file (offline, notebooks, other telemetry systems)."""
    canary = api.load_canary_config(config_path)
    _finish(
        api.run_canary(
            state.engine if not no_store else None,
            state.config,
            canary,
            api.CsvSamples(Path(data)),
            deployment_id=deployment,
            store=not no_store,
            sequence=sequence,
        ),
        as_json,
    )


@canary.command("run")
@click.option("--config", "config_path", required=True, metavar="FILE", help="Canary config (YAML) with queries.")
@click.option(
    "--baseline",
    required=True,
    metavar="MATCHERS",
    help="Baseline scope, e.g. 'version=\"v1\"' (with --cloudwatch: dimensions, 'Version=\"v1\"').",
)
@click.option(
    "--canary", "canary_scope", required=True, metavar="MATCHERS", help="Canary scope, e.g. 'version=\"v2\"'."
)
@click.option("--start", required=True, metavar="TIME", help="Window start (ISO 8601), or a duration ago such as 30m.")
@click.option("--end", default=None, metavar="TIME", help="Window end (ISO 8601; default now).")
@click.option(
    "--step",
    default=None,
    help="Query resolution [default: 30s; 60s with --cloudwatch, where it is the "
    "GetMetricData period: 1, 5, 10, 30 s or a multiple of 60 s].",
)
@click.option(
    "--prometheus",
    "prometheus_url",
    metavar="URL",
    help="Prometheus-compatible base URL (default $GATEWATCH_PROMETHEUS_URL). Auth: "
    "$GATEWATCH_PROMETHEUS_TOKEN (bearer) or $GATEWATCH_PROMETHEUS_USER/_PASSWORD (basic).",
)
@click.option(
    "--cloudwatch",
    is_flag=True,
    help="Read the metrics' `cloudwatch` settings from Amazon CloudWatch "
    "instead (GetMetricData; credentials from the AWS chain, $AWS_ENDPOINT_URL honoured).",
)
@click.option(
    "--region", metavar="REGION", help="AWS region for --cloudwatch (default: the AWS chain's, e.g. $AWS_REGION)."
)
@click.option("--deployment", metavar="ID", help="The deployment this canary belongs to (recorded with the run).")
@click.option(
    "--sequence",
    metavar="KEY",
    help="For a config with mode: sequential, the sequence this look continues (one key per rollout; "
    "its looks are stored, so any process continues it).",
)
@click.option("--no-store", is_flag=True, help="Do not record the run in the store.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@pass_state
def run_command(
    state: State,
    config_path: str,
    baseline: str,
    canary_scope: str,
    start: str,
    end: str | None,
    step: str | None,
    prometheus_url: str | None,
    cloudwatch: bool,
    region: str | None,
    deployment: str | None,
    sequence: str | None,
    no_store: bool,
    as_json: bool,
) -> None:
    """Query baseline and canary telemetry from Prometheus (or CloudWatch) over [start, end] and judge it.

    An unreachable or failing source gives no data (exit 3) with the error, never a pass.
    """
    if cloudwatch and prometheus_url:
        raise ConfigError("--prometheus and --cloudwatch: give one telemetry source")
    if region and not cloudwatch:
        raise ConfigError("--region applies to --cloudwatch only")
    config = state.config
    prometheus_url = prometheus_url or (None if cloudwatch else config.prometheus.url)
    if not cloudwatch and not prometheus_url:
        raise ConfigError("--prometheus URL (or GATEWATCH_PROMETHEUS_URL) or --cloudwatch is required")
    span = api.parse_span(step or ("60s" if cloudwatch else "30s"), "--step")
    canary = api.load_canary_config(config_path)
    now = api.utcnow()
    begin = api.parse_time(start, "--start", now)
    finish = api.parse_time(end, "--end", now) if end else now
    if finish <= begin:
        raise ConfigError(f"--end {finish.isoformat()} must be after --start {begin.isoformat()}")
    source = (
        api.PrometheusSamples(prometheus_url, baseline, canary_scope, span)
        if prometheus_url
        else api.CloudWatchSamples(baseline, canary_scope, span, region, where="--")
    )
    _finish(
        api.run_canary(
            state.engine if not no_store else None,
            config,
            canary,
            source,
            window=(begin, finish),
            deployment_id=deployment,
            store=not no_store,
            sequence=sequence,
        ),
        as_json,
    )


@canary.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the stored verdict as JSON.")
@pass_state
def show_command(state: State, run_id: str, as_json: bool) -> None:
    """Show a stored canary run's verdict."""
    run = api.get_canary_run(state.engine, run_id)
    if run is None:
        raise ConfigError(f"no canary run {run_id!r} in the store")
    if as_json:
        echo_json({"id": run.id, "created_at": run.created_at, "source": run.source, **run.result})
        return
    window = (
        f", window {run.window_start:%Y-%m-%d %H:%M} .. {run.window_end:%Y-%m-%d %H:%M} UTC"
        if run.window_start and run.window_end
        else ""
    )
    click.echo(
        f"canary run {run.id} at {run.created_at:%Y-%m-%d %H:%M:%S} UTC from {run.source}{window}"
        + (f", deployment {run.deployment_id}" if run.deployment_id else "")
    )
    for metric in run.result.get("metrics", []):
        click.echo(f"  {metric['classification']:<6} {metric['reason']}")
    score = "n/a" if run.score is None else f"{run.score:.1f}"
    click.echo(f"verdict: {run.verdict.upper()} (score {score})")


@canary.command("import-kayenta")
@click.argument("source", metavar="CONFIG.json")
@click.option("--out", "out_path", metavar="FILE", help="Write the Gatewatch config (YAML) here instead of stdout.")
@click.option(
    "--pass",
    "pass_threshold",
    type=float,
    metavar="SCORE",
    help="Pass threshold (0-100); wins over the file's scoreThresholds / executionRequest.thresholds.",
)
@click.option("--marginal", "marginal_threshold", type=float, metavar="SCORE", help="Marginal threshold (0-100).")
@click.option("--json", "as_json", is_flag=True, help="Print {config, notes, out} as JSON.")
def import_kayenta_command(
    source: str, out_path: str | None, pass_threshold: float | None, marginal_threshold: float | None, as_json: bool
) -> None:
    """Turn a Spinnaker Kayenta canary config (JSON) into a Gatewatch canary config (YAML).

    What could not be mapped is listed on stderr (`note: ...`, each naming the Kayenta field) and, as
    comments, at the top of the YAML. Exit status: 0 when converted, notes or not; 2 when the file is
    missing, not JSON or not a Kayenta canary config.
    """
    result = api.import_kayenta_config(source, pass_threshold=pass_threshold, marginal_threshold=marginal_threshold)
    if out_path:
        try:
            Path(out_path).write_text(result.yaml, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--out {out_path!r}: cannot be written ({exc.strerror or exc})") from None
    if as_json:
        echo_json({"config": result.config, "notes": result.notes, "out": out_path})
        return
    if not out_path:
        click.echo(result.yaml, nl=False)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if out_path:
        click.echo(
            f"wrote {out_path}: {len(result.config['metrics'])} metric(s), {len(result.notes)} note(s)", err=True
        )
