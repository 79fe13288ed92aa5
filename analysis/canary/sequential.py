"""Sequential, anytime-valid canary analysis: judge a canary at every look of a rollout (a gate asked
every minute) with error rates that hold over all looks, however many.

Each metric gets a time-uniform confidence sequence, valid at every sample size at once, so stopping
at any look (the first time it says "worse") keeps the false-fail rate under alpha:

- Location metrics: quantile confidence sequences from the beta-binomial mixture martingale of the
  indicators 1{X <= q} (Howard & Ramdas, "Sequential estimation of quantiles with applications to
  A/B-testing and best-arm identification", Bernoulli 28(3), 2022, section 3; Ville's inequality makes
  them time-uniform). For the median shift (the default `quantile` 0.5), one sequence for the median of
  the paired differences, the i-th canary sample less the i-th baseline sample in arrival order: that
  median is the Hodges-Lehmann shift parameter (the median of Y - X), the fixed judge's estimand, and
  one sequence is about half as wide as two whose widths add. For another `quantile`, each side's
  sequence, combined (canary lower - baseline upper, canary upper - baseline lower), as Lindon, Sanden
  and Shirikian do for canaries ("Rapid regression detection in software deployments through
  sequential testing", KDD 2022). The tolerance band uses the baseline median's sequence.
- Proportion metrics: a confidence sequence for each side's rate from the same mixture over the
  requests as Bernoulli trials (an e-process in the sense of Waudby-Smith & Ramdas, "Estimating means
  of bounded random variables by betting", JRSS-B 2024; the beta-binomial mixture is the conjugate
  special case).
- Autocorrelation: samples of `rate(...[1m])` taken more often than the range, or any series with
  memory, are not independent. Each side's sample size is replaced by its effective size
  n (1 - r) / (1 + r), r the lag-1 autocorrelation of the side's signs about its median (the AR(1)
  integrated autocorrelation time), in the mixtures and for the final test (which then uses every
  ceil((1 + r) / (1 - r))-th sample).

Decisions at a look: `fail` as soon as a sequence shows the canary worse than the tolerance band (a
critical metric, or enough metrics that even a pass of every undecided one would miss the pass
threshold); `pass` only after `min_duration`, when the sequences show every metric inside the band
(the decided ones scoring at least the pass threshold); `continue` otherwise. At `max_duration` the
fixed-horizon judge decides on all samples. Alpha is split: half for the sequential fails, half for
that final test, so an A/A canary fails with probability at most alpha over the whole rollout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
from scipy import special

from .config import CanaryConfig, MetricSpec, worse_sides
from .judge import MetricResult, Verdict, iqr_filter, judge, score, valid_counts, verdict_of

__all__ = [
    "CONCENTRATION",
    "SequenceState",
    "autocorrelation",
    "effective_fraction",
    "inflation",
    "log_mixture",
    "quantile_bounds",
    "rate_bounds",
    "sequential_look",
    "thinning_lag",
]

# The mixture's prior: Beta(c p0, c (1 - p0)). A wide prior, whose bounds are tight from tens of
# samples to thousands (checked by simulation: the detection time moved by under a look over 2-30).
CONCENTRATION = 10.0


def log_mixture(successes: float, trials: float, p0: float, side: str, concentration: float = CONCENTRATION) -> float:
    """log of the beta-binomial mixture martingale against "the Bernoulli mean is p0", mixing over
    means above p0 (`side` "above") or below it ("below") with a Beta(c p0, c (1 - p0)) prior cut at p0:
    a nonnegative supermartingale under any mean on the other side, so it exceeds 1/alpha with
    probability at most alpha at any time (Ville's inequality)."""
    a, b = concentration * p0, concentration * (1.0 - p0)
    s, f = successes, trials - successes
    tail = special.betaincc if side == "above" else special.betainc
    with np.errstate(divide="ignore"):
        numerator = special.betaln(s + a, f + b) + np.log(tail(s + a, f + b, p0))
        denominator = special.betaln(a, b) + np.log(tail(a, b, p0))
    return float(numerator - denominator - s * math.log(p0) - f * math.log1p(-p0))


def _first(predicate: Any, lo: int, hi: int) -> int:
    """The smallest k in [lo, hi] with predicate(k) true for a predicate false then true; hi + 1 if none."""
    if not predicate(hi):
        return hi + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def quantile_bounds(values: np.ndarray, p: float, alpha: float, fraction: float = 1.0) -> tuple[float, float]:
    """One-sided time-uniform bounds, each at level alpha, for the p-quantile of the values' distribution:
    (lower, upper), infinite while the samples are too few. `fraction` scales the sample size to its
    effective size (autocorrelated samples)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0:
        return -math.inf, math.inf
    t, threshold = n * fraction, math.log(1.0 / alpha)
    # Lower: the first order statistic k whose "F <= p fails below it" evidence is gone.
    k_low = _first(lambda k: log_mixture(k * fraction, t, p, "below") < threshold, 0, n)
    lower = -math.inf if k_low == 0 else (x[k_low - 1] if k_low <= n else math.inf)
    # Upper: one past the last count of values below x that "F >= p" evidence still allows.
    k_high = _first(lambda k: log_mixture(k * fraction, t, p, "above") >= threshold, 0, n) - 1
    upper = math.inf if k_high + 1 > n else x[k_high]
    return float(lower), float(upper)


def rate_bounds(good: float, total: float, alpha: float) -> tuple[float, float]:
    """One-sided time-uniform bounds, each at level alpha, for a rate from `good` of `total` trials."""
    if total <= 0:
        return 0.0, 1.0
    threshold = math.log(1.0 / alpha)

    def bisect(inside: Any, lo: float, hi: float) -> float:
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if inside(mid) else (mid, hi)
        return 0.5 * (lo + hi)

    estimate = good / total
    eps = 1e-12
    lower = (
        0.0 if estimate <= eps else bisect(lambda q: log_mixture(good, total, q, "above") < threshold, eps, estimate)
    )
    upper = (
        1.0
        if estimate >= 1 - eps
        else 1.0 - bisect(lambda r: log_mixture(good, total, 1.0 - r, "below") < threshold, eps, 1.0 - estimate)
    )
    return lower, upper


def autocorrelation(values: np.ndarray) -> float:
    """The lag-1 autocorrelation of samples in time order, robustly: r from the signs about the median,
    mapped to the Gaussian's by rho = sin(pi r / 2) (for a Gaussian AR(1), the signs correlate as
    (2/pi) arcsin(rho)); 0 below 8 samples or when r is within the noise of independent samples
    (one standard error, 1 / sqrt(n): a wider threshold hid rho 0.8 at the first looks, where the paired
    shift sequence is narrow enough to fail A/A canaries), clipped to 0.98."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 8:
        return 0.0
    signs = np.where(x > np.median(x), 1.0, -1.0)
    centred = signs - signs.mean()
    denominator = float(centred @ centred)
    if denominator == 0:
        return 0.0
    r = float(centred[1:] @ centred[:-1]) / denominator
    if r < 1.0 / math.sqrt(x.size):
        return 0.0
    return min(math.sin(math.pi * r / 2.0), 0.98)


