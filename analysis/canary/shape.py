"""Shape tests of the canary judge: changes a location test misses. Each is optional per metric, runs beside
the Hodges-Lehmann shift and fires only when its change is both significant at alpha = 1 - confidence and
beyond its own tolerance:

- scale: the ratio of spreads (mean absolute deviation from the median, canary / baseline) with a
  log-scale interval; Brown-Forsythe's test. Fires when the whole interval lies beyond x(1 + tolerance).
- distribution: Anderson-Darling k-sample, with Fisher's exact test on the shares beyond pooled tail
  quantiles (a rank test alone misses a few far-off samples), on the baseline and the canary less its
  shift (the shape only: the shift is the location test's), and the largest quantile difference (5% to
  95% in steps of 5%) on the worse side beyond a band of tolerance x the baseline's 10%-90% spread.
- zeros: the share of non-zero values; Fisher's exact test (one-sided by direction) and a Newcombe
  (Wilson score) interval for the difference of shares. Fires when the interval lies beyond tolerance.

Pure: samples in, results out.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .config import SHAPE_DEFAULTS, SHAPE_TESTS, MetricSpec, worse_sides

__all__ = [
    "SHAPE_DEFAULTS",
    "SHAPE_TESTS",
    "ShapeResult",
    "brown_forsythe",
    "distribution_test",
    "newcombe_interval",
    "scale_test",
    "shape_tests",
    "zeros_test",
]

QUANTILES = np.round(np.arange(0.05, 0.951, 0.05), 2)


@dataclass(frozen=True)
class ShapeResult:
    """One shape test: its statistic and p-value, the estimate with its interval (or band), and whether it fired."""

    test: str  # scale | distribution | zeros
    method: str  # Brown-Forsythe | Anderson-Darling k-sample | Fisher's exact
    statistic: float
    p_value: float
    estimate: float
    interval: tuple[float, float]  # scale: of the ratio; zeros: of the difference; distribution: the band
    tolerance: float
    fired: bool
    reason: str  # what fired, in plain words ("" when it did not)
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite numbers as None."""
        return {
            "method": self.method,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "estimate": _finite(self.estimate),
            ("band" if self.test == "distribution" else "interval"): [_finite(v) for v in self.interval],
            "tolerance": self.tolerance,
            "fired": self.fired,
            **self.detail,
        }


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def brown_forsythe(baseline: np.ndarray, canary: np.ndarray) -> tuple[float, float]:
    """Brown-Forsythe's test of equal spread (Levene's ANOVA on |x - median|): (F, two-sided p)."""
    groups = [np.abs(v - np.median(v)) for v in (baseline, canary)]
    n = np.array([g.size for g in groups], dtype=np.float64)
    means = np.array([g.mean() for g in groups])
    grand = float(np.concatenate(groups).mean())
    between = float(np.sum(n * (means - grand) ** 2))
    within = float(sum(np.sum((g - m) ** 2) for g, m in zip(groups, means, strict=True)))
    df = n.sum() - 2
    if within == 0:
        return (math.inf, 0.0) if between > 0 else (0.0, 1.0)
    f = between / (within / df)
    return f, float(stats.f.sf(f, 1, df))


