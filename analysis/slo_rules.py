"""Prometheus alert rules from an SLO, as Sloth and Pyrra generate them: the SLI's error ratio recorded
over every burn-rate window, and the SRE workbook's multiwindow multi-burn-rate alerts (one alerting rule
per severity; a pair fires when both its windows' error ratios exceed burn rate x (1 - objective)).
Pure: the PromQL of the SLI's sums per window comes in, rule groups (dicts, as a rule file holds them) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from analysis.slo import BURN_RATE_PAIRS, SloSpec
from gatewatch.schema import duration_label

# The recorded series (Sloth's names): one per window, labelled with the SLO's service, name and window.
RECORD = "slo:sli_error:ratio_rate{window}"
ALERT = "ErrorBudgetBurn"


def rule_windows(pairs: tuple[tuple[timedelta, timedelta, float, str], ...] = BURN_RATE_PAIRS) -> list[timedelta]:
    """Every window a burn-rate pair reads (5m, 30m, 1h, 2h, 6h, 1d, 3d), shortest first."""
    return sorted({w for long_w, short_w, _, _ in pairs for w in (long_w, short_w)})


def error_ratio(good: str, total: str) -> str:
    """PromQL of the bad share of events from the sums of good and of all events over one window; no
    good events at all (an absent series) counts as every event bad, not as no data."""
    return f"1 - ((({good}) or vector(0)) / ({total}))"


def record_name(span: timedelta) -> str:
    """The recorded error-ratio series of one window, e.g. slo:sli_error:ratio_rate5m."""
    return RECORD.format(window=duration_label(span))


def budget(objective: float) -> float:
    """The error budget as a share of events, 1 - objective, without float noise (0.001 for 99.9%)."""
    return float(f"{1 - objective:.12g}")


def _pair(objective: float, matchers: str, long_w: timedelta, short_w: timedelta, rate: float) -> str:
    limit = f"({rate:g} * {budget(objective)!r})"
    return (
        f"({record_name(long_w)}{{{matchers}}} > {limit} and ignoring(window) "
        f"{record_name(short_w)}{{{matchers}}} > {limit})"
    )


def _alert(
    spec: SloSpec,
    matchers: str,
    severity: str,
    pairs: list[tuple[timedelta, timedelta, float, str]],
    labels: dict[str, str],
    runbook_url: str | None,
) -> dict[str, Any]:
    expr = "\nor ignoring(window)\n".join(_pair(spec.objective, matchers, lw, sw, r) for lw, sw, r, _ in pairs)
    shown = ", ".join(f"{r:g}x over {duration_label(lw)} and {duration_label(sw)}" for lw, sw, r, _ in pairs)
    annotations = {
        "summary": "SLO {{ $labels.service }}/{{ $labels.slo }} is burning its error budget too fast",
        "description": (
            f"The error ratio over {{{{ $labels.window }}}} is {{{{ $value | humanizePercentage }}}} against an "
            f"objective of {100 * spec.objective:g}% over {duration_label(spec.window)}: a burn rate above "
            f"{shown} ({severity})."
        ),
    }
    if runbook_url:
        annotations["runbook_url"] = runbook_url
    return {"alert": ALERT, "expr": expr, "labels": {"severity": severity, **labels}, "annotations": annotations}


def prometheus_rules(
    spec: SloSpec,
    sums: Mapping[timedelta, tuple[str, str]],
    matchers: str,
    team: str | None = None,
    runbook_url: str | None = None,
) -> list[dict[str, Any]]:
    """The SLO's rule groups: its error ratio recorded over each of `rule_windows()` from `sums` (window
    -> PromQL of the good and total sums over it), and a page and a ticket alert on those series,
    selected by `matchers` (the escaped PromQL matchers of labels service and slo)."""
    labels = {"service": spec.service, "slo": spec.name}
    records = [
        {
            "record": record_name(span),
            "expr": error_ratio(*sums[span]),
            "labels": {**labels, "window": duration_label(span)},
        }
        for span in rule_windows()
    ]
    extra = {**labels, **({"team": team} if team else {})}
    alerts = [
        _alert(spec, matchers, severity, [p for p in BURN_RATE_PAIRS if p[3] == severity], extra, runbook_url)
        for severity in dict.fromkeys(p[3] for p in BURN_RATE_PAIRS)
    ]
    base = f"slo:{spec.service}:{spec.name}"
    return [{"name": f"{base}:sli-recordings", "rules": records}, {"name": f"{base}:alerts", "rules": alerts}]


__all__ = ["ALERT", "budget", "error_ratio", "prometheus_rules", "record_name", "rule_windows"]