def inflation(rho: float) -> float:
    """The variance inflation of a count of samples below a quantile (the median's indicators) under a
    Gaussian AR(1) with lag-1 correlation rho: 1 + 2 sum_k (2/pi) arcsin(rho^k), the integrated
    autocorrelation time of the indicator series (1 for independent samples)."""
    if rho <= 0:
        return 1.0
    total, power = 0.0, rho
    while power > 1e-6:
        total += (2.0 / math.pi) * math.asin(power)
        power *= rho
    return 1.0 + 2.0 * total


def effective_fraction(values: np.ndarray) -> float:
    """n_eff / n for samples in time order: 1 / inflation(autocorrelation) (1 for independent samples)."""
    return 1.0 / inflation(autocorrelation(values))


def thinning_lag(rho: float, tolerated: float = 1.25) -> int:
    """The smallest lag L at which samples every L apart inflate the variance by at most `tolerated`."""
    lag = 1
    while inflation(rho**lag) > tolerated:
        lag += 1
    return lag


@dataclass
class SequenceState:
    """What a sequence keeps between looks: how many, the running (intersected) bounds of each metric's
    sides, and its decision once made (final)."""

    looks: int = 0
    bounds: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    decision: str | None = None
    decided_at_look: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "looks": self.looks,
            "bounds": self.bounds,
            "decision": self.decision,
            "decided_at_look": self.decided_at_look,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> SequenceState:
        raw = raw or {}
        return cls(
            int(raw.get("looks", 0)), dict(raw.get("bounds") or {}), raw.get("decision"), raw.get("decided_at_look")
        )


