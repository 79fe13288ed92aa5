"""The canary judge: per-metric classification of the canary against the baseline, group scores and
the verdict, each with its reasons in plain words. Pure: samples in, verdict out.

A metric's band is relative to the baseline median: with tolerance 10%, a shift counts only when its
whole confidence interval lies beyond 10% of |baseline median| ("10% worse than baseline").
Spinnaker's Kayenta judge sets its band relative to the estimate itself; ours does not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from gatewatch.errors import ConfigError

from .config import CanaryConfig, MetricSpec, worse_sides
from .shape import shape_tests
from .stats import hodges_lehmann, proportion_difference


@dataclass
class MetricResult:
    """One metric's judgement (the JSON shape of `gatewatch canary ... --json`'s `metrics`)."""

    name: str
    classification: str  # pass | high | low | nodata
    passed: bool | None  # None: nodata ignored (not scored)
    critical: bool
    group: str
    weight: float
    baseline: dict[str, Any]
    canary: dict[str, Any]
    shift: float | None = None
    ci: list[float] | None = None
    relative_shift: float | None = None
    p_value: float | None = None
    reason: str = ""
    test: str = "mann-whitney"
    sequence: dict[str, Any] | None = None  # a sequential look's bounds (analysis.canary.sequential)
    mean_ratio: float | None = None  # canary mean / baseline mean (rates for proportion), Kayenta's effect size
    critical_failure: bool | None = None  # set by critical_effect_size; None: a failed critical metric fails
    shape: dict[str, dict[str, Any]] | None = None  # per shape test that ran (analysis.canary.shape)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("sequence", "critical_failure", "shape"):
            if out[key] is None:
                del out[key]
        return out

    @property
    def fails_verdict(self) -> bool:
        """A critical metric that failed, beyond its critical effect size when it has one."""
        return self.critical and self.passed is False and self.critical_failure is not False


@dataclass
class Verdict:
    """The judge's answer with its score, reasons and per-metric results."""

    verdict: str  # pass | marginal | fail | nodata; sequential looks also: continue
    score: float | None
    reasons: list[str]
    metrics: list[MetricResult]
    groups: dict[str, float | None]
    sequence: dict[str, Any] | None = None  # a sequential look: its number, elapsed time, durations

    def to_dict(self) -> dict[str, Any]:
        out = {
            "verdict": self.verdict,
            "score": self.score,
            "reasons": self.reasons,
            "groups": self.groups,
            "metrics": [m.to_dict() for m in self.metrics],
        }
        if self.sequence is not None:
            out["sequence"] = self.sequence
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Verdict:
        """A verdict from its `to_dict` form (a stored run's or look's result)."""
        fields = MetricResult.__dataclass_fields__
        return cls(
            raw["verdict"],
            raw.get("score"),
            list(raw.get("reasons") or []),
            [MetricResult(**{k: v for k, v in m.items() if k in fields}) for m in raw.get("metrics") or []],
            dict(raw.get("groups") or {}),
            raw.get("sequence"),
        )


def iqr_filter(values: np.ndarray, factor: float | None = None) -> np.ndarray:
    """The values within [Q1 - factor x IQR, Q3 + factor x IQR] (Tukey's fences; factor default 1.5,
    Kayenta's judge uses 3); fewer than 4 values are kept as they are."""
    factor = 1.5 if factor is None else factor
    if not factor > 0:
        raise ValueError(f"iqr_filter: factor must be above 0, got {factor}")
    if values.size < 4:
        return values
    q1, q3 = np.percentile(values, [25, 75])
    spread = q3 - q1
    return values[(values >= q1 - factor * spread) & (values <= q3 + factor * spread)]


def mean_ratio(baseline_mean: float, canary_mean: float) -> float | None:
    """Kayenta's effect size, canary mean / baseline mean: 1 when both are 0, +inf when only the
    baseline's is (Kayenta takes 1 there, which would excuse any rise from zero), None when a mean is
    negative or not finite (no ratio: an effect size does not apply)."""
    if not (math.isfinite(baseline_mean) and math.isfinite(canary_mean)) or baseline_mean < 0 or canary_mean < 0:
        return None
    if baseline_mean == 0:
        return 1.0 if canary_mean == 0 else math.inf
    return canary_mean / baseline_mean