def scale_test(
    baseline: np.ndarray, canary: np.ndarray, confidence: float, tolerance: float, direction: str = "increase"
) -> ShapeResult:
    """The ratio of spreads (mean |x - median|, canary / baseline), its log-scale (delta method, t) interval
    and Brown-Forsythe's test; fires when significant and the interval lies beyond x(1 + tolerance) on a
    worse side (wider: always; narrower: only for direction either, the only two-sided case)."""
    x, y = np.asarray(baseline, dtype=np.float64), np.asarray(canary, dtype=np.float64)
    zx, zy = np.abs(x - np.median(x)), np.abs(y - np.median(y))
    mx, my = float(zx.mean()), float(zy.mean())
    f, p = brown_forsythe(x, y)
    bound = 1.0 + tolerance
    method = "Brown-Forsythe"
    one_sided = direction != "either"  # only a wider spread is worse: test and bound one-sided (alpha all there)
    if one_sided:
        p = p / 2.0 if my > mx else 1.0 - p / 2.0
    significant = p < 1.0 - confidence
    if mx == 0 or my == 0:  # a side without spread: no interval; a canary spread where the baseline has none is wider
        ratio = 1.0 if mx == my else (math.inf if mx == 0 else 0.0)
        lower = upper = ratio
        wider = significant and ratio == math.inf
        narrower = significant and direction == "either" and ratio == 0.0
    else:
        ratio = my / mx
        se = math.sqrt(zy.var(ddof=1) / (zy.size * my**2) + zx.var(ddof=1) / (zx.size * mx**2))
        # The interval shown is two-sided at 1 - 2 alpha when one-sided, at 1 - alpha for either.
        q = float(stats.t.ppf(confidence if one_sided else 0.5 + confidence / 2.0, zx.size + zy.size - 2))
        lower, upper = ratio * math.exp(-q * se), ratio * math.exp(q * se)
        wider = significant and lower > bound  # wider is worse whichever way the metric is worse
        narrower = significant and direction == "either" and upper < 1.0 / bound
    fired = wider or narrower
    reason = ""
    if fired:
        beyond = f"×{bound:g}" if wider else f"×{1.0 / bound:.3g}"
        reason = f"scale ×{ratio:.2f} [{lower:.2f}, {upper:.2f}] beyond tolerance {beyond} ({method}, p {p:.2g}): worse"
    return ShapeResult("scale", method, f, p, ratio, (lower, upper), tolerance, fired, reason, {})