def _intersect(previous: list[float] | None, lower: float, upper: float) -> list[float]:
    """The running bounds: this look's intersected with the earlier ones, or this look's alone when they
    do not overlap (the side's distribution changed during the rollout; this look's bounds, from every
    sample so far, are still valid)."""
    if previous is None or max(previous[0], lower) > min(previous[1], upper):
        return [lower, upper]
    return [max(previous[0], lower), min(previous[1], upper)]


def _bands(baseline: list[float], tolerance: float) -> tuple[float, float]:
    """(band to fail beyond, band to pass within): tolerance x |baseline|, the largest and the smallest
    |baseline| the baseline's bounds allow."""
    lo, hi = baseline
    magnitudes = [abs(lo), abs(hi)]
    widest = tolerance * max(magnitudes)
    narrowest = 0.0 if lo <= 0 <= hi else tolerance * min(magnitudes)
    return widest, narrowest


def _classify(spec: MetricSpec, lo: float, hi: float, fail_band: float, pass_band: float) -> str:
    up_is_worse, down_is_worse = worse_sides(spec.direction)
    if up_is_worse and lo > fail_band:
        return "high"
    if down_is_worse and hi < -fail_band:
        return "low"
    inside_up = not up_is_worse or hi <= pass_band
    inside_down = not down_is_worse or lo >= -pass_band
    return "pass" if inside_up and inside_down else "continue"


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value * 100:+.1f}%"


def _metric_look(
    spec: MetricSpec,
    baseline: Any,
    canary: Any,
    alpha: float,
    quantile: float,
    previous: Mapping[str, list[float]] | None,
) -> tuple[MetricResult, dict[str, list[float]] | None]:
    """One metric at a look: its result (classification pass, high, low, continue) and new bounds."""
    directions = sum(worse_sides(spec.direction))
    per_bound = alpha / (2 * directions)  # each fail event uses two bounds; `either` has two such events
    previous = previous or {}
    if spec.test == "proportion":
        b, _ = valid_counts(baseline)
        c, _ = valid_counts(canary)
        (bg, bt), (cg, ct) = (float(b[:, 0].sum()), float(b[:, 1].sum())), (float(c[:, 0].sum()), float(c[:, 1].sum()))
        if bt < spec.min_samples or ct < spec.min_samples:
            return _waiting(
                spec, f"{bt:g} baseline and {ct:g} canary events so far, {spec.min_samples} needed", int(bt), int(ct)
            ), None
        sides = {"baseline": rate_bounds(bg, bt, per_bound), "canary": rate_bounds(cg, ct, per_bound)}
        estimates, sizes, fractions = (bg / bt, cg / ct), (int(bt), int(ct)), (1.0, 1.0)
    else:
        x = np.asarray(baseline, dtype=np.float64)
        y = np.asarray(canary, dtype=np.float64)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        if spec.outliers == "iqr":
            x, y = iqr_filter(x, spec.outlier_factor), iqr_filter(y, spec.outlier_factor)
        if x.size < spec.min_samples or y.size < spec.min_samples:
            return _waiting(
                spec,
                f"{x.size} baseline and {y.size} canary samples so far, {spec.min_samples} needed",
                int(x.size),
                int(y.size),
            ), None
        if quantile == 0.5:
            return _paired_look(spec, x, y, alpha, previous)
        fraction = 1.0 / inflation(max(autocorrelation(x), autocorrelation(y)))
        fractions = (fraction, fraction)
        sides = {
            side: quantile_bounds(v, quantile, per_bound, f)
            for side, v, f in (("baseline", x, fractions[0]), ("canary", y, fractions[1]))
        }
        estimates = (float(np.quantile(x, quantile)), float(np.quantile(y, quantile)))
        sizes = (int(x.size), int(y.size))
    bounds = {side: _intersect(previous.get(side), *sides[side]) for side in ("baseline", "canary")}
    lo, hi = bounds["canary"][0] - bounds["baseline"][1], bounds["canary"][1] - bounds["baseline"][0]
    return _metric_result(spec, lo, hi, bounds, estimates, estimates[1] - estimates[0], sizes, fractions), bounds


