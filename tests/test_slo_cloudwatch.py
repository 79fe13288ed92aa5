"""SLOs whose SLI is read from CloudWatch: the SLO file's `cloudwatch` SLI, `gatewatch slo status` from
GetMetricData against moto's server (the same figures as the same counts in a CSV file, fail closed when
CloudWatch cannot be read), and `gatewatch slo rules --format cloudwatch|cloudformation`: burn-rate alarms
worked out by hand, every request checked against botocore's CloudWatch model (Stubber) and put into
moto's server and read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber

from analysis.slo import slo_from_mapping
from analysis.slo_alarms import COMPARISON, TREAT_MISSING_DATA, cloudwatch_alarms, period_problem, threshold
from collector.config import config_from_mapping
from collector.telemetry.sli import budget_history, cloudwatch_frame, load_slo, slo_status
from gatewatch.errors import SloError, SourceUnavailable
from gatewatch.services.slos import alarms_template
from gatewatch.services.slos import cloudwatch_alarms as service_alarms
from tests.test_slo_files import run, write_slo

DIMENSIONS = {"Service": "api"}


def cloudwatch_slo(kind: str = "errors", objective: float = 99.9, window: str = "1d", **extra: object) -> dict:
    counted = "Errors" if kind == "errors" else "Good"
    return {
        "service": "api",
        "name": "availability",
        "objective": objective,
        "window": window,
        "sli": {
            "cloudwatch": {
                "region": "us-east-1",
                kind: {"namespace": "MyApp", "metric_name": counted, "dimensions": DIMENSIONS},
                "total": {"namespace": "MyApp", "metric_name": "Requests", "stat": "Sum", "dimensions": DIMENSIONS},
            }
        },
        **extra,
    }


# --- the SLO file -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sli", "message"),
    [
        ({"total": {"namespace": "N", "metric_name": "R"}}, "sli.cloudwatch: expected exactly one of good or errors"),
        (
            {
                "total": {"namespace": "N", "metric_name": "R"},
                "good": {"namespace": "N", "metric_name": "G"},
                "errors": {"namespace": "N", "metric_name": "E"},
            },
            "sli.cloudwatch: expected exactly one of good or errors",
        ),
        (
            {
                "total": {"namespace": "N", "metric_name": "R", "stat": "Average"},
                "errors": {"namespace": "N", "metric_name": "E"},
            },
            "sli.cloudwatch.total.stat: expected Sum or SampleCount",
        ),
        (
            {"total": {"metric_name": "R"}, "errors": {"namespace": "N", "metric_name": "E"}},
            "sli.cloudwatch.total.namespace: required",
        ),
        (
            {
                "total": {"namespace": "N", "metric_name": "R"},
                "errors": {"namespace": "N", "metric_name": "E", "period": 60},
            },
            "sli.cloudwatch.errors: unknown key(s) ['period']",
        ),
    ],
)
def test_a_cloudwatch_sli_is_validated_naming_the_field(sli, message):
    with pytest.raises(SloError) as caught:
        slo_from_mapping({"service": "api", "objective": 99.9, "name": "a", "sli": {"cloudwatch": sli}})
    assert message in str(caught.value)


def test_a_cloudwatch_slo_takes_no_prometheus_server_and_numbers_as_dimension_values():
    with pytest.raises(
        SloError, match=r"prometheus: only used by ratio and threshold SLIs; remove it or replace sli\.cloudwatch"
    ):
        slo_from_mapping(cloudwatch_slo(prometheus={"url": "http://prometheus:9090"}))
    spec = slo_from_mapping(
        cloudwatch_slo()
        | {
            "sli": {
                "cloudwatch": {
                    "errors": {"namespace": "N", "metric_name": "E", "dimensions": {"Port": 8080}},
                    "total": {"namespace": "N", "metric_name": "R"},
                }
            }
        }
    )
    assert spec.sli.kind == "cloudwatch" and spec.sli.cloudwatch.errors.dimensions == {"Port": "8080"}
    assert spec.sli.cloudwatch.total.stat == "Sum" and spec.sli.cloudwatch.counted[0] == "errors"


# --- the alarms, by hand ------------------------------------------------------------------------------------

# (alarm name suffix, period in seconds, threshold) for objective 99.5%: budget 0.005 x the burn rate
EXPECTED = [
    ("burn-14.4x-1h", 3600, 0.072),
    ("burn-14.4x-5m", 300, 0.072),
    ("burn-6x-6h", 21600, 0.03),
    ("burn-6x-30m", 1800, 0.03),
    ("burn-3x-1d", 86400, 0.015),
    ("burn-3x-2h", 7200, 0.015),
    ("burn-1x-3d", 259200, 0.005),
    ("burn-1x-6h", 21600, 0.005),
]


def test_one_alarm_per_window_of_each_pair_with_hand_worked_thresholds_and_a_composite_per_pair():
    spec = slo_from_mapping(cloudwatch_slo(objective=99.5))
    alarms = cloudwatch_alarms(
        spec,
        team="payments",
        runbook_url="https://runbooks.example.com/api",
        actions=["arn:aws:sns:us-east-1:123456789012:page"],
    )
    metric = alarms["PutMetricAlarm"]
    assert [(a["AlarmName"], a["Metrics"][0]["MetricStat"]["Period"], a["Threshold"]) for a in metric] == [
        (f"slo-api-availability-{suffix}", period, limit) for suffix, period, limit in EXPECTED
    ]
    assert threshold(0.999, 14.4) == 0.0144 and threshold(0.999, 6) == 0.006 and threshold(0.9995, 1) == 0.0005
    first = metric[0]
    assert [m["Id"] for m in first["Metrics"]] == ["errors", "total", "ratio"]
    assert [m["ReturnData"] for m in first["Metrics"]] == [False, False, True]
    assert first["Metrics"][2]["Expression"] == "FILL(errors, 0) / total"
    assert first["Metrics"][1]["MetricStat"]["Metric"] == {
        "Namespace": "MyApp",
        "MetricName": "Requests",
        "Dimensions": [{"Name": "Service", "Value": "api"}],
    }
    assert first["TreatMissingData"] == "breaching" and first["ComparisonOperator"] == "GreaterThanThreshold"
    assert first["EvaluationPeriods"] == 1 and first["ActionsEnabled"] is False
    assert {t["Key"]: t["Value"] for t in first["Tags"]} == {
        "slo": "availability",
        "service": "api",
        "team": "payments",
        "severity": "page",
    }
    composite = alarms["PutCompositeAlarm"]
    assert [c["AlarmName"] for c in composite] == [
        "slo-api-availability-page-1h-5m",
        "slo-api-availability-page-6h-30m",
        "slo-api-availability-ticket-1d-2h",
        "slo-api-availability-ticket-3d-6h",
    ]
    assert composite[0]["AlarmRule"] == (
        'ALARM("slo-api-availability-burn-14.4x-1h") AND ALARM("slo-api-availability-burn-14.4x-5m")'
    )
    assert composite[3]["AlarmRule"].endswith('ALARM("slo-api-availability-burn-1x-6h")')
    assert (
        composite[2]["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:page"] and composite[2]["ActionsEnabled"]
    )
    assert {t["Key"]: t["Value"] for t in composite[3]["Tags"]}["severity"] == "ticket"
    assert "Runbook: https://runbooks.example.com/api" in composite[0]["AlarmDescription"]
    assert "burning its error budget too fast" in composite[0]["AlarmDescription"]
    good = cloudwatch_alarms(slo_from_mapping(cloudwatch_slo("good")))
    assert good["PutMetricAlarm"][0]["Metrics"][2]["Expression"] == "1 - FILL(good, 0) / total"
    assert [m["Id"] for m in good["PutMetricAlarm"][0]["Metrics"]] == ["good", "total", "ratio"]
    assert (
        "AlarmActions" not in good["PutCompositeAlarm"][0] and good["PutCompositeAlarm"][0]["ActionsEnabled"] is False
    )


def test_alarm_period_rules_of_put_metric_alarm():
    assert period_problem(300) is None and period_problem(20) is None and period_problem(259200) is None
    assert "10, 20 or 30 s or a multiple of 60 s" in period_problem(45)
    assert period_problem(3600, 168) is None  # 7 days of hourly periods
    assert "at most 7d" in period_problem(3600, 169)
    assert period_problem(60, 1440) is None and "at most 1d" in period_problem(1800, 49)  # under an hour: 1 day
    assert "at most 7d" in period_problem(8 * 86400)  # a window over 7 days is not one alarm period


# --- every request against the service model ----------------------------------------------------------------


def _model_client():
    return boto3.client("cloudwatch", region_name="us-east-1")


def test_every_request_passes_the_cloudwatch_model_and_its_enums_and_limits():
    spec = slo_from_mapping(cloudwatch_slo())
    alarms = cloudwatch_alarms(
        spec,
        team="payments",
        runbook_url="https://runbooks.example.com/api",
        actions=["arn:aws:sns:us-east-1:123456789012:t"],
    )
    client = _model_client()
    model = client.meta.service_model
    metric_shape = model.operation_model("PutMetricAlarm").input_shape.members
    composite_shape = model.operation_model("PutCompositeAlarm").input_shape.members
    with Stubber(client) as stub:
        for body in alarms["PutMetricAlarm"]:
            stub.add_response("put_metric_alarm", {}, expected_params=body)
            client.put_metric_alarm(**body)
        for body in alarms["PutCompositeAlarm"]:
            stub.add_response("put_composite_alarm", {}, expected_params=body)
            client.put_composite_alarm(**body)
        stub.assert_no_pending_responses()
    # what the Stubber does not check: enum values, lengths, and the period rules
    assert COMPARISON in metric_shape["ComparisonOperator"].enum
    assert TREAT_MISSING_DATA in ("breaching", "notBreaching", "ignore", "missing")
    for body in alarms["PutMetricAlarm"]:
        periods = {m["MetricStat"]["Period"] for m in body["Metrics"] if "MetricStat" in m}
        assert len(periods) == 1 and period_problem(periods.pop(), body["EvaluationPeriods"]) is None
        assert sum(m["ReturnData"] for m in body["Metrics"]) == 1
        assert all(m["MetricStat"]["Stat"] in ("Sum", "SampleCount") for m in body["Metrics"] if "MetricStat" in m)
        assert len(body["AlarmName"]) <= metric_shape["AlarmName"].metadata["max"]
        assert len(body["AlarmDescription"]) <= metric_shape["AlarmDescription"].metadata["max"]
        assert all(m["Id"][0].islower() for m in body["Metrics"])
    for body in alarms["PutCompositeAlarm"]:
        assert len(body["AlarmRule"]) <= composite_shape["AlarmRule"].metadata["max"]
        assert len(body["AlarmDescription"]) <= composite_shape["AlarmDescription"].metadata["max"]


def test_the_alarms_go_into_moto_and_read_back(moto_url):
    spec = slo_from_mapping(cloudwatch_slo())
    alarms = cloudwatch_alarms(spec, team="payments")
    client = boto3.client(
        "cloudwatch", region_name="us-east-1", endpoint_url=moto_url, config=BotoConfig(retries={"max_attempts": 1})
    )
    for body in alarms["PutMetricAlarm"]:
        client.put_metric_alarm(**body)
    # moto 5.2 does not implement PutCompositeAlarm: the composites are checked against the model above
    found = client.describe_alarms(AlarmTypes=["MetricAlarm"], AlarmNamePrefix="slo-api-")
    stored = {a["AlarmName"]: a for a in found["MetricAlarms"]}
    assert sorted(stored) == sorted(a["AlarmName"] for a in alarms["PutMetricAlarm"])
    one = stored["slo-api-availability-burn-3x-1d"]
    assert one["Threshold"] == 0.003 and one["TreatMissingData"] == "breaching"
    assert one["ComparisonOperator"] == "GreaterThanThreshold" and one["EvaluationPeriods"] == 1
    assert [m["Id"] for m in one["Metrics"]] == ["errors", "total", "ratio"]
    assert one["Metrics"][1]["MetricStat"]["Period"] == 86400
    assert one["Metrics"][2]["Expression"] == "FILL(errors, 0) / total"
    assert stored["slo-api-availability-burn-1x-3d"]["Metrics"][0]["MetricStat"]["Period"] == 259200


def test_the_cloudformation_template_holds_every_alarm_and_composites_depend_on_theirs():
    spec = slo_from_mapping(cloudwatch_slo())
    alarms = cloudwatch_alarms(spec)
    template = alarms_template([{"service": "api", "name": "availability", "alarms": alarms}])
    resources = template["Resources"]
    kinds = [r["Type"] for r in resources.values()]
    assert kinds.count("AWS::CloudWatch::Alarm") == 8 and kinds.count("AWS::CloudWatch::CompositeAlarm") == 4
    page = resources["SloApiAvailabilityPage1h5m"]
    assert page["DependsOn"] == ["SloApiAvailabilityBurn144x1h", "SloApiAvailabilityBurn144x5m"]
    assert page["Properties"]["AlarmRule"] == alarms["PutCompositeAlarm"][0]["AlarmRule"]
    assert resources["SloApiAvailabilityBurn1x3d"]["Properties"]["Threshold"] == 0.001
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


# --- slo status from CloudWatch (moto) equals the same counts from a CSV file -------------------------------

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MINUTES = 300


def counts() -> list[tuple[datetime, int, int]]:
    """(interval end, errors, total) per minute: 1000 requests a minute; 0.05% errors for 260 minutes,
    then 3% (a 30x burn of a 99.9% objective) for the last 40; every seventh minute publishes no errors."""
    rows = []
    for i in range(MINUTES):
        end = AT - timedelta(minutes=MINUTES - 1 - i)
        errors = 30 if i >= MINUTES - 40 else (0 if i % 7 == 0 else 1)
        rows.append((end, errors, 1000))
    return rows


def put_counts(client, rows, kind: str = "errors") -> None:
    data = []
    for end, errors, total in rows:
        stamp = end - timedelta(seconds=30)  # inside the minute that ends at `end`
        data.append(
            {
                "MetricName": "Requests",
                "Value": total,
                "Timestamp": stamp,
                "Dimensions": [{"Name": "Service", "Value": "api"}],
            }
        )
        value = errors if kind == "errors" else total - errors
        if kind == "good" or errors:  # a minute without errors publishes no Errors datapoint
            name = "Errors" if kind == "errors" else "Good"
            data.append(
                {
                    "MetricName": name,
                    "Value": value,
                    "Timestamp": stamp,
                    "Dimensions": [{"Name": "Service", "Value": "api"}],
                }
            )
    for start in range(0, len(data), 500):
        client.put_metric_data(Namespace="MyApp", MetricData=data[start : start + 500])


@pytest.fixture
def moto_cloudwatch(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    return boto3.client(
        "cloudwatch", region_name="us-east-1", endpoint_url=moto_url, config=BotoConfig(retries={"max_attempts": 1})
    )


@pytest.mark.parametrize("kind", ["errors", "good"])
def test_status_from_cloudwatch_is_the_status_of_the_same_counts_in_a_csv_file(tmp_path, moto_cloudwatch, kind):
    rows = counts()
    put_counts(moto_cloudwatch, rows, kind)
    pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t, _, _ in rows],
            "good": [n - e for _, e, n in rows],
            "total": [n for *_, n in rows],
        }
    ).to_csv(tmp_path / "sli.csv", index=False)
    from_cloudwatch = load_slo(write_slo(tmp_path, "cw", cloudwatch_slo(kind)))
    from_csv = load_slo(write_slo(tmp_path, "csv", cloudwatch_slo() | {"sli": {"data": "sli.csv"}}))
    frame = cloudwatch_frame(from_cloudwatch, AT - timedelta(hours=6), AT)
    assert len(frame) == MINUTES and frame["timestamp"].iloc[-1] == pd.Timestamp(AT)
    got, expected = slo_status(from_cloudwatch, AT), slo_status(from_csv, AT)
    assert got.to_dict() == expected.to_dict()
    # by hand: 300 000 requests; 40 x 30 + 260 - 38 (minutes 0, 7, ..., 259 without errors) bad events
    assert got.total == 300_000 and got.total - got.good == 1200 + 260 - 38
    assert got.budget_remaining == pytest.approx(1 - 1422 / 300)
    firing = {(a.severity, a.short_window) for a in got.firing}
    assert ("page", timedelta(minutes=5)) in firing and got.stale is None
    start = AT - timedelta(hours=2)
    pd.testing.assert_frame_equal(budget_history(from_cloudwatch, start, AT, 5), budget_history(from_csv, start, AT, 5))


def test_history_older_than_15_days_is_read_at_5_minute_periods_and_points_end_their_period():
    spec = slo_from_mapping(cloudwatch_slo(window="28d"))
    at = AT + timedelta(seconds=30)  # read up to the last whole minute
    fine_start = datetime(2026, 11, 5, 13, 0, tzinfo=UTC)  # 15 days back, rounded up to the hour
    client = boto3.client("cloudwatch", region_name="us-east-1")

    def queries(period: int) -> list[dict]:
        return [spec.sli.cloudwatch.errors.query("errors", period), spec.sli.cloudwatch.total.query("total", period)]

    def answer(stamp: datetime, errors: float, total: float) -> dict:
        return {
            "MetricDataResults": [
                {"Id": "errors", "Timestamps": [stamp], "Values": [errors], "StatusCode": "Complete"},
                {"Id": "total", "Timestamps": [stamp], "Values": [total], "StatusCode": "Complete"},
            ]
        }

    with Stubber(client) as stub:
        for period, start, end, stamp, errors, total in (
            (60, fine_start, AT, AT - timedelta(minutes=1), 1.0, 100.0),
            (300, AT - timedelta(days=28), fine_start, AT - timedelta(days=20), 5.0, 500.0),
        ):
            expected = {
                "MetricDataQueries": queries(period),
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            stub.add_response("get_metric_data", answer(stamp, errors, total), expected_params=expected)
        frame = cloudwatch_frame(spec, at - timedelta(days=28), at, client=client)
        stub.assert_no_pending_responses()
    assert frame["timestamp"].tolist() == [
        pd.Timestamp(AT - timedelta(days=20) + timedelta(minutes=5)),
        pd.Timestamp(AT),
    ]
    assert frame["good"].tolist() == [495.0, 99.0] and frame["total"].tolist() == [500.0, 100.0]


def test_status_fails_closed_when_cloudwatch_cannot_be_read_or_holds_nothing(tmp_path, moto_cloudwatch, monkeypatch):
    path = write_slo(tmp_path, "cw", cloudwatch_slo())
    spec = load_slo(path)
    empty = slo_status(spec, AT)  # no datapoints at all: stale, never ok
    assert empty.stale == "stale: no SLI data at or before this time" and empty.sli is None
    done = run("slo", "status", "--slo", str(path), "--at", AT.isoformat())
    assert done.returncode == 3 and "no data: exit 3" in done.stdout
    for code in ("Throttling", "AccessDenied"):
        client = boto3.client("cloudwatch", region_name="us-east-1")
        with Stubber(client) as stub:
            stub.add_client_error("get_metric_data", service_error_code=code, http_status_code=400)
            with pytest.raises(
                SourceUnavailable, match=f"CloudWatch could not be read for SLO api/availability: ClientError: .*{code}"
            ):
                cloudwatch_frame(spec, AT - timedelta(days=1), AT, client=client)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    down = run("slo", "status", "--slo", str(path), "--at", AT.isoformat())
    assert down.returncode == 5 and "CloudWatch could not be read for SLO api/availability" in down.stderr


def test_status_cli_reads_cloudwatch(tmp_path, moto_cloudwatch):
    put_counts(moto_cloudwatch, counts())
    path = write_slo(tmp_path, "cw", cloudwatch_slo())
    done = run("slo", "status", "--slo", str(path), "--at", AT.isoformat(), "--json")
    assert done.returncode == 1, done.stderr  # the page pair fires
    report = json.loads(done.stdout)
    assert report["total"] == 300_000 and report["firing"][0]["severity"] == "page"
    shown = run("slo", "status", "--slo", str(path), "--at", AT.isoformat())
    assert "cloudwatch SLI" in shown.stdout and "FIRING" in shown.stdout


# --- the CLI ------------------------------------------------------------------------------------------------


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    folder = tmp_path / "slos"
    folder.mkdir()
    write_slo(folder, "api", cloudwatch_slo(runbook_url="https://wiki.example.com/api-slo"))
    write_slo(folder, "checkout", cloudwatch_slo("good") | {"service": "checkout"})
    write_slo(
        folder,
        "web",
        {
            "service": "web",
            "objective": 99,
            "prometheus": {"url": "http://prometheus:9090"},
            "sli": {"ratio": {"good": 'http_requests_total{code!~"5.."}', "total": "http_requests_total"}},
        },
    )
    (folder / "sli.csv").write_text("timestamp,good,total\n2024-05-01T00:00:00Z,1,1\n")
    write_slo(folder, "batch", {"service": "batch", "objective": 99, "sli": {"data": "sli.csv"}})
    (tmp_path / "gatewatch.yaml").write_text(json.dumps({"slos": str(folder), "teams": {"api": "payments"}}))
    return folder


def test_cli_writes_alarms_per_cloudwatch_slo_and_says_why_others_are_skipped(tmp_path, mixed_folder):
    config = str(tmp_path / "gatewatch.yaml")
    out = tmp_path / "alarms"
    arn = "arn:aws:sns:us-east-1:123456789012:oncall"
    done = run(
        "--config", config, "slo", "rules", "--all", "--format", "cloudwatch", "--out", str(out), "--alarm-action", arn
    )
    assert done.returncode == 1, done.stderr
    assert "note: SLO batch/batch skipped: its SLI is read from a CSV file" in done.stderr
    assert "not CloudWatch" in done.stderr
    assert (
        "note: SLO web/web skipped: its SLI is read from a Prometheus query, not CloudWatch (use --format prometheus)"
        in done.stderr
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "api-availability.alarms.json",
        "checkout-availability.alarms.json",
    ]
    assert f"wrote {out / 'api-availability.alarms.json'}: 12 alarms for api/availability" in done.stdout
    api = json.loads((out / "api-availability.alarms.json").read_text())
    assert len(api["PutMetricAlarm"]) == 8 and api["PutCompositeAlarm"][0]["AlarmActions"] == [arn]
    assert {t["Key"]: t["Value"] for t in api["PutCompositeAlarm"][0]["Tags"]}["team"] == "payments"
    assert "Runbook: https://wiki.example.com/api-slo" in api["PutCompositeAlarm"][0]["AlarmDescription"]
    client = _model_client()
    with Stubber(client) as stub:  # the file's bodies are requests as they stand
        for body in api["PutMetricAlarm"]:
            stub.add_response("put_metric_alarm", {}, expected_params=body)
            client.put_metric_alarm(**body)

    printed = run("--config", config, "slo", "rules", "--slo", str(mixed_folder / "api.yaml"), "--format", "cloudwatch")
    assert printed.returncode == 0 and printed.stderr == ""
    bodies = json.loads(printed.stdout)
    assert [(b["service"], len(b["PutMetricAlarm"]), len(b["PutCompositeAlarm"])) for b in bodies] == [("api", 8, 4)]

    template = run("--config", config, "slo", "rules", "--all", "--format", "cloudformation")
    assert template.returncode == 1
    resources = json.loads(template.stdout)["Resources"]
    assert sum(r["Type"] == "AWS::CloudWatch::CompositeAlarm" for r in resources.values()) == 8  # two SLOs

    as_json = run("--config", config, "slo", "rules", "--all", "--format", "cloudwatch", "--json")
    report = json.loads(as_json.stdout)
    assert [s["name"] for s in report["skipped"]] == ["batch", "web"]
    assert report["slos"][0]["alarms"]["PutMetricAlarm"][0]["AlarmName"] == "slo-api-availability-burn-14.4x-1h"


def test_prometheus_rules_skip_a_cloudwatch_slo_and_alarm_actions_need_cloudwatch(tmp_path, mixed_folder):
    config = str(tmp_path / "gatewatch.yaml")
    done = run("--config", config, "slo", "rules", "--all", "--json")
    assert done.returncode == 1
    reasons = {
        s["name"] if s["service"] != "checkout" else "checkout": s["reason"] for s in json.loads(done.stdout)["skipped"]
    }
    assert (
        reasons["availability"] == "its SLI is read from CloudWatch, not a Prometheus query (use --format cloudwatch)"
    )
    assert reasons["batch"].startswith("its SLI is read from a CSV file (") and reasons["batch"].endswith(
        "not a Prometheus query"
    )
    refused = run("slo", "rules", "--slo", str(mixed_folder / "web.yaml"), "--alarm-action", "arn:aws:sns:x")
    assert refused.returncode == 2 and "--alarm-action" in refused.stderr
    config_obj = config_from_mapping({}, environ={})
    found = service_alarms(config_obj, [load_slo(mixed_folder / "web.yaml")])
    assert found.slos == [] and found.skipped[0]["reason"].endswith("(use --format prometheus)")
