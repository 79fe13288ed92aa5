"""The canary statistics against independent computations: scipy, brute force, enumeration, simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from analysis.canary import config_from_mapping, judge
from analysis.canary.stats import (
    _u_distribution,
    hodges_lehmann,
    interval_rank,
    kth_difference,
    mann_whitney,
    proportion_difference,
)


@pytest.mark.parametrize("seed", range(40))
def test_p_values_agree_with_scipy(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 9, size=2) if seed % 2 else rng.integers(9, 300, size=2)
    digits = int(rng.integers(0, 3))  # rounding makes ties in some draws
    x = np.round(rng.normal(size=n), digits if seed % 3 == 0 else 12)
    y = np.round(rng.normal(size=m) + rng.normal() * 0.5, digits if seed % 3 == 0 else 12)
    u, p, _, _ = mann_whitney(np.sort(x), np.sort(y))
    reference = stats.mannwhitneyu(y, x, alternative="two-sided")
    assert u == reference.statistic
    assert p == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("n, m", [(1, 1), (2, 3), (3, 5), (4, 4), (5, 7)])
def test_exact_u_distribution_matches_enumeration(n, m):
    counts = np.zeros(n * m + 1)
    for positions in itertools.combinations(range(n + m), m):  # where the y's sit in the joint order
        chosen = set(positions)
        u, xs_below = 0, 0
        for i in range(n + m):
            if i in chosen:
                u += xs_below
            else:
                xs_below += 1
        counts[u] += 1
    assert np.allclose(_u_distribution(n, m), counts / counts.sum())


def brute(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sort((y[None, :] - x[:, None]).ravel())


@pytest.mark.parametrize("seed", range(30))
def test_estimate_and_interval_equal_brute_force_order_statistics(seed):
    rng = np.random.default_rng(100 + seed)
    n, m = rng.integers(3, 120, size=2)
    x = np.round(rng.lognormal(size=n) * 10, int(rng.integers(0, 4)))
    y = np.round(rng.lognormal(size=m) * 11, int(rng.integers(0, 4)))
    diffs = brute(x, y)
    shift = hodges_lehmann(x, y, confidence=0.98)
    assert shift.estimate == np.median(diffs)
    k = shift.rank
    assert (shift.lower, shift.upper) == (diffs[k - 1], diffs[len(diffs) - k])
    _u, _p, _, ties = mann_whitney(np.sort(x), np.sort(y))
    assert interval_rank(n, m, 0.98, ties)[0] == k


def test_exact_interval_rank_is_rs_qwilcox():
    """For small samples without ties, k is the smallest q with P(U <= q) >= alpha/2 (R's qwilcox),
    computed here by enumeration."""
    n, m, confidence = 6, 7, 0.95
    counts = np.zeros(n * m + 1)
    for positions in itertools.combinations(range(n + m), m):
        chosen = set(positions)
        u = sum(sum(1 for j in range(i) if j not in chosen) for i in chosen)
        counts[u] += 1
    cdf = np.cumsum(counts) / counts.sum()
    q = int(np.argmax(cdf >= (1 - confidence) / 2))
    assert interval_rank(n, m, confidence, np.array([]))[0] == q
    assert interval_rank(n, m, confidence, np.array([]))[1] == "exact"


def test_large_samples_select_exactly_without_the_matrix():
    rng = np.random.default_rng(7)
    x, y = np.sort(rng.normal(size=3000)), np.sort(rng.normal(size=2500) + 0.1)
    diffs = brute(x, y)
    for k in (1, 17, len(diffs) // 3, len(diffs) // 2, len(diffs) - 5, len(diffs)):
        assert kth_difference(x, y, k) == diffs[k - 1]
    shift = hodges_lehmann(x, y)
    assert shift.method == "normal" and (shift.lower, shift.upper) == (diffs[shift.rank - 1], diffs[-shift.rank])


def test_proportion_difference_by_hand():
    # 20/1000 baseline errors vs 35/1000 canary: diff 0.015, Wald se sqrt(.02*.98/1000 + .035*.965/1000).
    r = proportion_difference(20, 1000, 35, 1000, confidence=0.95)
    se = math.sqrt(0.02 * 0.98 / 1000 + 0.035 * 0.965 / 1000)
    assert r.estimate == pytest.approx(0.015)
    assert (r.lower, r.upper) == pytest.approx((0.015 - 1.959964 * se, 0.015 + 1.959964 * se), rel=1e-6)
    pooled = 55 / 2000
    z = 0.015 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert r.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)


def test_a_a_false_alarms_stay_within_the_nominal_rate():
    """1,000 A/A comparisons: with no tolerance band the verdict is non-pass exactly when the 98%
    interval misses zero, so the non-pass share must stay near 2%; with the default 10% band, lower."""
    rng = np.random.default_rng(2024)
    exact_band = config_from_mapping({"metrics": [{"name": "m", "tolerance": 0.0, "direction": "either"}]})
    default = config_from_mapping({"metrics": [{"name": "m", "direction": "either"}]})
    runs = 1000
    noise = 3 * math.sqrt(0.02 * 0.98 / runs)
    for n in (30, 100):  # the exact interval, and the normal approximation of U
        draws = [(rng.lognormal(4.6, 0.4, n), rng.lognormal(4.6, 0.4, n)) for _ in range(runs)]
        tight = np.mean([judge(exact_band, {"m": d}).verdict != "pass" for d in draws])
        banded = np.mean([judge(default, {"m": d}).verdict != "pass" for d in draws])
        assert tight <= 0.02 + noise, (n, tight)
        assert banded <= tight


def test_a_20_percent_shift_with_100_samples_is_detected():
    """Latency with a 10% coefficient of variation, canary 20% slower, tolerance 10%: >= 95% caught."""
    rng = np.random.default_rng(99)
    config = config_from_mapping({"metrics": [{"name": "latency", "tolerance": 0.10}]})
    caught = np.mean(
        [
            judge(config, {"latency": (rng.normal(100, 10, 100), rng.normal(120, 12, 100))}).verdict == "fail"
            for _ in range(1000)
        ]
    )
    assert caught >= 0.95, caught