def _paired_look(
    spec: MetricSpec, x: np.ndarray, y: np.ndarray, alpha: float, previous: Mapping[str, list[float]]
) -> tuple[MetricResult, dict[str, list[float]]]:
    """The median shift from one confidence sequence: the median of the paired differences (the i-th canary
    sample less the i-th baseline sample, in arrival order, so the pairing never looks at the values) is
    the Hodges-Lehmann shift parameter, the median of Y - X. One sequence for the shift, not one per side
    whose widths add. With a tolerance the band needs the baseline's median too: alpha is then split
    half to the shift's bounds, half to the baseline's two bounds."""
    directions = sum(worse_sides(spec.direction))
    shift_alpha = alpha / directions if spec.tolerance == 0 else alpha / (2 * directions)
    pairs = min(x.size, y.size)
    d = y[:pairs] - x[:pairs]
    fraction = 1.0 / inflation(max(autocorrelation(d), autocorrelation(x)))
    bounds = {
        "baseline": _intersect(previous.get("baseline"), *quantile_bounds(x, 0.5, alpha / 4, fraction)),
        "shift": _intersect(previous.get("shift"), *quantile_bounds(d, 0.5, shift_alpha, fraction)),
    }
    estimates = (float(np.median(x)), float(np.median(y)))
    lo, hi = bounds["shift"]
    result = _metric_result(
        spec,
        lo,
        hi,
        bounds,
        estimates,
        float(np.median(d)),
        (int(x.size), int(y.size)),
        (fraction, fraction),
    )
    result.sequence = {**(result.sequence or {}), "pairs": int(pairs)}
    return result, bounds


def _metric_result(
    spec: MetricSpec,
    lo: float,
    hi: float,
    bounds: dict[str, list[float]],
    estimates: tuple[float, float],
    shift: float,
    sizes: tuple[int, int],
    fractions: tuple[float, float],
) -> MetricResult:
    """A look's result from the shift's anytime-valid bounds [lo, hi] and the band from the baseline's."""
    fail_band, pass_band = _bands(bounds["baseline"], spec.tolerance)
    classification = _classify(spec, lo, hi, fail_band, pass_band)
    passed = {"pass": True, "continue": None}.get(classification, False)
    reference = estimates[0]
    rel = (lambda v: v / abs(reference)) if reference else (lambda v: math.copysign(math.inf, v) if v else 0.0)
    word = {"pass": "inside the band", "continue": "undecided", "high": "worse", "low": "worse"}[classification]
    reason = (
        f"{spec.name} {_pct(rel(shift))} [{_pct(rel(lo))}, {_pct(rel(hi))}] "
        f"(anytime-valid), tolerance {spec.tolerance * 100:g}%: {word}"
    )
    return MetricResult(
        spec.name,
        classification,
        passed,
        spec.critical,
        spec.group,
        spec.weight,
        {"n": sizes[0], "median": estimates[0]},
        {"n": sizes[1], "median": estimates[1]},
        shift=shift,
        ci=[lo, hi],
        relative_shift=rel(shift) if reference else None,
        reason=reason,
        test=spec.test,
        sequence={**bounds, "band": [fail_band, pass_band], "effective_fraction": list(fractions)},
    )


def _waiting(spec: MetricSpec, why: str, baseline_n: int, canary_n: int) -> MetricResult:
    return MetricResult(
        spec.name,
        "continue",
        None,
        spec.critical,
        spec.group,
        spec.weight,
        {"n": baseline_n, "median": None},
        {"n": canary_n, "median": None},
        reason=f"{spec.name}: waiting ({why})",
        test=spec.test,
    )


def _thinned(samples: Mapping[str, tuple[Any, Any]], config: CanaryConfig) -> dict[str, tuple[Any, Any]]:
    """Location samples thinned to about independent ones (every ceil(1/fraction)-th) for the final test."""
    out = {}
    for spec in config.metrics:
        if spec.name not in samples:
            continue
        baseline, canary = samples[spec.name]
        if spec.test != "proportion":
            baseline, canary = (np.asarray(v, dtype=np.float64) for v in (baseline, canary))
            baseline, canary = (v[np.isfinite(v)] for v in (baseline, canary))
            lag = thinning_lag(max(autocorrelation(baseline), autocorrelation(canary)))
            baseline, canary = baseline[::lag], canary[::lag]
        out[spec.name] = (baseline, canary)
    return out


