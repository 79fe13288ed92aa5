"""Kayenta compatibility: effect sizes on the mean ratio (`allowedIncrease`/`allowedDecrease`,
`criticalIncrease`/`criticalDecrease`), the IQR outlier factor, and `gatewatch canary import-kayenta`
on real Kayenta configs (tests/fixtures/kayenta/README.md says where they come from)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.canary import CanaryConfigError, Verdict, config_from_mapping, judge, judge_metric
from analysis.canary.judge import iqr_filter, mean_ratio
from analysis.canary.kayenta import from_kayenta
from gatewatch import api
from gatewatch.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kayenta"
BASE = 100.0 + np.linspace(-1.0, 1.0, 50)  # mean 100


def spec(**fields):
    return config_from_mapping({"metrics": [{"name": "latency", "tolerance": 0.0, **fields}]}).metrics[0]


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


# --- effect sizes ----------------------------------------------------------------------------------------


def test_a_significant_shift_within_the_allowed_increase_passes():
    # canary = 1.05 x baseline: the interval of the shift is all above 0 (significant), the mean ratio 1.05
    plain = judge_metric(spec(), BASE, 1.05 * BASE, 0.98)
    assert plain.classification == "high" and plain.passed is False
    assert plain.ci[0] > 0 and plain.mean_ratio == pytest.approx(1.05)
    within = judge_metric(spec(effect_size={"allowed_increase": 1.10}), BASE, 1.05 * BASE, 0.98)
    assert within.classification == "pass" and within.passed is True
    assert "significant but mean ratio 1.05 within allowed increase 1.10" in within.reason
    beyond = judge_metric(spec(effect_size={"allowed_increase": 1.04}), BASE, 1.05 * BASE, 0.98)
    assert beyond.classification == "high" and beyond.passed is False
    assert "mean ratio 1.05 beyond allowed increase 1.04" in beyond.reason


def test_the_allowed_increase_is_reached_at_equality_as_in_kayenta():
    # Kayenta's MannWhitneyClassifier: High needs deviation >= allowedIncrease. Means 80 and 100: ratio 1.25.
    baseline, canary = np.arange(70.0, 91.0), np.arange(90.0, 111.0)
    assert mean_ratio(float(baseline.mean()), float(canary.mean())) == 1.25
    at = judge_metric(spec(effect_size={"allowed_increase": 1.25}), baseline, canary, 0.98)
    assert at.classification == "high" and at.passed is False
    above = judge_metric(spec(effect_size={"allowed_increase": 1.2501}), baseline, canary, 0.98)
    assert above.passed is True


def test_the_allowed_decrease_for_a_metric_where_lower_is_worse():
    metric = {"direction": "decrease"}
    within = judge_metric(spec(**metric, effect_size={"allowed_decrease": 0.90}), BASE, 0.95 * BASE, 0.98)
    assert within.classification == "pass" and "within allowed decrease 0.90" in within.reason
    beyond = judge_metric(spec(**metric, effect_size={"allowed_decrease": 0.96}), BASE, 0.95 * BASE, 0.98)
    assert beyond.classification == "low" and beyond.passed is False
    # allowed_increase alone does not excuse a decrease
    other = judge_metric(spec(**metric, effect_size={"allowed_increase": 2.0}), BASE, 0.95 * BASE, 0.98)
    assert other.passed is False


def test_a_side_left_out_is_kayentas_default_1():
    # a significant rise of the bulk whose mean falls (one low value): not a `high` once effect sizes apply
    baseline = BASE.copy()
    canary = 1.05 * BASE
    canary[0] = -2000.0  # canary sum 5250 - 1.05 x 99 - 2000 = 3146.05: mean 62.921, ratio 0.62921
    plain = judge_metric(spec(), baseline, canary, 0.98)
    assert plain.classification == "high" and plain.mean_ratio == pytest.approx(0.62921)
    ratio_under_1 = judge_metric(spec(effect_size={"allowed_decrease": 0.5}), baseline, canary, 0.98)
    assert ratio_under_1.classification == "pass"
    assert "within allowed increase 1.00" in ratio_under_1.reason


def test_the_mean_ratio_when_a_mean_is_zero_or_negative():
    assert mean_ratio(0.0, 0.0) == 1.0
    assert mean_ratio(0.0, 3.0) == float("inf")  # Kayenta takes 1 here; a rise from zero is not excused
    assert mean_ratio(-1.0, 2.0) is None and mean_ratio(2.0, -1.0) is None
    zeros = np.zeros(50)
    errors = judge_metric(spec(effect_size={"allowed_increase": 5.0}), zeros + 0.0, zeros + 1.0, 0.98)
    assert errors.passed is False and errors.mean_ratio is None


def critical_config(critical_effect_size=None):
    latency = {"name": "latency", "tolerance": 0.0, "critical": True, "group": "all"}
    if critical_effect_size:
        latency["critical_effect_size"] = critical_effect_size
    others = [{"name": f"m{i}", "tolerance": 0.0, "group": "all"} for i in range(3)]
    return config_from_mapping({"metrics": [latency, *others]})


def critical_samples(factor: float):
    return {"latency": (BASE, factor * BASE), **{f"m{i}": (BASE, BASE) for i in range(3)}}


def test_the_critical_effect_size_decides_whether_a_failing_critical_metric_fails_the_canary():
    # Without a critical effect size, a failing critical metric fails the canary (Kayenta's default 1.0).
    plain = judge(critical_config(), critical_samples(1.2))
    assert plain.verdict == "fail" and plain.reasons[0] == "critical metric failed: latency"
    # 1.2x is a failure, under the critical increase 1.5: scored as any failure, 3 of 4 pass -> 75: marginal.
    config = critical_config({"critical_increase": 1.5})
    under = judge(config, critical_samples(1.2))
    latency = under.metrics[0]
    assert latency.passed is False and latency.critical_failure is False
    assert "mean ratio 1.20 within critical increase 1.50 (not a critical failure)" in latency.reason
    assert under.verdict == "marginal" and under.score == 75.0
    beyond = judge(config, critical_samples(1.6))
    assert beyond.metrics[0].critical_failure is True
    assert beyond.verdict == "fail" and beyond.reasons[0] == "critical metric failed: latency"
    # only the side that is given is checked; the other side: any failure is critical, as Kayenta's 1.0
    only_decrease = critical_config({"critical_decrease": 0.5})
    assert judge(only_decrease, critical_samples(1.2)).verdict == "fail"


def test_new_result_fields_round_trip_through_a_stored_verdict():
    verdict = judge(critical_config({"critical_increase": 1.5}), critical_samples(1.2))
    again = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again.metrics[0].mean_ratio == pytest.approx(1.2)
    assert again.metrics[0].critical_failure is False and again.verdict == "marginal"
    assert "critical_failure" not in verdict.to_dict()["metrics"][1]  # only where an effect size decided
    assert verdict.to_dict()["metrics"][1]["mean_ratio"] == 1.0


def test_the_proportion_test_takes_the_ratio_of_rates():
    metric = spec(test="proportion", effect_size={"allowed_increase": 1.5})
    baseline = np.array([[10.0, 1000.0]] * 100)  # 1%
    canary = np.array([[13.0, 1000.0]] * 100)  # 1.3%: significant, ratio 1.3
    plain = judge_metric(spec(test="proportion"), baseline, canary, 0.98)
    assert plain.classification == "high" and plain.ci[0] > 0
    result = judge_metric(metric, baseline, canary, 0.98)
    assert result.mean_ratio == pytest.approx(1.3) and result.passed is True
    assert "within allowed increase 1.50" in result.reason


# --- outliers --------------------------------------------------------------------------------------------

# Hand computation (numpy's linear percentiles, 12 values): Q1 = 12 + 0.75 = 12.75, Q3 = 18 + 0.25 = 18.25,
# IQR 5.5. Factor 1.5: fences [4.5, 26.5] drop 30 and 40. Factor 3 (Kayenta's): [-3.75, 34.75] drop 40 only.
SPIKY = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 30, 40], dtype=float)


def test_the_outlier_factor_moves_the_fences():
    assert iqr_filter(SPIKY).tolist() == list(range(10, 20))
    assert iqr_filter(SPIKY, 1.5).tolist() == list(range(10, 20))
    assert iqr_filter(SPIKY, 3.0).tolist() == [*range(10, 20), 30]
    with pytest.raises(ValueError, match="above 0"):
        iqr_filter(SPIKY, 0.0)
    default = judge_metric(spec(outliers="iqr", min_samples=5), SPIKY, SPIKY, 0.9)
    kayenta = judge_metric(spec(outliers="iqr", outlier_factor=3, min_samples=5), SPIKY, SPIKY, 0.9)
    assert default.baseline["n"] == 10 and kayenta.baseline["n"] == 11


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"outlier_factor": 3}, "metrics[0].outlier_factor: applies with outliers: iqr only"),
        ({"outliers": "iqr", "outlier_factor": 0}, "metrics[0].outlier_factor: expected a value above 0"),
        (
            {"critical_effect_size": {"critical_increase": 2}},
            "metrics[0].critical_effect_size: applies to critical metrics only",
        ),
        ({"effect_size": {}}, "metrics[0].effect_size: expected allowed_increase and/or allowed_decrease"),
        (
            {"effect_size": {"allowed_increase": 0.9}},
            "metrics[0].effect_size.allowed_increase: expected a value at least 1",
        ),
        (
            {"effect_size": {"allowed_decrease": 1.1}},
            "metrics[0].effect_size.allowed_decrease: expected a value at most 1",
        ),
        ({"effect_size": {"allowed_rise": 1.1}}, "metrics[0].effect_size: unknown key(s) ['allowed_rise']"),
    ],
)
def test_bad_effect_and_outlier_settings_name_the_field(fields, message):
    with pytest.raises(CanaryConfigError) as caught:
        config_from_mapping({"metrics": [{"name": "x", **fields}]})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("key", ["effect_size", "critical_effect_size"])
def test_sequential_mode_refuses_effect_sizes(key):
    value = {"allowed_increase": 1.1} if key == "effect_size" else {"critical_increase": 2.0}
    raw = {"mode": "sequential", "metrics": [{"name": "a"}, {"name": "b", "critical": True, key: value}]}
    with pytest.raises(CanaryConfigError, match=rf"^metrics\[1\]\.{key}: effect sizes are a fixed-horizon notion"):
        config_from_mapping(raw)
    raw["mode"] = "fixed"
    assert config_from_mapping(raw).metrics[1].model_dump()[key] is not None


# --- import: the mapping ---------------------------------------------------------------------------------


def test_import_of_kayentas_prometheus_integration_config():
    config, notes = from_kayenta(load("canary-config-prometheus-cpu-only.json"))
    assert config == {
        "confidence": 0.98,
        "thresholds": {"pass": 75.0, "marginal": 50.0},
        "group_weights": {"pod-group": 100.0},
        "metrics": [
            {
                "name": "CPU usage for service",
                "group": "pod-group",
                "direction": "increase",
                "tolerance": 0.0,
                "critical": True,
            }
        ],
    }
    assert notes == [
        "metrics[0].query.customFilterTemplate: uses Kayenta template variable(s) ['${namespace}'], which "
        "Gatewatch does not fill; query not translated: set query"
    ]
    config_from_mapping(config)


def test_import_of_an_adhoc_request_takes_its_thresholds():
    config, notes = from_kayenta(load("newrelic_adhoc_canary.json"))
    assert config["thresholds"] == {"pass": 95.0, "marginal": 75.0}
    assert config["group_weights"] == {"err": 70.0, "app": 30.0}
    assert [(m["name"], m["group"], m["direction"]) for m in config["metrics"]] == [
        ("errorRate", "err", "either"),  # Kayenta's default direction is either
        ("transactionTime", "app", "either"),
    ]
    assert all("query" not in m for m in config["metrics"])
    assert notes == [
        f"canaryConfig.metrics[{i}].query.type: 'newrelic' query not translated (Gatewatch reads Prometheus or "
        "CloudWatch); set query or cloudwatch (or judge from a CSV file)"
        for i in (0, 1)
    ]
    # thresholds given by the caller win
    assert from_kayenta(load("newrelic_adhoc_canary.json"), 80, 60)[0]["thresholds"] == {"pass": 80.0, "marginal": 60.0}


def test_import_of_every_option():
    config, notes = from_kayenta(load("every-option.json"))
    latency, errors, throughput, cpu = config["metrics"]
    assert latency == {
        "name": "latency_p99",
        "query": 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="checkout", '
        "{scope}}[1m])))",
        "group": "latency",
        "direction": "increase",
        "tolerance": 0.0,
        "critical": True,
        "on_nodata": "fail",
        "effect_size": {"allowed_increase": 1.1},
        "critical_effect_size": {"critical_increase": 1.5},
        "outliers": "iqr",
        "outlier_factor": 3.0,
    }
    assert errors["query"] == 'sum by (instance) (http_requests_total{job="checkout", code=~"5..", {scope}})'
    assert errors["effect_size"] == {"allowed_increase": 1.2} and "critical_effect_size" not in errors
    assert throughput["query"] == 'http_requests_total{job="checkout", {scope}}'
    assert throughput["effect_size"] == {"allowed_decrease": 0.9} and throughput["outlier_factor"] == 3.0
    assert "query" not in cpu and "effect_size" not in cpu and cpu["direction"] == "either"
    assert config["group_weights"] == {"latency": 50.0, "errors": 30.0, "traffic": 20.0}
    assert config["thresholds"] == {"pass": 90.0, "marginal": 70.0}
    assert [n.split(":")[0] for n in notes] == [
        "metrics[1].analysisConfigurations.canary.effectSize.criticalIncrease",
        "metrics[2].groups",
        "metrics[2].analysisConfigurations.canary.nanStrategy",
        "metrics[3].analysisConfigurations.canary.effectSize.measure",
        "metrics[3].query.type",
    ]
    assert "'cles' is not supported" in notes[3] and "'stackdriver' query not translated" in notes[4]
    assert config_from_mapping(config).metrics[0].critical_effect_size is not None


def prometheus_metric(**query):
    return {
        "metrics": [{"name": "m", "query": {"type": "prometheus", **query}, "analysisConfigurations": {"canary": {}}}],
        "templates": {"t": 'job="api", version=~"${scope}"'},
        "classifier": {"scoreThresholds": {"pass": 90, "marginal": 50}},
    }


@pytest.mark.parametrize(
    ("query", "expected", "note"),
    [
        ({"metricName": "up"}, "up{{scope}}", None),
        ({"metricName": "up", "labelBindings": ['job="a"']}, 'up{job="a", {scope}}', None),
        ({"metricName": "up", "customFilterTemplate": "t"}, 'up{job="api", {scope}}', None),
        ({"metricName": "up", "customFilter": 'job="a"'}, 'up{job="a", {scope}}', "no ${scope} matcher"),
        ({"metricName": "up", "customFilterTemplate": "nope"}, None, "template 'nope' is not in the config"),
        ({"customInlineTemplate": 'PromQL:sum(up{version="${scope}"})'}, "sum(up{{scope}})", None),
        ({"customInlineTemplate": 'sum(up{pod=~"${scope}.*"})'}, None, 'other than as label="${scope}"'),
        ({"customInlineTemplate": "sum(up)"}, None, "no label"),
        ({}, None, "metricName: missing"),
    ],
)
def test_prometheus_queries_become_promql_templates_with_scope(query, expected, note):
    config, notes = from_kayenta(prometheus_metric(**query))
    assert config["metrics"][0].get("query") == expected
    assert (note is None and notes == []) or (note is not None and len(notes) == 1 and note in notes[0])


def test_import_notes_missing_thresholds_and_refuses_what_is_not_a_kayenta_config():
    raw = prometheus_metric(metricName="up")
    del raw["classifier"]
    config, notes = from_kayenta(raw)
    assert "thresholds" not in config and notes[0].startswith("scoreThresholds: none in the file")
    for bad in ({}, {"metrics": []}, {"metrics": [{"name": "x"}]}, [1, 2]):
        with pytest.raises(ValueError, match="not a Kayenta canary config"):
            from_kayenta(bad)  # type: ignore[arg-type]


def test_the_api_validates_the_import_and_names_a_bad_file(tmp_path):
    result = api.import_kayenta_config(FIXTURES / "every-option.json")
    assert isinstance(result, api.KayentaImport) and len(result.notes) == 5
    assert yaml.safe_load(result.yaml) == result.config and result.canary is not None
    assert result.yaml.startswith("# Gatewatch canary config imported from Kayenta canary config 'checkout golden")
    with pytest.raises(ConfigError, match="no such file"):
        api.import_kayenta_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match=r"thresholds\.pass: expected a value at most 100"):
        api.import_kayenta_config(FIXTURES / "every-option.json", pass_threshold=120)


# --- import: the command ---------------------------------------------------------------------------------


def write_samples(path: Path, latency_factor: float) -> None:
    rows = []
    for group, factor in (("baseline", 1.0), ("canary", latency_factor)):
        rows += [{"metric": "latency_p99", "group": group, "value": v} for v in factor * BASE]
        for name in ("errors", "throughput", "cpu"):
            rows += [{"metric": name, "group": group, "value": v} for v in BASE]
    pd.DataFrame(rows).to_csv(path, index=False)


def test_import_kayenta_end_to_end_then_judge(tmp_path, gatewatch):
    out = tmp_path / "canary.yaml"
    imported = gatewatch("canary", "import-kayenta", str(FIXTURES / "every-option.json"), "--out", str(out))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == ""
    lines = imported.stderr.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("note: metrics[") for line in lines[:5])
    assert lines[-1] == f"wrote {out}: 4 metric(s), 5 note(s)"
    assert api.load_canary_config(out).metrics[0].effect_size.allowed_increase == 1.1

    # +5% latency: significant, within the allowed increase 1.10: the canary passes
    write_samples(tmp_path / "small.csv", 1.05)
    small = gatewatch(
        "canary", "judge", "--config", str(out), "--data", str(tmp_path / "small.csv"), "--no-store", "--json"
    )
    assert small.returncode == 0, small.stderr
    verdict = json.loads(small.stdout)
    latency = verdict["metrics"][0]
    assert verdict["verdict"] == "pass" and latency["classification"] == "pass"
    assert latency["mean_ratio"] == pytest.approx(1.05) and "within allowed increase 1.10" in latency["reason"]

    # +60%: beyond the critical increase 1.5 of a critical metric: the canary fails
    write_samples(tmp_path / "large.csv", 1.6)
    large = gatewatch(
        "canary", "judge", "--config", str(out), "--data", str(tmp_path / "large.csv"), "--no-store", "--json"
    )
    assert large.returncode == 1, large.stderr
    assert json.loads(large.stdout)["reasons"][0] == "critical metric failed: latency_p99"


def test_import_kayenta_prints_yaml_or_json(gatewatch):
    source = str(FIXTURES / "canary-config-prometheus-cpu-only.json")
    printed = gatewatch("canary", "import-kayenta", source, "--pass", "80", "--marginal", "60")
    assert printed.returncode == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)["thresholds"] == {"pass": 80.0, "marginal": 60.0}
    assert printed.stderr.startswith("note: metrics[0].query.customFilterTemplate:")
    as_json = gatewatch("canary", "import-kayenta", source, "--json")
    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)
    assert document["config"]["metrics"][0]["critical"] is True and len(document["notes"]) == 1
    assert document["out"] is None


def test_import_kayenta_bad_input_exits_2_with_one_line(tmp_path, gatewatch):
    (tmp_path / "broken.json").write_text('{"metrics": [')
    (tmp_path / "other.json").write_text('{"apiVersion": "v1", "kind": "Pod"}')
    cases = {
        str(tmp_path / "missing.json"): "no such file",
        str(tmp_path / "broken.json"): "not valid JSON",
        str(tmp_path / "other.json"): "not a Kayenta canary config",
    }
    for path, problem in cases.items():
        res = gatewatch("canary", "import-kayenta", path)
        assert res.returncode == 2, (path, res.stderr)
        assert res.stderr.count("\n") == 1 and problem in res.stderr and "Traceback" not in res.stderr
        assert path in res.stderr
