"""SLOs: SLO files, an SLO's status (SLI, error budget, burn-rate alerts) and burn-down, read with the
configured Prometheus credentials, and the overview of a folder of SLOs that the dashboard shows."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis import slo_alarms
from analysis.slo import BURN_HISTORY_COLUMNS, BURN_HISTORY_WINDOWS, PROMETHEUS_KINDS, SloSpec, SloStatus
from collector.config import Config
from collector.telemetry import sli
from gatewatch.errors import ConfigError, GatewatchError

__all__ = [
    "AlertRules",
    "alarms_json",
    "alarms_template",
    "alert_rules",
    "budget_history",
    "burn_rate_history",
    "cloudwatch_alarms",
    "load_slo",
    "load_slos",
    "rules_yaml",
    "slo_overview",
    "slo_status",
]


def load_slo(path: str | Path) -> SloSpec:
    """An SLO file; paths inside it are relative to it. SloError names the file and the field."""
    return sli.load_slo(path)


def load_slos(folder: str | Path) -> list[SloSpec]:
    """Every SLO file (`*.yaml`, `*.yml`) of a folder, by file name."""
    return sli.load_slos(folder)


def slo_status(config: Config, spec: SloSpec, at: datetime) -> SloStatus:
    """The SLO's SLI, error budget and multiwindow burn-rate alerts at `at`; SourceUnavailable when its
    SLI cannot be read (the server or the data file)."""
    return sli.slo_status(spec, at, config.prometheus)


def budget_history(config: Config, spec: SloSpec, start: datetime, end: datetime, points: int = 48) -> pd.DataFrame:
    """The error budget's burn-down from `start` to `end` (columns at, sli, budget_remaining)."""
    return sli.budget_history(spec, start, end, points, config.prometheus)


def burn_rate_history(
    config: Config,
    spec: SloSpec,
    start: datetime,
    end: datetime,
    points: int = 48,
    windows: tuple[timedelta, ...] = BURN_HISTORY_WINDOWS,
) -> pd.DataFrame:
    """The burn rate over each of `windows` (default 1h and 6h) from `start` to `end` (columns at, window,
    burn_rate, and the threshold and severity of the alert whose long window it is)."""
    return sli.burn_rate_history(spec, start, end, points, config.prometheus, windows)


BURN_POINTS = 720  # a 28-day window charted every 56 minutes: no 1h burn falls between two points


def _budget_left(item: dict[str, Any]) -> float:
    """Sort key: the error budget left, an SLO that cannot be read or has no budget first (it may be spent)."""
    remaining = None if item["error"] else item["status"]["error_budget"]["remaining"]
    return -math.inf if remaining is None else remaining


def slo_overview(
    config: Config,
    folder: str | Path,
    service: str | None,
    at: datetime,
    history_start: datetime | None = None,
    points: int = 48,
    team: str | None = None,
    burn_points: int = BURN_POINTS,
) -> dict[str, Any]:
    """Every SLO of `folder` (of `service`, and of the services `team` owns by the config's `teams`, when
    given) at `at`, least error budget left first: {"slos": [{name, service, team, status (as `to_dict`),
    firing alerts, budget history since `history_start`, burn-rate history (`burn_rate_history` over the
    SLO window up to the status's time, from `history_start` if later), note} or {name, service, team,
    error}], "error": why the folder could not be read}. One SLO that cannot be read does not hide the
    others. An SLO whose data stopped before `at` is shown as of its newest point, with a `note` saying so."""
    try:
        specs = load_slos(folder)
    except GatewatchError as exc:
        return {"slos": [], "error": str(exc)}
    out = []
    for spec in specs:
        owner = config.team_for(spec.service)
        if (service and spec.service != service) or (team and owner != team):
            continue
        item: dict[str, Any] = {"name": spec.name, "service": spec.service, "team": owner, "error": None, "note": None}
        try:
            state = slo_status(config, spec, at)
            if state.stale and state.newest is not None and state.newest < at:
                # Shown as of the SLI's newest point, and said so (a gate holds on such data instead).
                item["note"] = (
                    f"{state.stale.removeprefix('stale: ')}: the figures are as of the SLI's newest point, "
                    f"{state.newest:%Y-%m-%d %H:%M} UTC"
                )
                state = slo_status(config, spec, state.newest)
            history = (
                budget_history(config, spec, history_start, at, points)
                if history_start and history_start < at
                else pd.DataFrame(columns=["at", "sli", "budget_remaining"])
            )
            burn_start = max(history_start, state.at - spec.window) if history_start else None
            burn = (
                burn_rate_history(config, spec, burn_start, state.at, burn_points)
                if burn_start and burn_start < state.at
                else pd.DataFrame(columns=BURN_HISTORY_COLUMNS)
            )
        except GatewatchError as exc:  # an SLI file missing or a server down: say so for this SLO only
            out.append(item | {"error": str(exc)})
            continue
        out.append(
            item
            | {
                "status": state.to_dict(),
                "firing": [a.to_dict() for a in state.firing],
                "history": history,
                "burn_history": burn,
            }
        )
    return {"slos": sorted(out, key=_budget_left), "error": None}


