"""The judge's rules: bands relative to the baseline median, directions, scores, critical metrics,
missing data, outliers, and config errors that name the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.canary import CanaryConfigError, config_from_mapping, judge, samples_from_frame
from gatewatch.errors import ConfigError

RNG = np.random.default_rng(5)
BASE = RNG.normal(100, 5, 400)
WORSE = RNG.normal(125, 5, 400)  # +25%
BETTER = RNG.normal(80, 5, 400)  # -20%
SAME = RNG.normal(100, 5, 400)


def one(direction="increase", tolerance=0.1, **extra):
    return config_from_mapping({"metrics": [{"name": "m", "direction": direction, "tolerance": tolerance, **extra}]})


@pytest.mark.parametrize(
    "direction, canary, classification, passed",
    [
        ("increase", WORSE, "high", False),
        ("increase", BETTER, "low", True),
        ("decrease", WORSE, "high", True),
        ("decrease", BETTER, "low", False),
        ("either", WORSE, "high", False),
        ("either", BETTER, "low", False),
        ("increase", SAME, "pass", True),
    ],
)
def test_classification_and_direction(direction, canary, classification, passed):
    v = judge(one(direction), {"m": (BASE, canary)})
    (m,) = v.metrics
    assert (m.classification, m.passed) == (classification, passed)
    assert v.verdict == ("pass" if passed else "fail")


def test_band_is_relative_to_the_baseline_median_not_the_estimate():
    # +25% shift with a narrow interval: outside a 20% band, inside a 30% band.
    assert judge(one(tolerance=0.20), {"m": (BASE, WORSE)}).metrics[0].classification == "high"
    assert judge(one(tolerance=0.30), {"m": (BASE, WORSE)}).metrics[0].classification == "pass"


def test_reason_reads_like_a_person_wrote_it():
    m = judge(one(), {"m": (BASE, WORSE)}).metrics[0]
    assert m.reason.startswith("m +2") and "tolerance 10%: worse" in m.reason and "[+" in m.reason
    assert m.relative_shift == pytest.approx(m.shift / abs(m.baseline["median"]))
    assert m.ci[0] < m.shift < m.ci[1] and m.p_value < 1e-10


def test_scores_weights_groups_and_thresholds():
    config = config_from_mapping(
        {
            "thresholds": {"pass": 90, "marginal": 60},
            "metrics": [
                {"name": "a", "group": "latency"},
                {"name": "b", "group": "latency", "weight": 3},
                {"name": "c", "group": "errors"},
            ],
        }
    )
    v = judge(config, {"a": (BASE, WORSE), "b": (BASE, SAME), "c": (BASE, SAME)})
    # latency: 3 of 4 weight passed = 75; errors: 100; equal group weights -> 87.5: marginal.
    assert v.groups == {"latency": 75.0, "errors": 100.0} and v.score == 87.5 and v.verdict == "marginal"
    weighted = config_from_mapping({**config.to_dict(), "group_weights": {"latency": 3, "errors": 1}})
    v = judge(weighted, {"a": (BASE, WORSE), "b": (BASE, SAME), "c": (BASE, SAME)})
    assert v.score == pytest.approx((75 * 3 + 100) / 4) and v.verdict == "marginal"
    v = judge(config, {"a": (BASE, WORSE), "b": (BASE, WORSE), "c": (BASE, SAME)})
    assert v.score == 50.0 and v.verdict == "fail"


def test_a_failing_critical_metric_fails_the_verdict_whatever_the_score():
    config = config_from_mapping({"metrics": [{"name": "a", "critical": True}] + [{"name": f"x{i}"} for i in range(9)]})
    samples = {"a": (BASE, WORSE)} | {f"x{i}": (BASE, SAME) for i in range(9)}
    v = judge(config, samples)
    assert v.score == 90.0 and v.verdict == "fail" and v.reasons[0] == "critical metric failed: a"


def test_missing_data_is_ignored_or_failed_per_metric_never_passed():
    config = config_from_mapping(
        {"metrics": [{"name": "a"}, {"name": "b", "on_nodata": "fail"}, {"name": "c", "min_samples": 500}]}
    )
    v = judge(config, {"a": (BASE, SAME), "c": (BASE, SAME)}, errors={"b": "prometheus unreachable"})
    by = {m.name: m for m in v.metrics}
    assert (by["b"].classification, by["b"].passed) == ("nodata", False)
    assert "prometheus unreachable" in by["b"].reason
    assert (by["c"].classification, by["c"].passed) == ("nodata", None) and "500 needed" in by["c"].reason
    assert v.score == 50.0 and v.verdict == "fail"
    nothing = judge(one(), {}, errors={"m": "timed out"})
    assert nothing.verdict == "nodata" and nothing.score is None
    assert any("timed out" in r for r in nothing.reasons)


def test_iqr_outlier_removal():
    spiky = np.concatenate([SAME, np.full(20, 10_000.0)])  # a few absurd samples
    kept = judge(one(outliers="iqr"), {"m": (BASE, spiky)}).metrics[0].canary["n"]
    tukey = spiky[
        (spiky >= np.percentile(spiky, 25) - 1.5 * (np.percentile(spiky, 75) - np.percentile(spiky, 25)))
        & (spiky <= np.percentile(spiky, 75) + 1.5 * (np.percentile(spiky, 75) - np.percentile(spiky, 25)))
    ]
    assert kept == tukey.size and 390 <= kept <= 400 and tukey.max() < 1000
    assert judge(one(), {"m": (BASE, spiky)}).metrics[0].canary["n"] == 420


def test_proportion_metric_from_good_total_pairs():
    config = config_from_mapping({"metrics": [{"name": "errors", "test": "proportion", "tolerance": 0.2}]})
    baseline = np.array([[10, 1000]] * 10, dtype=float)  # 1% errors
    canary = np.array([[30, 1000]] * 10, dtype=float)  # 3% errors
    (m,) = judge(config, {"errors": (baseline, canary)}).metrics
    assert m.classification == "high" and not m.passed
    assert m.baseline["median"] == pytest.approx(0.01) and m.canary["median"] == pytest.approx(0.03)


def test_samples_from_a_frame():
    frame = pd.DataFrame(
        {
            "metric": ["m", "m", "m", "e", "e"],
            "group": ["baseline", "canary", "canary", "baseline", "canary"],
            "value": [1.0, 2.0, 3.0, None, None],
            "good": [None, None, None, 5, 7],
            "total": [None, None, None, 100, 100],
        }
    )
    samples = samples_from_frame(frame)
    assert samples["m"][1].tolist() == [2.0, 3.0]
    assert samples["e"][0].tolist() == [[5.0, 100.0]]
    with pytest.raises(ConfigError, match="'group': expected baseline or canary"):
        samples_from_frame(frame.assign(group="control"))


@pytest.mark.parametrize(
    "raw, message",
    [
        ({}, "metrics: expected a non-empty list"),
        ({"metrics": [{"name": "m", "direction": "up"}]}, "metrics[0].direction: expected one of increase"),
        ({"metrics": [{"name": "m", "tolerance": "10%"}]}, "metrics[0].tolerance: expected a number"),
        ({"metrics": [{"name": "m", "colour": 1}]}, "metrics[0]: unknown key(s) ['colour']"),
        ({"metrics": [{"name": "m"}, {"name": "m"}]}, "duplicate name"),
        ({"metrics": [{"name": "m"}], "thresholds": {"pass": 70, "marginal": 80}}, "thresholds.marginal"),
        ({"metrics": [{"name": "m"}], "confidence": 1.5}, "confidence"),
    ],
)
def test_config_errors_name_the_field(raw, message):
    with pytest.raises(CanaryConfigError) as err:
        config_from_mapping(raw)
    assert message in str(err.value)
