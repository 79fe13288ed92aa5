"""Shape tests of the canary judge (scale, distribution, zeros): each statistic against an independent
computation, the per-metric keys and their refusals, the judge's reasons, simulated detection and A/A
false-fail rates at n = 200 per side, and `gatewatch canary judge` on a variance-only change.

A/A bound: with R runs a false-fail rate is asserted at most alpha (= 0.02 at the default confidence), i.e.
at most 0.02 x R failed runs. A method whose true rate were 2 alpha would still pass this with probability
about 0.1 at R = 200, one at 3 alpha with probability below 0.01; the measured rates are far below (see the
module's figures in the README)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.canary import CanaryConfigError, Verdict, config_from_mapping, judge, judge_metric
from analysis.canary.shape import (
    ad_midrank,
    anderson_darling,
    brown_forsythe,
    distribution_test,
    newcombe_interval,
    scale_test,
    tail_exceedance,
    zeros_test,
)

N = 200
ALPHA = 0.02


def spec(**keys):
    return config_from_mapping({"metrics": [{"name": "latency", **keys}]}).metrics[0]


def lognormal(rng, size=N):
    return rng.lognormal(math.log(100), 0.3, size)


def zero_inflated(rng, share, size=N):
    return rng.poisson(3, size) * (rng.random(size) < share) + 0.0


# --- statistics against independent computations -----------------------------------------------------------


def test_brown_forsythe_is_levene_with_median_centre():
    rng = np.random.default_rng(1)
    for x, y in ((rng.normal(0, 1, 30), rng.normal(0, 2, 45)), (lognormal(rng), zero_inflated(rng, 0.3))):
        f, p = brown_forsythe(x, y)
        reference = stats.levene(x, y, center="median")
        assert f == pytest.approx(reference.statistic, rel=1e-10) and p == pytest.approx(reference.pvalue, rel=1e-8)


def test_scale_ratio_and_interval_by_hand():
    rng = np.random.default_rng(2)
    x, y = rng.normal(100, 10, N), rng.normal(100, 30, N)
    result = scale_test(x, y, 0.98, 0.2)
    zx, zy = np.abs(x - np.median(x)), np.abs(y - np.median(y))
    assert result.estimate == pytest.approx(zy.mean() / zx.mean())
    se = math.sqrt(zy.var(ddof=1) / (N * zy.mean() ** 2) + zx.var(ddof=1) / (N * zx.mean() ** 2))
    # Only wider is worse for direction increase: one-sided bound and p (alpha on the wide side).
    q = stats.t.ppf(0.98, 2 * N - 2)
    assert result.interval == pytest.approx((result.estimate * math.exp(-q * se), result.estimate * math.exp(q * se)))
    assert result.p_value == pytest.approx(stats.levene(x, y, center="median").pvalue / 2, rel=1e-8)
    assert result.fired and 2.4 < result.estimate < 3.6 and result.interval[0] > 1.2
    assert "scale ×" in result.reason and "Brown-Forsythe" in result.reason
    # Either way worse: two-sided.
    either = scale_test(x, y, 0.98, 0.2, "either")
    q2 = stats.t.ppf(0.99, 2 * N - 2)
    assert either.interval == pytest.approx((either.estimate * math.exp(-q2 * se), either.estimate * math.exp(q2 * se)))
    assert either.p_value == pytest.approx(stats.levene(x, y, center="median").pvalue, rel=1e-8)
    # A narrower canary is not significant one-sided.
    assert scale_test(y, x, 0.98, 0.2).p_value > 0.5


def test_scale_interval_covers_the_true_ratio():
    """The log-scale interval's coverage of the true ratio of mean absolute deviations (x1.5), 400 runs: the
    two-sided interval (direction either) 98%, the one-sided lower bound (direction increase) 98%."""
    rng = np.random.default_rng(3)
    covered = lower_covered = 0
    for _ in range(400):
        x, y = rng.normal(0, 1, N), rng.normal(0, 1.5, N)
        both = scale_test(x, y, 0.98, 0.2, "either")
        covered += both.interval[0] <= 1.5 <= both.interval[1]
        lower_covered += scale_test(x, y, 0.98, 0.2, "increase").interval[0] <= 1.5
    assert covered / 400 >= 0.96  # nominal 0.98; binomial sd at 400 runs 0.007
    assert lower_covered / 400 >= 0.96


def test_anderson_darling_is_scipys():
    rng = np.random.default_rng(4)
    x, y = lognormal(rng), lognormal(rng) * 1.1
    statistic, p = anderson_darling(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy 1.17: `variant` replaces `midrank` (the default either way)
        reference = stats.anderson_ksamp([x, y])
    assert statistic == pytest.approx(reference.statistic) and p == pytest.approx(reference.pvalue)
    assert anderson_darling(np.zeros(20), np.zeros(20)) == (0.0, 1.0)


def _counts(x, y):
    values, inverse = np.unique(np.concatenate([x, y]), return_inverse=True)
    canary = np.bincount(inverse[x.size :], minlength=values.size)
    return np.stack([np.bincount(inverse, minlength=values.size) - canary, canary]), np.array([x.size, y.size])


def test_midrank_statistic_and_tied_permutation_p_against_scipy():
    """scipy standardizes A2akN as (A2akN - 1) / sigma_N, sigma_N a function of the sample sizes alone: the
    ratio is the same for every pair of samples of those sizes. The permutation p-value (heavy ties) agrees
    with scipy's own permutation test within its Monte Carlo error."""
    rng = np.random.default_rng(16)
    ratios = []
    for share in (0.08, 0.2, 0.5):
        x, y = zero_inflated(rng, 0.08, 200), zero_inflated(rng, share, 150)
        raw = float(ad_midrank(*_counts(x, y)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = stats.anderson_ksamp([x, y])
            permuted = stats.anderson_ksamp([x, y], method=stats.PermutationMethod(n_resamples=4999)).pvalue
        ratios.append((raw - 1) / reference.statistic)
        statistic, p = anderson_darling(x, y)
        assert statistic == pytest.approx(reference.statistic)
        assert abs(p - permuted) < 4 * math.sqrt(max(permuted, 0.002) / 999) + 0.002, (share, p, permuted)
    assert ratios == pytest.approx([ratios[0]] * 3, rel=1e-9)


def test_tail_exceedance_is_fishers_exact_on_each_pooled_quantile():
    rng = np.random.default_rng(5)
    x, y = lognormal(rng), lognormal(rng)
    y[:20] *= 5
    quantile, p, each = tail_exceedance(x, y, "increase")
    pooled = np.concatenate([x, y])
    for i, prob in enumerate((0.5, 0.75, 0.9, 0.95, 0.975)):
        cut = np.quantile(pooled, prob)
        a, b = int((y > cut).sum()), int((x > cut).sum())
        reference = stats.fisher_exact([[a, N - a], [b, N - b]], alternative="greater").pvalue
        assert each[i] == pytest.approx(reference, rel=1e-9)
    assert p == pytest.approx(min(1.0, 5 * each.min())) and quantile in (0.9, 0.95, 0.975) and p < 1e-4


def test_newcombe_interval_matches_the_published_example():
    """Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 - 48/80, method 10: [0.0524, 0.3339]."""
    diff, lower, upper = newcombe_interval(48, 80, 56, 70, 0.95)
    assert diff == pytest.approx(0.2) and round(lower, 4) == 0.0524 and round(upper, 4) == 0.3339


def test_zeros_p_value_is_fishers_exact_per_direction():
    x = np.array([0.0] * 10)
    y = np.array([0.0] * 4 + [1.0, 2, 3, 1, 1, 5])
    result = zeros_test(x, y, 0.98, 0.05, "increase")
    # hand-worked: all 6 non-zeros of 20 in the canary's 10 = C(10,6) / C(20,6) = 210 / 38760
    assert result.p_value == pytest.approx(210 / 38760) and result.fired
    assert result.p_value == pytest.approx(stats.fisher_exact([[6, 4], [0, 10]], alternative="greater").pvalue)
    assert (
        zeros_test(x, y, 0.98, 0.05, "decrease").p_value == pytest.approx(1.0)
        and not zeros_test(x, y, 0.98, 0.05, "decrease").fired
    )
    two_sided = zeros_test(x, y, 0.98, 0.05, "either")
    assert two_sided.p_value == pytest.approx(stats.fisher_exact([[6, 4], [0, 10]]).pvalue) and two_sided.fired
    # the tolerance: significant but the interval's lower end within 0.2 does not fire
    assert not zeros_test(x, y, 0.98, 0.2, "increase").fired


# --- the judge -----------------------------------------------------------------------------------------------


def test_zero_inflation_0_of_10_vs_6_of_10_fails_naming_the_test():
    baseline = np.zeros(10)
    canary = np.array([0.0] * 4 + [2.0, 1, 4, 1, 3, 2])
    result = judge_metric(spec(zeros=True), baseline, canary, 0.98)
    assert result.passed is False
    assert "latency: zeros 0/10 -> 6/10 non-zero (+60.0 pp" in result.reason and "Fisher's exact" in result.reason
    assert result.shape is not None and result.shape["zeros"]["fired"] is True
    assert result.shape["zeros"]["p_value"] == pytest.approx(210 / 38760)
    # off (the default): the same samples pass on the shift alone, and no shape is reported
    plain = judge_metric(spec(), baseline, canary, 0.98)
    assert plain.passed is True and plain.shape is None


def test_variance_only_change_keeps_the_shift_classification_and_fails_on_scale():
    rng = np.random.default_rng(6)
    x, y = rng.normal(100, 10, N), 100 + 3 * (rng.normal(100, 10, N) - 100)
    result = judge_metric(spec(scale=True), x, y, 0.98)
    assert result.classification == "pass" and result.passed is False
    assert result.reason.startswith("latency ") and "tolerance 10%: ok; latency: scale ×" in result.reason
    assert "beyond tolerance ×1.2 (Brown-Forsythe" in result.reason and result.reason.endswith("worse")
    shape = result.shape["scale"]
    assert set(shape) >= {"statistic", "p_value", "estimate", "interval", "fired"} and shape["fired"] is True
    # a tolerance wider than the change does not fire; narrower spread is not worse for direction increase
    assert judge_metric(spec(scale=3.0), x, y, 0.98).passed is True
    assert judge_metric(spec(scale=True), y, x, 0.98).passed is True
    assert judge_metric(spec(scale=True, direction="either"), y, x, 0.98).passed is False


def test_distribution_ignores_a_shift_inside_the_tolerance_and_respects_direction():
    rng = np.random.default_rng(7)
    x = rng.normal(200, 10, N)
    shifted = rng.normal(210, 10, N)  # +5%: inside the 10% location tolerance
    assert judge_metric(spec(distribution=True), x, shifted, 0.98).passed is True
    tail = rng.normal(200, 10, N)
    tail[:20] *= 5  # the upper tail: worse for increase, not for decrease
    fired = judge_metric(spec(distribution=True), x, tail, 0.98)
    assert fired.passed is False and "distribution q" in fired.reason and "beyond band" in fired.reason
    assert judge_metric(spec(distribution=True, direction="decrease"), x, tail, 0.98).passed is True
    low = rng.normal(200, 10, N)
    low[:20] /= 5
    assert judge_metric(spec(distribution=True, direction="decrease"), x, low, 0.98).passed is False
    band = distribution_test(x, tail, 0.98, 0.1, "increase").interval
    assert band[1] == pytest.approx(0.1 * (np.quantile(x, 0.9) - np.quantile(x, 0.1)))


def test_verdict_round_trip_with_shape():
    rng = np.random.default_rng(8)
    config = config_from_mapping(
        {"metrics": [{"name": "latency", "scale": True, "distribution": 0.2, "zeros": True}, {"name": "cpu"}]}
    )
    samples = {
        "latency": (rng.normal(100, 10, N), rng.normal(100, 30, N)),
        "cpu": (rng.normal(50, 5, N), rng.normal(50, 5, N)),
    }
    verdict = judge(config, samples)
    out = json.loads(json.dumps(verdict.to_dict()))  # JSON-ready: no inf, no numpy types
    latency, cpu = out["metrics"]
    assert set(latency["shape"]) == {"scale", "distribution", "zeros"} and "shape" not in cpu
    assert latency["shape"]["distribution"]["band"][1] > 0 and latency["shape"]["zeros"]["fired"] is False
    assert Verdict.from_dict(out).to_dict() == out
    assert any("Brown-Forsythe" in r for r in verdict.reasons)


# --- config --------------------------------------------------------------------------------------------------


def test_shape_keys_and_their_defaults():
    metric = spec(scale=True, distribution=0.3, zeros=False)
    assert metric.shape_tests() == {"scale": 0.2, "distribution": 0.3}
    assert spec(zeros=True).shape_tests() == {"zeros": 0.05} and spec().shape_tests() == {}
    assert spec(scale=1).shape_tolerance("scale") == 1.0
    # a stored run's config (to_dict) reads back the same; metrics without shape keys store none
    config = config_from_mapping({"metrics": [{"name": "a", "scale": True, "zeros": 0.1}, {"name": "b"}]})
    assert config_from_mapping(config.to_dict()) == config
    stored = config.to_dict()["metrics"]
    assert stored[0]["scale"] is True and stored[0]["zeros"] == 0.1 and "scale" not in stored[1]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"metrics": [{"name": "m", "scale": -0.1}]}, "metrics[0].scale: expected true, false or a tolerance"),
        ({"metrics": [{"name": "m", "distribution": "wide"}]}, "metrics[0].distribution: expected true, false"),
        ({"metrics": [{"name": "m", "zeros": 1.5}]}, "metrics[0].zeros: expected a tolerance below 1"),
        ({"metrics": [{"name": "m", "shape": True}]}, "metrics[0]: unknown key(s) ['shape']"),
        (
            {"metrics": [{"name": "m", "test": "proportion", "zeros": True}]},
            "metrics[0].zeros: shape tests need test: mann-whitney",
        ),
        (
            {"mode": "sequential", "metrics": [{"name": "a"}, {"name": "m", "scale": 0.5}]},
            "metrics[1].scale: shape tests are fixed-horizon; not available in mode: sequential",
        ),
    ],
)
def test_config_refusals_name_the_field(raw, message):
    with pytest.raises(CanaryConfigError) as exc:
        config_from_mapping(raw)
    assert message in str(exc.value)