@dataclass(frozen=True)
class AlertRules:
    """Alert rules for a set of SLOs: per SLO with rules its {service, name, file (a file name for it), and
    groups (Prometheus rule groups) or alarms (CloudWatch request bodies)}, and per SLO skipped its
    {service, name, reason} (an SLI not read from where the rules' format reads)."""

    slos: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def groups(self) -> list[dict[str, Any]]:
        """Every SLO's rule groups, for one rule file."""
        return [group for slo in self.slos for group in slo.get("groups", [])]


# The alert-rule formats and the SLI kinds each reads.
RULE_FORMATS = {"prometheus": PROMETHEUS_KINDS, "cloudwatch": ("cloudwatch",)}
_READ_FROM = {"ratio": "a Prometheus query", "threshold": "a Prometheus query", "cloudwatch": "CloudWatch"}
_NEEDS = {"prometheus": "a Prometheus query", "cloudwatch": "CloudWatch"}


def skip_reason(spec: SloSpec, rule_format: str) -> str | None:
    """Why an SLO gets no rules of `rule_format` (prometheus or cloudwatch): its SLI is read elsewhere."""
    if spec.sli.kind in RULE_FORMATS[rule_format]:
        return None
    if spec.sli.data is not None:
        return f"its SLI is read from a CSV file ({spec.sli.data.path}), not {_NEEDS[rule_format]}"
    other = next(f for f, kinds in RULE_FORMATS.items() if spec.sli.kind in kinds)
    return f"its SLI is read from {_READ_FROM[spec.sli.kind]}, not {_NEEDS[rule_format]} (use --format {other})"


def _each(specs: Iterable[SloSpec], rule_format: str, out: AlertRules) -> Iterable[SloSpec]:
    """The SLOs that get rules of `rule_format`; the others are noted in `out.skipped`. ConfigError when
    two SLOs share a service and a name (their series or alarm names would be one)."""
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        if (spec.service, spec.name) in seen:
            raise ConfigError(f"SLO {spec.service}/{spec.name}: defined twice; give each SLO file its own name")
        seen.add((spec.service, spec.name))
        reason = skip_reason(spec, rule_format)
        if reason:
            out.skipped.append({"service": spec.service, "name": spec.name, "reason": reason})
            continue
        yield spec


def _file(spec: SloSpec, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{spec.service}-{spec.name}") + suffix


def alert_rules(config: Config, specs: Iterable[SloSpec]) -> AlertRules:
    """Recording and burn-rate alerting rules of each SLO whose SLI is a Prometheus query, labelled with
    the team that owns its service and linked to its runbook (the SLO's `runbook_url`, else the config's
    `runbooks`); an SLO read from a CSV file or CloudWatch is skipped, with the reason. ConfigError when
    two SLOs share a service and a name (their recorded series would be one)."""
    out = AlertRules()
    for spec in _each(specs, "prometheus", out):
        groups = sli.alert_rules(spec, config.team_for(spec.service), config.runbooks.get(spec.service))
        out.slos.append(
            {"service": spec.service, "name": spec.name, "file": _file(spec, ".rules.yaml"), "groups": groups}
        )
    return out


def cloudwatch_alarms(config: Config, specs: Iterable[SloSpec], actions: Sequence[str] = ()) -> AlertRules:
    """CloudWatch burn-rate alarms (PutMetricAlarm and PutCompositeAlarm request bodies) of each SLO whose
    SLI is read from CloudWatch, tagged with its team and linked to its runbook; the composite alarms
    notify `actions` (ARNs). Other SLOs are skipped, with the reason."""
    out = AlertRules()
    for spec in _each(specs, "cloudwatch", out):
        team, runbook = config.team_for(spec.service), spec.runbook_url or config.runbooks.get(spec.service)
        try:
            alarms = slo_alarms.cloudwatch_alarms(spec, team, runbook, actions)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        out.slos.append(
            {"service": spec.service, "name": spec.name, "file": _file(spec, ".alarms.json"), "alarms": alarms}
        )
    return out


def alarms_json(alarms: Any) -> str:
    """Request bodies or a template as the JSON written to a file or printed."""
    return json.dumps(alarms, indent=2, ensure_ascii=False) + "\n"


def alarms_template(slos: list[dict[str, Any]]) -> dict[str, Any]:
    """A CloudFormation template (AWS::CloudWatch::Alarm and ::CompositeAlarm) of the alarms of SLOs as
    `cloudwatch_alarms` lists them."""
    shown = ", ".join(f"{s['service']}/{s['name']}" for s in slos)
    return slo_alarms.cloudformation_template([s["alarms"] for s in slos], f"Gatewatch SLO burn-rate alarms: {shown}")


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings (PromQL) as literal blocks."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def rules_yaml(groups: list[dict[str, Any]]) -> str:
    """A Prometheus rule file of the groups (`promtool check rules` reads it)."""
    return yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
