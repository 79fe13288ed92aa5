"""CloudWatch alarms from an SLO whose SLI is read from CloudWatch: the SRE workbook's multiwindow
multi-burn-rate alerts as metric-math alarms (the error ratio over one window, one period long, above
burn rate x (1 - objective)) and a composite alarm per pair that is in ALARM when both its windows are.
Pure: the SLO in, PutMetricAlarm / PutCompositeAlarm request bodies (or a CloudFormation template) out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from analysis.slo import BURN_RATE_PAIRS, SloSpec
from analysis.slo_rules import budget
from gatewatch.schema import duration_label

# What an alarm's own data cannot tell apart from "nothing is failing" counts as failing: no events, or a
# metric that stopped being published, leaves the ratio without a datapoint, and that breaches.
TREAT_MISSING_DATA = "breaching"
COMPARISON = "GreaterThanThreshold"
# PutMetricAlarm: a period of 10, 20 or 30 s or a multiple of 60 s; Period x EvaluationPeriods at most
# 7 days, and at most 1 day when the period is under an hour.
ALARM_PERIODS_HIGH_RESOLUTION = (10, 20, 30)
MAX_EVALUATION, MAX_EVALUATION_SHORT = 604_800, 86_400
DESCRIPTION_MAX = 1024


def period_problem(period: int, evaluation_periods: int = 1) -> str | None:
    """Why PutMetricAlarm would refuse this period and evaluation count (None when it accepts them)."""
    if period not in ALARM_PERIODS_HIGH_RESOLUTION and not (period > 0 and period % 60 == 0):
        return f"a period of {period} s: CloudWatch alarm periods are 10, 20 or 30 s or a multiple of 60 s"
    span = period * evaluation_periods
    limit = MAX_EVALUATION if period >= 3600 else MAX_EVALUATION_SHORT
    if span > limit:
        return (
            f"{evaluation_periods} period(s) of {period} s: an alarm evaluates at most "
            f"{duration_label(timedelta(seconds=limit))} of data (a period under 1h: at most 1d)"
        )
    return None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def threshold(objective: float, rate: float) -> float:
    """The error ratio a burn rate allows: rate x (1 - objective), without float noise (0.0144)."""
    return float(f"{rate * budget(objective):.12g}")


def expression(kind: str) -> str:
    """The error ratio of one period: errors over total, or 1 - good over total. A period without an
    `errors` datapoint had no errors; one without a `good` datapoint had no good events (all bad)."""
    return "FILL(errors, 0) / total" if kind == "errors" else "1 - FILL(good, 0) / total"


def _tags(spec: SloSpec, severity: str, team: str | None) -> list[dict[str, str]]:
    tags = {"slo": spec.name, "service": spec.service, **({"team": team} if team else {}), "severity": severity}
    return [{"Key": k, "Value": v[:256]} for k, v in tags.items()]


def _description(summary: str, detail: str, runbook_url: str | None) -> str:
    text = f"{summary}. {detail}" + (f" Runbook: {runbook_url}" if runbook_url else "")
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def cloudwatch_alarms(
    spec: SloSpec,
    team: str | None = None,
    runbook_url: str | None = None,
    actions: Sequence[str] = (),
    prefix: str = "slo",
) -> dict[str, list[dict[str, Any]]]:
    """The SLO's alarms as request bodies: {"PutMetricAlarm": [one per window of each pair, its threshold
    the pair's], "PutCompositeAlarm": [one per pair, `ALARM(long) AND ALARM(short)`, with `actions`]}.
    ValueError when the SLI is not read from CloudWatch or a window is not an alarm period."""
    sli = spec.sli.cloudwatch
    if sli is None:
        raise ValueError(f"SLO {spec.service}/{spec.name}: a {spec.sli.kind} SLI is not read from CloudWatch")
    kind, counted = sli.counted
    base = f"{prefix}-{_safe(spec.service)}-{_safe(spec.name)}"
    summary = f"SLO {spec.service}/{spec.name} is burning its error budget too fast"
    objective = f"an objective of {100 * spec.objective:g}% over {duration_label(spec.window)}"
    metric_alarms: list[dict[str, Any]] = []
    composites: list[dict[str, Any]] = []
    for long_w, short_w, rate, severity in BURN_RATE_PAIRS:
        limit = threshold(spec.objective, rate)
        names = []
        for span in (long_w, short_w):
            period = int(span.total_seconds())
            problem = period_problem(period)
            if problem:
                raise ValueError(f"SLO {spec.service}/{spec.name}: window {duration_label(span)} as {problem}")
            name = f"{base}-burn-{rate:g}x-{duration_label(span)}"
            names.append(name)
            metric_alarms.append(
                {
                    "AlarmName": name,
                    "AlarmDescription": _description(
                        summary,
                        f"Error ratio over {duration_label(span)} above {limit:g} ({rate:g}x the error budget of "
                        f"{objective}); one half of the {severity} pair {duration_label(long_w)}/"
                        f"{duration_label(short_w)}. No data counts as breaching.",
                        runbook_url,
                    ),
                    "ActionsEnabled": False,  # the composite alarm of the pair notifies
                    "Metrics": [
                        counted.query(kind, period, return_data=False),
                        sli.total.query("total", period, return_data=False),
                        {
                            "Id": "ratio",
                            "Expression": expression(kind),
                            "Label": f"error ratio over {duration_label(span)}",
                            "ReturnData": True,
                        },
                    ],
                    "EvaluationPeriods": 1,
                    "DatapointsToAlarm": 1,
                    "Threshold": limit,
                    "ComparisonOperator": COMPARISON,
                    "TreatMissingData": TREAT_MISSING_DATA,
                    "Tags": _tags(spec, severity, team),
                }
            )
        composite = {
            "AlarmName": f"{base}-{severity}-{duration_label(long_w)}-{duration_label(short_w)}",
            "AlarmDescription": _description(
                summary,
                f"The error ratio is above {limit:g} over both {duration_label(long_w)} and "
                f"{duration_label(short_w)}: a burn rate above {rate:g}x against {objective} ({severity}).",
                runbook_url,
            ),
            "AlarmRule": " AND ".join(f'ALARM("{name}")' for name in names),
            "ActionsEnabled": bool(actions),
            "Tags": _tags(spec, severity, team),
        }
        if actions:
            composite["AlarmActions"] = list(actions)
        composites.append(composite)
    return {"PutMetricAlarm": metric_alarms, "PutCompositeAlarm": composites}


def _logical_id(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def cloudformation_template(alarms: Iterable[dict[str, list[dict[str, Any]]]], description: str) -> dict[str, Any]:
    """A CloudFormation template of request bodies from `cloudwatch_alarms`: AWS::CloudWatch::Alarm and
    AWS::CloudWatch::CompositeAlarm resources (a composite alarm depends on its metric alarms)."""
    resources: dict[str, Any] = {}
    for requests in alarms:
        ids = {}
        for body in requests["PutMetricAlarm"]:
            ids[body["AlarmName"]] = _logical_id(body["AlarmName"])
            resources[ids[body["AlarmName"]]] = {"Type": "AWS::CloudWatch::Alarm", "Properties": dict(body)}
        for body in requests["PutCompositeAlarm"]:
            needs = [ids[n] for n in re.findall(r'ALARM\("([^"]+)"\)', body["AlarmRule"]) if n in ids]
            resources[_logical_id(body["AlarmName"])] = {
                "Type": "AWS::CloudWatch::CompositeAlarm",
                "DependsOn": needs,
                "Properties": dict(body),
            }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Description": description, "Resources": resources}


__all__ = [
    "COMPARISON",
    "TREAT_MISSING_DATA",
    "cloudformation_template",
    "cloudwatch_alarms",
    "expression",
    "period_problem",
    "threshold",
]