def ad_midrank(counts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The two-sample Anderson-Darling midrank statistic A2akN (Scholz & Stephens 1987, eq. 7) from the
    counts of each distinct value (in increasing order) per sample: `counts` (..., 2, L), `sizes` (2,)."""
    lj = counts.sum(axis=-2, keepdims=True).astype(np.float64)  # (..., 1, L)
    n_total = float(sizes.sum())
    bj = np.cumsum(lj, axis=-1) - lj / 2.0
    mij = np.cumsum(counts, axis=-1) - counts / 2.0
    n = sizes.astype(np.float64)[:, None]
    inner = lj / n_total * (n_total * mij - bj * n) ** 2 / (bj * (n_total - bj) - n_total * lj / 4.0)
    return (n_total - 1.0) / n_total * (inner.sum(axis=-1) / n[:, 0]).sum(axis=-1)


def _tied_permutation_p(baseline: np.ndarray, canary: np.ndarray, resamples: int = 999) -> float:
    """The permutation p-value of the midrank statistic, drawing the canary's counts per distinct value
    from their multivariate hypergeometric law (a permutation of the pooled samples, without sorting)."""
    values, inverse = np.unique(np.concatenate([baseline, canary]), return_inverse=True)
    lj = np.bincount(inverse, minlength=values.size)
    c = np.bincount(inverse[baseline.size :], minlength=values.size)
    sizes = np.array([baseline.size, canary.size])
    observed = float(ad_midrank(np.stack([lj - c, c]), sizes))
    rng = np.random.default_rng(0)  # fixed: the same samples give the same verdict
    chunk = max(1, 2_000_000 // values.size)
    above = 0
    for start in range(0, resamples, chunk):
        draws = rng.multivariate_hypergeometric(lj, canary.size, size=min(chunk, resamples - start))
        stat = ad_midrank(np.stack([lj - draws, draws], axis=1), sizes)
        above += int(np.count_nonzero(stat >= observed * (1 - 1e-12)))
    return (1 + above) / (1 + resamples)


def anderson_darling(baseline: np.ndarray, canary: np.ndarray) -> tuple[float, float]:
    """Anderson-Darling k-sample (scipy's standardized statistic; midrank, its default): (statistic, p). With
    heavy ties (fewer distinct values than half the samples) scipy's tabled p-value runs low (4.7% below 0.01
    for two A/A samples of 200 with 8% non-zero counts), so p is a permutation p-value (999 resamples, fixed
    seed); otherwise scipy's, capped to [0.001, 0.25]."""
    pooled = np.concatenate([baseline, canary])
    distinct = np.unique(pooled).size
    if distinct < 2:  # a single value in both samples: nothing to compare
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cap's warning: the p-value says it
        ad = stats.anderson_ksamp([baseline, canary])  # midrank, the default
    p = _tied_permutation_p(baseline, canary) if distinct < pooled.size / 2 else float(ad.pvalue)
    return float(ad.statistic), p


TAILS = (0.5, 0.75, 0.9, 0.95, 0.975)  # increase: the shares above these pooled quantiles; decrease: below 1 - p


def tail_exceedance(
    baseline: np.ndarray, canary: np.ndarray, direction: str = "increase"
) -> tuple[float, float, np.ndarray]:
    """Fisher's exact test (one-sided hypergeometric tail; either: doubled) on the canary's share above the
    pooled quantiles 50%-97.5% (decrease: below 2.5%-50%; either: both), Bonferroni over the quantiles:
    (the quantile of the smallest p, the corrected p, the per-quantile p-values)."""
    pooled = np.concatenate([baseline, canary])
    lower = np.array([1 - t for t in reversed(TAILS)])
    probs = {"increase": np.array(TAILS), "decrease": lower}.get(direction, np.concatenate([lower[:-1], TAILS]))
    cuts = np.quantile(pooled, probs)
    below = direction == "decrease"
    hits_x = ((baseline[:, None] < cuts) if below else (baseline[:, None] > cuts)).sum(axis=0)
    hits_y = ((canary[:, None] < cuts) if below else (canary[:, None] > cuts)).sum(axis=0)
    total, drawn = pooled.size, canary.size
    hits = hits_x + hits_y
    p = stats.hypergeom.sf(hits_y - 1, total, hits, drawn)  # P(the canary holds >= hits_y of the hits)
    if direction == "either":
        p = np.minimum(1.0, 2 * np.minimum(p, stats.hypergeom.cdf(hits_y, total, hits, drawn)))
    at = int(np.argmin(p))
    return float(probs[at]), float(min(1.0, p[at] * probs.size)), p


def distribution_test(
    baseline: np.ndarray,
    canary: np.ndarray,
    confidence: float,
    tolerance: float,
    direction: str = "increase",
    shift: float = 0.0,
) -> ShapeResult:
    """Anderson-Darling k-sample with Fisher's exact tail exceedances (Bonferroni over the two: p = 2 x the
    smaller) on the baseline and the canary less `shift`, and the largest quantile difference (5%-95%) on a
    worse side (increase: the upper half above the baseline's; decrease: the lower half below; either: any)
    beyond tolerance x the baseline's 10%-90% spread (its mean |x - median| when that is 0)."""
    x = np.asarray(baseline, dtype=np.float64)
    y = np.asarray(canary, dtype=np.float64) - shift
    statistic, p_ad = anderson_darling(x, y)
    tail_at, p_tail, _ = tail_exceedance(x, y, direction)
    p = min(1.0, 2 * min(p_ad, p_tail))
    method = "Anderson-Darling k-sample"
    if p_tail < p_ad:
        method += f" + tail exceedance at q{tail_at * 100:g} (Fisher's exact)"
    qx, qy = np.quantile(x, QUANTILES), np.quantile(y, QUANTILES)
    spread = float(np.quantile(x, 0.9) - np.quantile(x, 0.1)) or float(np.mean(np.abs(x - np.median(x))))
    band = tolerance * spread
    diff = qy - qx
    if direction == "either":
        counted = np.ones(diff.shape, dtype=bool)
    elif direction == "increase":
        counted = (QUANTILES >= 0.5) & (diff > 0)
    else:
        counted = (QUANTILES <= 0.5) & (diff < 0)
    worse = np.where(counted, diff, 0.0)
    at = int(np.argmax(np.abs(worse)))
    estimate, quantile = float(worse[at]), float(QUANTILES[at])
    fired = bool(p < 1.0 - confidence and abs(estimate) > band)
    reason = ""
    if fired:
        reason = (
            f"distribution q{quantile * 100:g} {estimate:+.4g} (shift removed) beyond band ±{band:.4g} "
            f"({tolerance:g} × baseline spread) ({method}, p {p:.2g}): worse"
        )
    detail = {
        "quantile": quantile,
        "shift_removed": _finite(shift),
        "spread": spread,
        "p_anderson_darling": p_ad,
        "p_tail": p_tail,
        "tail_quantile": tail_at,
    }
    return ShapeResult(
        "distribution",
        "Anderson-Darling k-sample + tail exceedance (Fisher's exact), Bonferroni",
        statistic,
        p,
        estimate,
        (-band, band),
        tolerance,
        fired,
        reason,
        detail,
    )


def _wilson(successes: float, total: float, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    baseline_hits: float, baseline_total: float, canary_hits: float, canary_total: float, confidence: float
) -> tuple[float, float, float]:
    """The difference of shares (canary - baseline) and its interval (Newcombe's hybrid score, method 10)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    p1, p2 = baseline_hits / baseline_total, canary_hits / canary_total
    l1, u1 = _wilson(baseline_hits, baseline_total, z)
    l2, u2 = _wilson(canary_hits, canary_total, z)
    diff = p2 - p1
    lower = diff - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = diff + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return diff, lower, upper


def zeros_test(
    baseline: np.ndarray, canary: np.ndarray, confidence: float, tolerance: float, direction: str = "increase"
) -> ShapeResult:
    """The share of non-zero values: Fisher's exact test (one-sided towards the worse side: more non-zeros
    for increase, fewer for decrease; two-sided for either) and Newcombe's interval for the difference;
    fires when significant and the interval lies beyond tolerance on a worse side."""
    x, y = np.asarray(baseline, dtype=np.float64), np.asarray(canary, dtype=np.float64)
    nx, ny = int(np.count_nonzero(x)), int(np.count_nonzero(y))
    table = [[ny, y.size - ny], [nx, x.size - nx]]
    alternative = {"increase": "greater", "decrease": "less", "either": "two-sided"}[direction]
    odds, p = stats.fisher_exact(table, alternative=alternative)
    diff, lower, upper = newcombe_interval(nx, x.size, ny, y.size, confidence)
    up_worse, down_worse = worse_sides(direction)
    significant = p < 1.0 - confidence
    fired = bool(significant and ((up_worse and lower > tolerance) or (down_worse and upper < -tolerance)))
    method = "Fisher's exact"
    reason = ""
    if fired:
        reason = (
            f"zeros {nx}/{x.size} -> {ny}/{y.size} non-zero ({diff * 100:+.1f} pp [{lower * 100:+.1f}, "
            f"{upper * 100:+.1f}]) beyond tolerance {tolerance * 100:g} pp ({method}, p {p:.2g}): worse"
        )
    detail = {"baseline_nonzero": nx, "canary_nonzero": ny, "alternative": alternative}
    return ShapeResult("zeros", method, float(odds), float(p), diff, (lower, upper), tolerance, fired, reason, detail)


def shape_tests(
    spec: MetricSpec, baseline: np.ndarray, canary: np.ndarray, confidence: float, shift: float
) -> list[ShapeResult]:
    """The metric's shape tests that are on (none: an empty list), in the order scale, distribution, zeros."""
    out = []
    for test, tolerance in spec.shape_tests().items():
        if test == "scale":
            out.append(scale_test(baseline, canary, confidence, tolerance, spec.direction))
        elif test == "distribution":
            out.append(distribution_test(baseline, canary, confidence, tolerance, spec.direction, shift))
        else:
            out.append(zeros_test(baseline, canary, confidence, tolerance, spec.direction))
    return out
