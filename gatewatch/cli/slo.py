"""`gatewatch slo status`: an SLO's SLI, error budget and multiwindow burn-rate alerts."""
from __future__ import annotations

import click

from collector.errors import ConfigError
from collector.timeutil import parse_duration, parse_timestamp, utcnow

from .common import echo_json

EXIT_OK, EXIT_ALERT = 0, 1


def _at(text: str | None):
    if not text:
        return utcnow()
    try:
        if text[-1:] in "smhdw" and text[:-1].replace(".", "").isdigit():
            return utcnow() - parse_duration(text)
        return parse_timestamp(text)
    except ValueError as exc:
        raise ConfigError(f"--at {text!r}: expected {exc}, or a duration ago such as 1h") from None


def _pct(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


@click.group()
def slo() -> None:
    """Service level objectives: SLI, error budget and burn-rate alerts from an SLO file."""


@slo.command("status")
@click.option("--slo", "slo_path", required=True, metavar="FILE",
              help="SLO file (YAML): service, objective, window, sli (data, ratio or threshold).")
@click.option("--at", metavar="TIME", help="Evaluate at this time (ISO 8601, or a duration ago such as 1h; "
              "default now).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(slo_path: str, at: str | None, as_json: bool) -> None:
    """Print the SLI over the SLO window, the error budget (total, used, remaining) and the burn rates
    of the SRE workbook's multiwindow pairs (14.4x 1h/5m and 6x 6h/30m page, 3x 1d/2h and 1x 3d/6h
    ticket; a pair fires only when both its windows exceed the threshold).

    Exit status: 0 ok; 1 a burn-rate alert fires or the error budget is exhausted; 2 usage or
    configuration error; 5 the telemetry (Prometheus, the SLI data file) could not be read.
    """
    from collector.telemetry.sli import load_slo, slo_status

    spec = load_slo(slo_path)
    state = slo_status(spec, _at(at))
    if as_json:
        echo_json({"service": spec.service, "name": spec.name, **state.to_dict()})
    else:
        window = state.to_dict()["window"]
        click.echo(f"SLO {spec.service}/{spec.name}: objective {100 * spec.objective:g}% over {window} (rolling), "
                   f"{spec.sli.kind} SLI, at {state.at:%Y-%m-%d %H:%M:%S} UTC")
        if state.sli is None:
            click.echo(f"  SLI           n/a: {state.reason}")
        else:
            click.echo(f"  SLI           {_pct(state.sli)} ({state.good:,.0f} good of {state.total:,.0f})")
            click.echo(f"  error budget  total {state.budget_total:,.1f} bad events, used {state.budget_used:,.1f}, "
                       f"remaining {_pct(state.budget_remaining, 1)}")
        click.echo("  burn rates    threshold  long window        short window       alert")
        for a in state.alerts:
            d = a.to_dict()
            click.echo(f"    {a.severity:<8}  {a.threshold:>5g}x     {d['long_window']:>3} {_rate(a.long_burn_rate):>10}"
                       f"     {d['short_window']:>3} {_rate(a.short_burn_rate):>10}     "
                       f"{'FIRING' if a.firing else 'ok'}")
        problems = [f"{len(state.firing)} burn-rate alert(s) firing"] if state.firing else []
        problems += ["error budget exhausted"] if state.exhausted else []
        click.echo("status: " + ("; ".join(problems).upper() if problems else "OK"))
    raise SystemExit(EXIT_ALERT if state.firing or state.exhausted else EXIT_OK)