# --- simulations at n = 200 per side -------------------------------------------------------------------------


def _variance3(rng):  # variance x3, same median (normal: the median is the centre)
    return rng.normal(100, 10, N), 100 + math.sqrt(3) * (rng.normal(100, 10, N) - 100)


def _bimodal(rng):  # 10% of the canary's samples at 5x
    y = lognormal(rng)
    y[rng.random(N) < 0.1] *= 5
    return lognormal(rng), y


def _zero_inflation(rng):  # 8% -> 30% non-zero
    return zero_inflated(rng, 0.08), zero_inflated(rng, 0.30)


def _aa_lognormal(rng):
    return lognormal(rng), lognormal(rng)


def _aa_zero_inflated(rng):
    return zero_inflated(rng, 0.08), zero_inflated(rng, 0.08)


SCENARIOS = {
    "variance x3": (_variance3, "scale"),
    "bimodal": (_bimodal, "distribution"),
    "zero inflation": (_zero_inflation, "zeros"),
}


def failure_rates(generate, metric, runs: int, seed: int) -> tuple[float, dict[str, float]]:
    """The share of runs the metric fails, and the share each shape test fired in."""
    rng = np.random.default_rng(seed)
    failed, fired = 0, dict.fromkeys(metric.shape_tests(), 0)
    for _ in range(runs):
        result = judge_metric(metric, *generate(rng), 0.98)
        failed += result.passed is False
        for test, shape in (result.shape or {}).items():
            fired[test] += shape["fired"]
    return failed / runs, {t: f / runs for t, f in fired.items()}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_shape_change_is_caught_in_90_percent_of_runs(scenario):
    generate, test = SCENARIOS[scenario]
    runs = 200
    # its own test alone
    rate, _ = failure_rates(generate, spec(**{test: True}), runs, seed=11)
    assert rate >= 0.9, (scenario, test, rate)
    # all three on
    rate, fired = failure_rates(generate, spec(scale=True, distribution=True, zeros=True), runs, seed=12)
    assert rate >= 0.9 and fired[test] >= 0.9, (scenario, fired)