def _ratio_text(ratio: float | None) -> str:
    return "n/a" if ratio is None else ("inf" if math.isinf(ratio) else f"{ratio:.2f}")


def apply_effect_size(
    spec: MetricSpec, classification: str, passed: bool, ratio: float | None
) -> tuple[str, bool, bool | None, str]:
    """Kayenta's effect sizes over a classification: a significant `high` whose mean ratio is under
    `allowed_increase` (a `low` above `allowed_decrease`; a side left out is 1) is a pass; a failing
    critical metric fails the verdict only at or beyond its critical effect size. Returns the
    classification, passed, the critical failure (None: no critical_effect_size) and a clause for the
    reason ("" when none decided)."""
    note = ""
    effect = spec.effect_size
    if effect is not None and classification in ("high", "low"):
        side, given = (
            ("increase", effect.allowed_increase) if classification == "high" else ("decrease", effect.allowed_decrease)
        )
        limit = 1.0 if given is None else given  # a side left out: Kayenta's default 1
        if ratio is None:
            note = f"; mean ratio n/a, allowed {side} {limit:.2f} not applied"
        elif (ratio < limit) if classification == "high" else (ratio > limit):
            return (
                "pass",
                True,
                None,
                f"; significant but mean ratio {_ratio_text(ratio)} within allowed {side} {limit:.2f}",
            )
        elif given is not None:
            note = f"; mean ratio {_ratio_text(ratio)} beyond allowed {side} {limit:.2f}"
    critical_failure = None
    crit = spec.critical_effect_size
    if crit is not None and spec.critical and not passed and classification in ("high", "low"):
        side, bound = (
            ("increase", crit.critical_increase) if classification == "high" else ("decrease", crit.critical_decrease)
        )
        if bound is None or ratio is None:
            critical_failure = True
        else:
            critical_failure = ratio >= bound if classification == "high" else ratio <= bound
            word = "at or beyond" if critical_failure else "within"
            note += f"; mean ratio {_ratio_text(ratio)} {word} critical {side} {bound:.2f}" + (
                "" if critical_failure else " (not a critical failure)"
            )
    return classification, passed, critical_failure, note


def _pct(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * 100:+.1f}%"


def tolerance_band(spec: MetricSpec, reference: float) -> float:
    """How far a shift may go either way before it counts: tolerance x |baseline median| (or rate)."""
    return spec.tolerance * abs(reference)


def _classify(spec: MetricSpec, lower: float, upper: float, reference: float) -> tuple[str, bool]:
    if not all(math.isfinite(v) for v in (lower, upper, reference)):
        raise ValueError(f"non-finite bounds [{lower}, {upper}] or reference {reference}")  # callers give nodata
    band = tolerance_band(spec, reference)
    if lower > band:
        classification = "high"
    elif upper < -band:
        classification = "low"
    else:
        return "pass", True
    up_is_worse, down_is_worse = worse_sides(spec.direction)
    worse = (classification == "high" and up_is_worse) or (classification == "low" and down_is_worse)
    return classification, not worse


def _nodata(spec: MetricSpec, why: str, baseline_n: int = 0, canary_n: int = 0) -> MetricResult:
    passed = None if spec.on_nodata == "ignore" else False
    effect = "ignored" if passed is None else "counts as a failure"
    return MetricResult(
        spec.name,
        "nodata",
        passed,
        spec.critical,
        spec.group,
        spec.weight,
        {"n": baseline_n, "median": None},
        {"n": canary_n, "median": None},
        reason=f"{spec.name}: no data ({why}); {effect}",
        test=spec.test,
    )


