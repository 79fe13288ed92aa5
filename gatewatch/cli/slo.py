"""`gatewatch slo status`: an SLO's SLI, error budget and multiwindow burn-rate alerts; `gatewatch slo rules`:
the same alerts as Prometheus rules or CloudWatch alarms."""

from __future__ import annotations

from pathlib import Path

import click

from gatewatch import api
from gatewatch.errors import ConfigError

from .common import State, echo_json, pass_state

EXIT_OK, EXIT_ALERT, EXIT_NODATA = 0, 1, 3


def _pct(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


@click.group()
def slo() -> None:
    """Service level objectives: SLI, error budget and burn-rate alerts from an SLO file."""


@slo.command("status")
@click.option(
    "--slo",
    "slo_path",
    required=True,
    metavar="FILE",
    help="SLO file (YAML): service, objective, window, sli (data, ratio, threshold or cloudwatch).",
)
@click.option(
    "--at", metavar="TIME", help="Evaluate at this time (ISO 8601, or a duration ago such as 1h; default now)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--notify",
    "send",
    is_flag=True,
    help="Notify the burn-rate alerts (trigger while firing, resolve when stopped, stale data) on the "
    "configured channels (notify: in gatewatch.yaml), deduplicated.",
)
@pass_state
def status(state: State, slo_path: str, at: str | None, as_json: bool, send: bool) -> None:
    """Print the SLI over the SLO window, the error budget (total, used, remaining) and the burn rates
    of the SRE workbook's multiwindow pairs (14.4x 1h/5m and 6x 6h/30m page, 3x 1d/2h and 1x 3d/6h
    ticket; a pair fires only when both its windows exceed the threshold).

    Exit status: 0 ok; 1 a burn-rate alert fires or the error budget is exhausted; 3 the SLI data is
    stale (its newest point older than max_staleness, default 10 minutes or two steps) or has gaps over
    half a short window: no data; 2 usage or configuration error; 5 the telemetry (Prometheus, CloudWatch,
    the SLI data file) could not be read. With --notify, a notification that failed to send is reported on
    stderr (and recorded) and does not change the exit status.
    """
    spec = api.load_slo(slo_path)
    found = api.slo_status(state.config, spec, api.parse_time(at, "--at") if at else api.utcnow())
    if send:
        if not state.config.notify.channels:
            raise ConfigError("--notify: no notification channels configured; add notify.channels to gatewatch.yaml")
        for row in api.notify_slo(state.engine, state.config, spec, found):
            if row["status"] != "suppressed":
                click.echo(f"notify: {row['status']} {row['event']} to {row['channel']}", err=True)
            if row["status"] == "failed":
                click.echo(f"notify: error: {row['error']}", err=True)
    if as_json:
        echo_json({"service": spec.service, "name": spec.name, **found.to_dict()})
    else:
        window = found.to_dict()["window"]
        click.echo(
            f"SLO {spec.service}/{spec.name}: objective {100 * spec.objective:g}% over {window} (rolling), "
            f"{spec.sli.kind} SLI, at {found.at:%Y-%m-%d %H:%M:%S} UTC"
        )
        if found.sli is None:
            click.echo(f"  SLI           n/a: {found.reason}")
        else:
            click.echo(f"  SLI           {_pct(found.sli)} ({found.good:,.0f} good of {found.total:,.0f})")
            click.echo(
                f"  error budget  total {found.budget_total:,.1f} bad events, used {found.budget_used:,.1f}, "
                f"remaining {_pct(found.budget_remaining, 1)}"
            )
        click.echo("  burn rates    threshold  long window        short window       alert")
        for a in found.alerts:
            d = a.to_dict()
            click.echo(
                f"    {a.severity:<8}  {a.threshold:>5g}x     {d['long_window']:>3} {_rate(a.long_burn_rate):>10}"
                f"     {d['short_window']:>3} {_rate(a.short_burn_rate):>10}     "
                f"{'FIRING' if a.firing else 'ok'}"
            )
        if found.stale or found.gaps:  # fail closed: figures from data that stopped are not "OK"
            click.echo(f"status: {found.stale or found.gaps} (no data: exit 3)")
        else:
            problems = [f"{len(found.firing)} burn-rate alert(s) firing"] if found.firing else []
            problems += ["error budget exhausted"] if found.exhausted else []
            click.echo("status: " + ("; ".join(problems).upper() if problems else "OK"))
    raise SystemExit(exit_code(found))


def exit_code(found: api.SloStatus) -> int:
    """3 when the SLI data is stale or has gaps (no data), else 1 when an alert fires or the budget is
    spent, else 0."""
    if found.stale or found.gaps:
        return EXIT_NODATA
    return EXIT_ALERT if found.firing or found.exhausted else EXIT_OK


@slo.command("rules")
@click.option("--slo", "slo_paths", multiple=True, metavar="FILE", help="SLO file (YAML); repeat for more.")
@click.option("--all", "every", is_flag=True, help="Every SLO file of the configured folder (`slos`, GATEWATCH_SLOS).")
@click.option(
    "--format",
    "rule_format",
    type=click.Choice(["prometheus", "cloudwatch", "cloudformation"]),
    default="prometheus",
    show_default=True,
    help="Prometheus rule files, CloudWatch PutMetricAlarm/PutCompositeAlarm request bodies (JSON), or a "
    "CloudFormation template of the same alarms.",
)
@click.option("--out", "out_dir", metavar="DIR", help="Write one file per SLO into DIR (default: all on stdout).")
@click.option(
    "--alarm-action",
    "actions",
    multiple=True,
    metavar="ARN",
    help="CloudWatch: what the composite alarms notify (e.g. an SNS topic ARN); repeat for more.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print {slos: [{service, name, file, groups or alarms}], skipped} as JSON."
)
@pass_state
def rules(
    state: State,
    slo_paths: tuple[str, ...],
    every: bool,
    rule_format: str,
    out_dir: str | None,
    actions: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write Prometheus recording and alerting rules for SLOs: the SLI's error ratio recorded over 5m,
    30m, 1h, 2h, 6h, 1d and 3d (`slo:sli_error:ratio_rate<window>{service, slo, window}`), and the
    SRE workbook's multiwindow burn-rate alerts `ErrorBudgetBurn` (severity page: 14.4x over 1h and
    5m or 6x over 6h and 30m; ticket: 3x over 1d and 2h or 1x over 3d and 6h; a threshold is the burn
    rate x (1 - objective)), labelled service, slo, team and severity, with runbook_url (the SLO's
    `runbook_url`, else the config's `runbooks`), summary and description.

    With --format cloudwatch (SLOs whose SLI is read from CloudWatch): per window of each pair a
    metric-math alarm on the error ratio over that window (one period as long as the window; no data
    breaches), and per pair a composite alarm `ALARM(long) AND ALARM(short)` that notifies the
    --alarm-action ARNs, tagged slo, service, team and severity. --format cloudformation: the same
    alarms as a CloudFormation template.

    An SLO whose SLI is read elsewhere (a CSV file; CloudWatch for Prometheus rules; Prometheus for
    CloudWatch alarms) has nothing to alert on in that format: it is skipped with a note on stderr.
    Exit status: 0 rules for every SLO; 1 an SLO was skipped (the others' rules are still written);
    2 usage or configuration error (an SLO file that does not validate, no SLO given).
    """
    if every == bool(slo_paths):
        raise click.UsageError("give --slo FILE (one or more) or --all")
    if actions and rule_format == "prometheus":
        raise click.UsageError("--alarm-action: only for --format cloudwatch or cloudformation")
    if every:
        folder = state.config.slos
        if not folder:
            raise ConfigError("--all: no SLO folder configured; set slos: in gatewatch.yaml or GATEWATCH_SLOS")
        specs = api.load_slos(folder)
    else:
        specs = [api.load_slo(path) for path in slo_paths]
    if rule_format == "prometheus":
        found = api.alert_rules(state.config, specs)
        files = {item["file"]: api.rules_yaml(item["groups"]) for item in found.slos}
    else:
        found = api.cloudwatch_alarms(state.config, specs, actions)
        if rule_format == "cloudformation":
            for item in found.slos:
                item["file"] = item["file"].removesuffix(".alarms.json") + ".template.json"
        files = {
            item["file"]: api.alarms_json(
                api.alarms_template([item]) if rule_format == "cloudformation" else item["alarms"]
            )
            for item in found.slos
        }
    if out_dir:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (Path(out_dir) / name).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--out {out_dir!r}: cannot be written ({exc.strerror or exc})") from None
    for item in found.skipped:
        click.echo(f"note: SLO {item['service']}/{item['name']} skipped: {item['reason']}", err=True)
    if as_json:
        shown = [item | {"file": str(Path(out_dir) / item["file"]) if out_dir else None} for item in found.slos]
        echo_json({"slos": shown, "skipped": found.skipped})
    elif out_dir:
        for item in found.slos:
            if "groups" in item:
                count = f"{sum(len(g['rules']) for g in item['groups'])} rules"
            else:
                count = f"{sum(len(bodies) for bodies in item['alarms'].values())} alarms"
            click.echo(f"wrote {Path(out_dir) / item['file']}: {count} for {item['service']}/{item['name']}")
    elif found.slos and rule_format == "prometheus":
        click.echo(api.rules_yaml(found.groups), nl=False)
    elif found.slos and rule_format == "cloudformation":
        click.echo(api.alarms_json(api.alarms_template(found.slos)), nl=False)
    elif found.slos:
        bodies = [{"service": s["service"], "name": s["name"], **s["alarms"]} for s in found.slos]
        click.echo(api.alarms_json(bodies), nl=False)
    raise SystemExit(EXIT_ALERT if found.skipped else EXIT_OK)