@pytest.mark.parametrize("generate", [_aa_lognormal, _aa_zero_inflated])
def test_a_over_a_false_fails_at_most_alpha(generate):
    rate, fired = failure_rates(generate, spec(scale=True, distribution=True, zeros=True), 200, seed=13)
    assert rate <= ALPHA, (rate, fired)


# --- the CLI -------------------------------------------------------------------------------------------------


def test_cli_judge_fails_a_variance_only_change_on_scale(tmp_path, gatewatch):
    rng = np.random.default_rng(14)
    rows = [{"metric": "latency", "group": "baseline", "value": v} for v in rng.normal(200, 10, 150)]
    rows += [{"metric": "latency", "group": "canary", "value": v} for v in rng.normal(200, 30, 150)]
    pd.DataFrame(rows).to_csv(tmp_path / "samples.csv", index=False)
    (tmp_path / "canary.yaml").write_text(
        "metrics:\n  - name: latency\n    direction: increase\n    critical: true\n    scale: true\n"
    )
    (tmp_path / "plain.yaml").write_text("metrics:\n  - name: latency\n    direction: increase\n    critical: true\n")
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = ("--db", url, "canary", "judge", "--data", str(tmp_path / "samples.csv"))
    res = gatewatch(*args, "--config", str(tmp_path / "canary.yaml"))
    assert res.returncode == 1, res.stderr
    assert "FAIL latency" in res.stdout and "scale ×" in res.stdout and "(Brown-Forsythe" in res.stdout
    assert "verdict: FAIL" in res.stdout
    as_json = json.loads(gatewatch(*args, "--config", str(tmp_path / "canary.yaml"), "--json").stdout)
    assert as_json["metrics"][0]["shape"]["scale"]["fired"] is True
    plain = gatewatch(*args, "--config", str(tmp_path / "plain.yaml"))
    assert plain.returncode == 0 and "verdict: PASS" in plain.stdout  # the shift alone sees nothing


