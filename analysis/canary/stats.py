"""Statistics of the canary judge: the Hodges-Lehmann shift with its distribution-free confidence
interval (Mann-Whitney), the Mann-Whitney U test, and a difference of proportions.

The shift estimate and interval are order statistics of the n x m pairwise differences
(canary_j - baseline_i). They are selected exactly, by counting in the two sorted samples, without
building the n x m matrix: the same values brute force gives, in O((n + m) log) per round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import special, stats

_ENUMERATE = 1 << 21  # candidate pairs few enough to list and sort outright


@dataclass(frozen=True)
class Shift:
    """Canary minus baseline: the Hodges-Lehmann estimate, its interval and the U test."""

    estimate: float
    lower: float
    upper: float
    confidence: float
    p_value: float
    u: float  # Mann-Whitney U of the canary (pairs canary > baseline, ties counted half)
    baseline_median: float
    canary_median: float
    rank: int  # k: the interval is [D_(k), D_(nm+1-k)] of the sorted differences
    method: str  # "exact" (small samples, no ties) or "normal" (the normal approximation of U)
    max_confidence: float = 1.0  # the most any interval reaches with these samples (below `confidence`: none)


def _count_below(x: np.ndarray, y: np.ndarray, t: float, lo: np.ndarray, hi: np.ndarray, inclusive: bool) -> np.ndarray:
    """Per row i, how many j have y_j - x_i < t (or <= t), clipped to [lo_i, hi_i].

    The search runs on x_i + t and is then corrected against the differences as computed in
    floating point, so counts agree with sorting the computed differences."""
    side: Literal["left", "right"] = "right" if inclusive else "left"
    j = np.searchsorted(y, x + t, side=side)
    j = np.clip(j, lo, hi)
    below = (lambda d: d <= t) if inclusive else (lambda d: d < t)
    while True:  # a rounding at the boundary can misplace a row by a step; rarely loops
        back = j > lo
        back[back] = ~below(y[j[back] - 1] - x[back])
        forward = j < hi
        forward[forward] = below(y[j[forward]] - x[forward])
        if not back.any() and not forward.any():
            return j
        j = j - back + forward


def _enumerate(x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, rank: int) -> float:
    """The rank-th (1-based) smallest difference among the active pairs [lo_i, hi_i) of each row."""
    widths = hi - lo
    active = int(widths.sum())
    rows = np.repeat(np.arange(len(x)), widths)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(widths)[:-1])), widths)
    values = y[np.arange(active) + starts] - x[rows]
    return float(np.partition(values, rank - 1)[rank - 1])


def _bracket(x: np.ndarray, y: np.ndarray, k: int, lo: np.ndarray, hi: np.ndarray, t_lo: float, t_hi: float):
    """Narrow [lo, hi) with two pivots; returns (lo, hi, exact value or None)."""
    new_lo = _count_below(x, y, t_lo, lo, hi, inclusive=False)
    if k <= new_lo.sum():
        return lo, new_lo, None
    new_hi = _count_below(x, y, t_hi, lo, hi, inclusive=True)
    if k > new_hi.sum():
        return new_hi, hi, None
    if t_lo == t_hi:  # many tied differences: the rank falls on this very value
        return new_lo, new_hi, float(t_lo)
    return new_lo, new_hi, None


def kth_differences(
    x: np.ndarray, y: np.ndarray, ranks: list[int], rng: np.random.Generator | None = None
) -> list[float]:
    """The k-th smallest (1-based) of y_j - x_i over all pairs for each k; x and y sorted ascending.

    One shared sample of the pairs brackets every rank; each bracket is then narrowed by
    interpolating the count between its ends (the count is nearly linear over a narrow band of a
    smooth distribution), falling back to sampling inside the band (ties, odd shapes), until few
    enough pairs remain to list."""
    n, m = len(x), len(y)
    total = n * m
    for k in ranks:
        if not 1 <= k <= total:
            raise ValueError(f"rank {k} outside 1..{total}")
    rng = rng or np.random.default_rng(0x5EED)
    zeros, full = np.zeros(n, dtype=np.int64), np.full(n, m, dtype=np.int64)
    enumerate_at = min(_ENUMERATE, max(1 << 16, 2 * (n + m)))  # listing costs about what a count does
    if total <= enumerate_at:
        return [_enumerate(x, y, zeros, full, k) for k in ranks]
    samples = int(min(1_000_000, total, max(20_000, math.sqrt(total) / 4)))
    picks = rng.integers(0, total, size=samples)
    sampled = np.sort(y[picks % m] - x[picks // m])
    margin = 4.0 / math.sqrt(samples)
    first, last = min(ranks), max(ranks)
    t_lo = sampled[max(0, int(((first - 0.5) / total - margin) * samples))]
    t_hi = sampled[min(samples - 1, int(((last - 0.5) / total + margin) * samples))]
    # One band for every rank: pairs below it, and pairs above it, are settled once.
    band_lo = _count_below(x, y, t_lo, zeros, full, inclusive=False)
    band_hi = _count_below(x, y, t_hi, zeros, full, inclusive=True)
    if not (band_lo.sum() < first and last <= band_hi.sum()):
        band_lo, band_hi = zeros, full  # the sample misled us (rare): start from everything
    out = []
    for k in ranks:
        out.append(_select_in_band(x, y, k, band_lo, band_hi, enumerate_at, rng))
    return out


def _select_in_band(
    x: np.ndarray, y: np.ndarray, k: int, lo: np.ndarray, hi: np.ndarray, enumerate_at: int, rng: np.random.Generator
) -> float:
    """Rank k inside the band [lo, hi) by regula falsi on the exact count (Illinois variant: one count
    per step, superlinear on smooth data), sampling the band when it stalls (ties, cusps)."""
    m = len(y)
    live = lo < hi
    a = float((y[np.minimum(lo, m - 1)] - x)[live].min())  # the band's smallest value
    b = float((y[np.maximum(hi - 1, 0)] - x)[live].max())  # and its largest
    # g(t) = (pairs below t) - k + 1/2 changes sign at the answer: negative at a, positive past b.
    fa, fb = int(lo.sum()) - k + 0.5, int(hi.sum()) - k + 0.5
    side = 0
    stalled = 0
    while True:
        below, active = int(lo.sum()), int((hi - lo).sum())
        if active <= enumerate_at:
            return _enumerate(x, y, lo, hi, k - below)
        if b <= a:
            return a
        if stalled >= 2:
            lo, hi, exact = _sample_bracket(x, y, k, lo, hi, rng)
            if exact is not None:
                return exact
            live = lo < hi
            a = float((y[np.minimum(lo, m - 1)] - x)[live].min())
            b = float((y[np.maximum(hi - 1, 0)] - x)[live].max())
            fa, fb, side, stalled = int(lo.sum()) - k + 0.5, int(hi.sum()) - k + 0.5, 0, 0
            continue
        t = (a * fb - b * fa) / (fb - fa)
        if not a < t <= b:
            t = 0.5 * (a + b)
        counted = _count_below(x, y, t, lo, hi, inclusive=False)
        f = int(counted.sum()) - k + 0.5
        if f > 0:  # the rank lies below t
            hi, b, fb = counted, t, f
            if side == 1:
                fa /= 2  # Illinois: the lower end was kept twice
            side = 1
        else:
            lo, a, fa = counted, t, f
            if side == -1:
                fb /= 2
            side = -1
        stalled = stalled + 1 if int((hi - lo).sum()) > active // 2 else 0


def _sample_bracket(x: np.ndarray, y: np.ndarray, k: int, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator):
    """Bracket rank k by sampling the active pairs uniformly."""
    widths = hi - lo
    active, below = int(widths.sum()), int(lo.sum())
    samples = 200_000
    cum = np.cumsum(widths)
    picks = np.sort(rng.integers(0, active, size=samples))
    rows = np.searchsorted(cum, picks, side="right")
    values = np.sort(y[lo[rows] + picks - (cum[rows] - widths[rows])] - x[rows])
    position = (k - below - 0.5) / active
    margin = 4.0 / math.sqrt(samples)
    t_lo = values[max(0, int((position - margin) * samples))]
    t_hi = values[min(samples - 1, int((position + margin) * samples))]
    return _bracket(x, y, k, lo, hi, t_lo, t_hi)


def kth_difference(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """The k-th smallest (1-based) of y_j - x_i over all pairs; x and y sorted ascending."""
    return kth_differences(x, y, [k])[0]


def next_difference(x: np.ndarray, y: np.ndarray, value: float, k: int) -> float:
    """The (k+1)-th smallest difference, given that `value` is the k-th."""
    at_most = _count_below(
        x, y, value, np.zeros(len(x), dtype=np.int64), np.full(len(x), len(y), dtype=np.int64), inclusive=True
    )
    if at_most.sum() > k:
        return value
    rows = np.flatnonzero(at_most < len(y))
    return float((y[at_most[rows]] - x[rows]).min())


def u_statistic(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """U of y against x (pairs y > x, ties half) and the sizes of tied groups; x, y sorted."""
    less = np.searchsorted(x, y, side="left")
    equal = np.searchsorted(x, y, side="right") - less
    u = float(less.sum()) + 0.5 * float(equal.sum())
    merged = np.sort(np.concatenate([x, y]), kind="stable")  # two sorted runs: a linear merge
    edges = np.flatnonzero(np.diff(merged)) + 1
    counts = np.diff(np.concatenate(([0], edges, [merged.size])))
    return u, counts[counts > 1]


@lru_cache(maxsize=256)
def _u_distribution(n: int, m: int) -> np.ndarray:
    """P(U = u), u = 0..nm, under H0 without ties, U counting pairs with the y above the x.

    The largest of i x's and j y's is a y with probability j/(i+j) (it then beats all i x's),
    else an x: p(i, j) = j/(i+j) p(i, j-1) shifted by i, plus i/(i+j) p(i-1, j)."""
    previous = [np.ones(1) for _ in range(m + 1)]
    for i in range(1, n + 1):
        current = [np.ones(1)]
        for j in range(1, m + 1):
            out = np.zeros(i * j + 1)
            above = previous[j]
            out[: above.size] += above * (i / (i + j))
            out[i : i + current[j - 1].size] += current[j - 1] * (j / (i + j))
            current.append(out)
        previous = current
    return previous[m]


def _exact_ok(n: int, m: int, ties: np.ndarray) -> bool:
    return n < 50 and m < 50 and ties.size == 0  # R's wilcox.test rule


def mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float, str, np.ndarray]:
    """(U of y, two-sided p-value, method, tie sizes) as scipy.stats.mannwhitneyu(y, x) computes them:
    exact without ties for small samples (both under 9, scipy's automatic choice), else normal with
    tie and continuity correction."""
    n, m = len(x), len(y)
    u, ties = u_statistic(x, y)
    if n <= 8 and m <= 8 and ties.size == 0:
        dist = _u_distribution(n, m)
        u_big = max(u, n * m - u)
        p = float(min(1.0, 2.0 * dist[round(u_big) :].sum()))
        return u, p, "exact", ties
    mu = n * m / 2.0
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
    var = n * m / 12.0 * ((n + m + 1) - tie_term / ((n + m) * (n + m - 1)))
    if var <= 0:
        return u, 1.0, "normal", ties
    z = (abs(u - mu) - 0.5) / math.sqrt(var)
    p = float(min(1.0, 2.0 * special.ndtr(-max(z, 0.0)))) if z > 0 else 1.0
    return u, p, "normal", ties


def max_coverage(n: int, m: int, ties: np.ndarray) -> float:
    """The highest confidence any interval [D_(k), D_(nm+1-k)] reaches with these sample sizes: that of
    the widest, [D_(1), D_(nm)] (exactly 1 - 2/C(n+m, n) for small samples without ties)."""
    if _exact_ok(n, m, ties):
        return 1.0 - 2.0 * float(_u_distribution(n, m)[0])
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
    var = n * m / 12.0 * ((n + m + 1) - tie_term / ((n + m) * (n + m - 1))) if n + m > 1 else 0.0
    if var <= 0:
        return 0.0
    z = (n * m / 2.0 - 1.0) / math.sqrt(var)  # k = 1 under the normal approximation
    return float(max(0.0, 1.0 - 2.0 * special.ndtr(-z)))


def interval_rank(n: int, m: int, confidence: float, ties: np.ndarray) -> tuple[int, str]:
    """k such that [D_(k), D_(nm+1-k)] covers the shift with the confidence asked.

    Exact (R's qwilcox) for samples under 50 without ties; otherwise the normal approximation
    of U (with tie correction) gives k directly, which is what the order statistics then use."""
    alpha = 1.0 - confidence
    if _exact_ok(n, m, ties):
        cdf = np.cumsum(_u_distribution(n, m))
        qu = int(np.searchsorted(cdf, alpha / 2.0 - 1e-12, side="left"))  # smallest q: P(U <= q) >= a/2
        return max(qu, 1), "exact"
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
    sigma = math.sqrt(n * m / 12.0 * ((n + m + 1) - tie_term / ((n + m) * (n + m - 1))))
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    return max(math.floor(n * m / 2.0 - z * sigma), 1), "normal"


def _median(values: np.ndarray) -> float:
    """Median of a sorted array."""
    half = len(values) // 2
    return float(values[half]) if len(values) % 2 else 0.5 * (float(values[half - 1]) + float(values[half]))


def hodges_lehmann(baseline: np.ndarray, canary: np.ndarray, confidence: float = 0.98) -> Shift:
    """The canary - baseline shift: estimate, confidence interval and Mann-Whitney p-value."""
    x = np.sort(np.asarray(baseline, dtype=np.float64))
    y = np.sort(np.asarray(canary, dtype=np.float64))
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one value")
    total = n * m
    u, p, _, ties = mann_whitney(x, y)
    k, method = interval_rank(n, m, confidence, ties)
    k = min(k, total)
    middle = (total + 1) // 2
    lower, upper, median = kth_differences(x, y, [k, total + 1 - k, middle])
    estimate = median if total % 2 else 0.5 * (median + next_difference(x, y, median, middle))
    reachable = max_coverage(n, m, ties)
    return Shift(estimate, lower, upper, confidence, p, u, _median(x), _median(y), k, method, reachable)


@dataclass(frozen=True)
class ProportionDiff:
    """Difference of two rates (canary - baseline) with a Wald interval and a two-sided z-test."""

    baseline_rate: float
    canary_rate: float
    estimate: float
    lower: float
    upper: float
    p_value: float


def proportion_difference(
    baseline_good: float, baseline_total: float, canary_good: float, canary_total: float, confidence: float = 0.98
) -> ProportionDiff:
    """Rates good/total for each side, their difference and its interval (Wald; pooled z-test p)."""
    if baseline_total <= 0 or canary_total <= 0:
        raise ValueError("both totals must be positive")
    p1, p2 = baseline_good / baseline_total, canary_good / canary_total
    diff = p2 - p1
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    se = math.sqrt(p1 * (1 - p1) / baseline_total + p2 * (1 - p2) / canary_total)
    pooled = (baseline_good + canary_good) / (baseline_total + canary_total)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / baseline_total + 1 / canary_total))
    p_value = 1.0 if se0 == 0 else float(2 * special.ndtr(-abs(diff) / se0))
    return ProportionDiff(p1, p2, diff, diff - z * se, diff + z * se, p_value)