def sequential_look(
    config: CanaryConfig,
    samples: Mapping[str, tuple[Any, Any]],
    elapsed: timedelta,
    state: SequenceState | None = None,
    errors: Mapping[str, str] | None = None,
) -> tuple[Verdict, SequenceState]:
    """The verdict at one look of a sequence, `elapsed` after it started, from every sample since then
    (in time order), and the state for the next look. A decided sequence keeps its decision."""
    state = replace(state) if state is not None else SequenceState()
    state.bounds = {name: dict(sides) for name, sides in state.bounds.items()}
    state.looks += 1
    errors = errors or {}
    rules = config.sequential
    alpha = 1.0 - config.confidence
    info = {
        "look": state.looks,
        "elapsed_s": round(elapsed.total_seconds(), 3),
        "min_duration_s": rules.min_duration.total_seconds(),
        "max_duration_s": rules.max_duration.total_seconds(),
    }
    if state.decision in ("pass", "fail"):
        verdict = Verdict(state.decision, None, [f"decided at look {state.decided_at_look}: {state.decision}"], [], {})
        verdict.sequence = info | {"decided_at_look": state.decided_at_look}
        return verdict, state
    if elapsed >= rules.max_duration:
        final = judge(config.model_copy(update={"confidence": 1.0 - alpha / 2}), _thinned(samples, config), errors)
        decision = {"pass": "pass", "marginal": "fail", "fail": "fail", "nodata": "nodata"}[final.verdict]
        final.reasons.insert(
            0,
            f"max_duration {rules.max_duration} reached: the fixed-horizon judge decides "
            f"({final.verdict}, at confidence {1 - alpha / 2:g})",
        )
        final.verdict = decision
        final.sequence = info | {"final": True}
        if decision in ("pass", "fail"):
            state.decision, state.decided_at_look = decision, state.looks
        return final, state
    results = []
    for spec in config.metrics:
        if spec.name in errors:
            results.append(
                MetricResult(
                    spec.name,
                    "nodata",
                    None,
                    spec.critical,
                    spec.group,
                    spec.weight,
                    {"n": 0, "median": None},
                    {"n": 0, "median": None},
                    reason=f"{spec.name}: no data ({errors[spec.name]})",
                    test=spec.test,
                )
            )
            continue
        if spec.name not in samples:
            results.append(_waiting(spec, "no samples yet", 0, 0))
            continue
        baseline, canary = samples[spec.name]
        result, bounds = _metric_look(spec, baseline, canary, alpha / 2, rules.quantile, state.bounds.get(spec.name))
        if bounds is not None:
            state.bounds[spec.name] = bounds
        results.append(result)
    verdict = _sequential_verdict(config, results, elapsed)
    verdict.sequence = info
    if verdict.verdict in ("pass", "fail"):
        state.decision, state.decided_at_look = verdict.verdict, state.looks
    return verdict, state


def _sequential_verdict(config: CanaryConfig, results: list[MetricResult], elapsed: timedelta) -> Verdict:
    unreadable = [r for r in results if r.classification == "nodata"]
    if unreadable:  # a source down at this look: nodata by the fixed judge's rules, else undecided
        verdict = verdict_of(config, results, None, {})
        if verdict.verdict == "nodata" and (any(r.critical for r in unreadable) or 2 * len(unreadable) >= len(results)):
            return verdict
    failing_critical = [r for r in results if r.critical and r.passed is False]
    best, groups = score(config, [replace(r, passed=True) if r.passed is None else r for r in results])
    worst, _ = score(config, [replace(r, passed=False) if r.passed is None else r for r in results])
    decided, _ = score(config, results)
    undecided = [r for r in results if r.passed is None]
    reasons = [r.reason for r in results if r.passed is False] + [r.reason for r in undecided]
    rules = config.sequential
    if failing_critical:
        reasons.insert(0, "critical metric failed: " + ", ".join(r.name for r in failing_critical))
        return Verdict("fail", decided, reasons, results, groups)
    if best is not None and best < config.pass_threshold:
        reasons.insert(
            0, f"score at most {best:.1f} even if every undecided metric passes (pass at {config.pass_threshold:g})"
        )
        return Verdict("fail", decided, reasons, results, groups)
    critical_open = [r for r in undecided if r.critical]
    if elapsed < rules.min_duration:
        reasons.insert(0, f"continue: {elapsed} of min_duration {rules.min_duration} elapsed (never a pass before)")
        return Verdict("continue", decided, reasons, results, groups)
    if worst is not None and worst >= config.pass_threshold and not critical_open:
        reasons.append(f"every metric inside its band with confidence: score at least {worst:.1f}")
        return Verdict("pass", worst, reasons, results, groups)
    reasons.insert(
        0, f"continue: {len(undecided)} metric(s) undecided at {elapsed} (max_duration {rules.max_duration})"
    )
    return Verdict("continue", decided, reasons, results, groups)