def test_a_gate_check_that_sets_mode_sequential_refuses_shape_tests(tmp_path, gatewatch):
    rng = np.random.default_rng(15)
    rows = [
        {"metric": "latency", "group": g, "value": v} for g in ("baseline", "canary") for v in rng.normal(200, 10, 50)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "samples.csv", index=False)
    (tmp_path / "canary.yaml").write_text("metrics:\n  - name: latency\n    scale: true\n")
    check = "  - canary: {config: canary.yaml, data: samples.csv, mode: sequential}\n    on_fail: rollback\n"
    (tmp_path / "gate.yaml").write_text("name: g\nchecks:\n" + check)
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = gatewatch("--db", url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"), "--key", "k1")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "metrics[0].scale: shape tests are fixed-horizon; not available in mode: sequential" in res.stderr


def test_a_canary_with_spread_where_the_baseline_has_none_is_wider():
    """No ratio to bound when the baseline has no spread: a significant spread in the canary is still
    wider (fail closed), and two samples without spread are not."""
    rng = np.random.default_rng(12)
    flat, noisy = np.full(N, 100.0), 100 * np.exp(0.3 * rng.standard_normal(N))
    result = scale_test(flat, noisy, 0.98, 0.2)
    assert result.fired and result.estimate == math.inf and "scale" in result.reason
    assert result.p_value == pytest.approx(stats.levene(flat, noisy, center="median").pvalue / 2, rel=1e-8)
    assert not scale_test(flat, flat.copy(), 0.98, 0.2).fired
    assert not scale_test(noisy, flat, 0.98, 0.2).fired  # narrower: worse only for direction either
    assert scale_test(noisy, flat, 0.98, 0.2, "either").fired