def judge_metric(spec: MetricSpec, baseline: np.ndarray, canary: np.ndarray, confidence: float) -> MetricResult:
    """Classify one metric from its two samples (values, or good/total pairs for `proportion`)."""
    if spec.test == "proportion":
        return _judge_proportion(spec, baseline, canary, confidence)
    x = np.asarray(baseline, dtype=np.float64)
    y = np.asarray(canary, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if spec.outliers == "iqr":
        x, y = iqr_filter(x, spec.outlier_factor), iqr_filter(y, spec.outlier_factor)
    if x.size < spec.min_samples or y.size < spec.min_samples:
        return _nodata(
            spec, f"{x.size} baseline and {y.size} canary samples, {spec.min_samples} needed", int(x.size), int(y.size)
        )
    shift = hodges_lehmann(x, y, confidence)
    if shift.max_confidence < confidence:
        return _nodata(
            spec,
            f"{x.size} baseline and {y.size} canary samples cannot give a {confidence:.0%} interval "
            f"(the widest covers {shift.max_confidence:.1%})",
            int(x.size),
            int(y.size),
        )
    b_med, c_med = shift.baseline_median, shift.canary_median
    if not all(math.isfinite(v) for v in (shift.lower, shift.upper, b_med)):
        return _nodata(spec, "the interval is not finite (samples too large to subtract)", int(x.size), int(y.size))
    classification, passed = _classify(spec, shift.lower, shift.upper, b_med)
    ratio = mean_ratio(float(np.mean(x)), float(np.mean(y)))
    classification, passed, critical_failure, effect = apply_effect_size(spec, classification, passed, ratio)
    rel = (lambda v: v / abs(b_med)) if b_med else (lambda v: math.copysign(math.inf, v) if v else 0.0)
    verdict_word = "ok" if classification == "pass" else ("worse" if not passed else "better")
    reason = (
        f"{spec.name} {_pct(rel(shift.estimate))} [{_pct(rel(shift.lower))}, {_pct(rel(shift.upper))}], "
        f"tolerance {spec.tolerance * 100:g}%{effect}: {verdict_word}"
    )
    # Shape tests (fixed-horizon, after the shift): one that fires fails the metric; the classification
    # stays the shift's (pass, high, low) and the reason names the test.
    shapes = shape_tests(spec, x, y, confidence, shift.estimate)
    fired = [s for s in shapes if s.fired]
    if fired:
        passed = False
        reason = "; ".join([reason] + [f"{spec.name}: {s.reason}" for s in fired])
    return MetricResult(
        spec.name,
        classification,
        passed,
        spec.critical,
        spec.group,
        spec.weight,
        {"n": int(x.size), "median": b_med},
        {"n": int(y.size), "median": c_med},
        shift=shift.estimate,
        ci=[shift.lower, shift.upper],
        relative_shift=rel(shift.estimate) if b_med else None,
        p_value=shift.p_value,
        reason=reason,
        test=spec.test,
        mean_ratio=_finite(ratio),
        critical_failure=critical_failure,
        shape={s.test: s.to_dict() for s in shapes} or None,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def valid_counts(pairs: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The (good, total) rows that are counts: finite, not negative, good at most total. The others are
    dropped, and the second value says which and why (None when none was)."""
    rows = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    good, total = rows[:, 0], rows[:, 1]
    checks = (
        (~np.isfinite(good) | ~np.isfinite(total), "a missing or non-finite good or total"),
        (np.isfinite(good) & np.isfinite(total) & ((good < 0) | (total < 0)), "a negative count"),
        (np.isfinite(good) & np.isfinite(total) & (good > total), "good above total"),
    )
    bad = np.zeros(len(rows), dtype=bool)
    why = []
    for mask, reason in checks:
        mask = mask & ~bad
        if mask.any():
            first = int(np.flatnonzero(mask)[0])
            why.append(
                f"{int(mask.sum())} with {reason} (first: row {first + 1}, good {good[first]:g}, "
                f"total {total[first]:g})"
            )
            bad |= mask
    return rows[~bad], ("dropped " + "; ".join(why)) if why else None


def _judge_proportion(spec: MetricSpec, baseline: np.ndarray, canary: np.ndarray, confidence: float) -> MetricResult:
    b, b_dropped = valid_counts(baseline)
    c, c_dropped = valid_counts(canary)
    dropped = "; ".join(f"{side} {why}" for side, why in (("baseline", b_dropped), ("canary", c_dropped)) if why)
    bg, bt = float(b[:, 0].sum()), float(b[:, 1].sum())
    cg, ct = float(c[:, 0].sum()), float(c[:, 1].sum())
    if bt < spec.min_samples or ct < spec.min_samples:
        why = f"{bt:g} baseline and {ct:g} canary events, {spec.min_samples} needed" + (
            f"; {dropped}" if dropped else ""
        )
        return _nodata(spec, why, int(bt), int(ct))
    diff = proportion_difference(bg, bt, cg, ct, confidence)
    if not all(math.isfinite(v) for v in (diff.lower, diff.upper, diff.baseline_rate)):
        return _nodata(spec, "the rates' interval is not finite", int(bt), int(ct))
    classification, passed = _classify(spec, diff.lower, diff.upper, diff.baseline_rate)
    ratio = mean_ratio(diff.baseline_rate, diff.canary_rate)
    classification, passed, critical_failure, effect = apply_effect_size(spec, classification, passed, ratio)
    verdict_word = "ok" if classification == "pass" else ("worse" if not passed else "better")
    rel = diff.estimate / diff.baseline_rate if diff.baseline_rate else None
    reason = (
        f"{spec.name} {diff.baseline_rate:.4%} -> {diff.canary_rate:.4%} "
        f"(difference {diff.estimate * 100:+.3f} pp [{diff.lower * 100:+.3f}, {diff.upper * 100:+.3f}]), "
        f"tolerance {spec.tolerance * 100:g}% of baseline{effect}: {verdict_word}"
    ) + (f" ({dropped})" if dropped else "")
    return MetricResult(
        spec.name,
        classification,
        passed,
        spec.critical,
        spec.group,
        spec.weight,
        {"n": int(bt), "median": diff.baseline_rate},
        {"n": int(ct), "median": diff.canary_rate},
        shift=diff.estimate,
        ci=[diff.lower, diff.upper],
        relative_shift=rel,
        p_value=diff.p_value,
        reason=reason,
        test=spec.test,
        mean_ratio=_finite(ratio),
        critical_failure=critical_failure,
    )


def score(config: CanaryConfig, results: Sequence[MetricResult]) -> tuple[float | None, dict[str, float | None]]:
    """Per group, the weighted share of scored metrics that passed; overall, the weighted mean of groups."""
    groups: dict[str, float | None] = {}
    for group in dict.fromkeys(r.group for r in results):
        scored = [r for r in results if r.group == group and r.passed is not None]
        weight = sum(r.weight for r in scored)
        groups[group] = (
            None if not scored or weight == 0 else 100.0 * sum(r.weight for r in scored if r.passed) / weight
        )
    judged = {g: s for g, s in groups.items() if s is not None}
    if not judged:
        return None, groups
    weights = {g: config.group_weights.get(g, 1.0) for g in judged}
    total = sum(weights.values())
    if total == 0:
        return None, groups
    return round(sum(judged[g] * weights[g] for g in judged) / total, 4), groups


def judge(
    config: CanaryConfig, samples: Mapping[str, tuple[np.ndarray, np.ndarray]], errors: Mapping[str, str] | None = None
) -> Verdict:
    """The verdict for `samples` {metric: (baseline, canary)}; `errors` {metric: why it has no data}."""
    errors = errors or {}

    def one(spec: MetricSpec) -> MetricResult:
        if spec.name in errors:
            return _nodata(spec, errors[spec.name])
        if spec.name not in samples:
            return _nodata(spec, "no samples for this metric")
        baseline, canary = samples[spec.name]
        return judge_metric(spec, baseline, canary, config.confidence)

    # numpy's sorts and searches release the GIL: metrics are judged side by side on every core.
    large = sum(np.size(s[0]) + np.size(s[1]) for s in samples.values()) > 200_000
    if large and len(config.metrics) > 1:
        with ThreadPoolExecutor(max_workers=min(len(config.metrics), os.cpu_count() or 1)) as pool:
            results = list(pool.map(one, config.metrics))
    else:
        results = [one(spec) for spec in config.metrics]
    overall, groups = score(config, results)
    return verdict_of(config, results, overall, groups)


def verdict_of(
    config: CanaryConfig, results: list[MetricResult], overall: float | None, groups: dict[str, float | None]
) -> Verdict:
    """The verdict from the metrics' results. It fails closed: a failed critical metric fails; a critical
    metric without data makes it nodata, as do half or more of the metrics without data (each with
    on_nodata: ignore; with on_nodata: fail a metric counts as failed); only then does the score decide."""
    failing_critical = [r for r in results if r.fails_verdict]
    blind_critical = [r for r in results if r.critical and r.classification == "nodata" and r.passed is None]
    missing = [r for r in results if r.classification == "nodata" and r.passed is None]  # on_nodata: ignore
    reasons = [r.reason for r in results if r.passed is False] + [r.reason for r in results if r.passed is None]
    if failing_critical:
        verdict = "fail"
        reasons.insert(0, "critical metric failed: " + ", ".join(r.name for r in failing_critical))
    elif blind_critical:
        verdict, overall = "nodata", None
        reasons.insert(0, "critical metric without data: " + ", ".join(r.name for r in blind_critical))
    elif results and 2 * len(missing) >= len(results):
        verdict, overall = "nodata", None
        reasons.insert(0, f"{len(missing)} of {len(results)} metrics without data: too little evidence to judge")
    elif overall is None:
        verdict = "nodata"
        reasons.insert(0, "no metric could be judged")
    elif overall >= config.pass_threshold:
        verdict = "pass"
    elif overall >= config.marginal_threshold:
        verdict = "marginal"
    else:
        verdict = "fail"
    if overall is not None:
        reasons.append(
            f"score {overall:.1f} (pass at {config.pass_threshold:g}, marginal at "
            f"{config.marginal_threshold:g}): {verdict}"
        )
    return Verdict(verdict, overall, reasons, results, groups)


def samples_from_frame(frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Samples from a frame with columns metric, group (baseline|canary), value, or good and total
    (for proportion metrics); ConfigError names a missing column or a bad group."""
    missing = {"metric", "group"} - set(frame.columns)
    if missing:
        raise ConfigError(f"samples: missing column(s) {sorted(missing)}; expected metric, group, value")
    groups = set(frame["group"].dropna().unique()) - {"baseline", "canary"}
    if groups:
        raise ConfigError(f"samples column 'group': expected baseline or canary, got {sorted(map(str, groups))}")
    out = {}
    pairs = {"good", "total"} <= set(frame.columns)
    if "value" not in frame.columns and not pairs:
        raise ConfigError("samples: expected a 'value' column (or 'good' and 'total' for proportions)")
    frame = frame.copy()
    for column in ("value", "good", "total"):
        if column in frame.columns:
            frame[column] = _numbers(frame, column)
    for metric, rows in frame.groupby("metric", sort=False):
        sides = []
        for side in ("baseline", "canary"):
            part = rows[rows["group"] == side]
            if pairs and part["total"].notna().any():
                sides.append(part[["good", "total"]].to_numpy(dtype=np.float64))  # bad rows: the judge drops them
            else:
                sides.append(part["value"].to_numpy(dtype=np.float64))
        out[str(metric)] = (sides[0], sides[1])
    return out


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as numbers (empty cells NaN); ConfigError names the first cell that is not a number, by
    its line in a CSV file with a header row."""
    numbers = pd.to_numeric(frame[column], errors="coerce")
    bad = numbers.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        row = frame.iloc[position]
        raise ConfigError(
            f"samples line {position + 2} (metric {row['metric']!r}, {row['group']}): {column} "
            f"{row[column]!r} is not a number"
        )
    return numbers
