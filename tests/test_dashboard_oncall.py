"""The On-call page under AppTest on both stores, over hand-built rows at a fixed clock: each list's rows,
newest first, with their ages; red counters; stale SLI data shown as stale (never as nothing firing);
and the sidebar's filters in the URL's query string."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from collector.models import (
    action_runs,
    canary_runs,
    deployments,
    gate_decisions,
    incidents,
    pipeline_runs,
    stage_runs,
)
from collector.notifications import record_notification
from collector.timeutil import utcnow
from gatewatch import api

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
NOW = utcnow().replace(second=0, microsecond=0) - timedelta(days=1)  # a fixed clock, in the past
H, M = timedelta(hours=1), timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _fresh(fresh_dashboard):
    """Empty dashboard caches and no Gatewatch environment for every test."""


def sli_csv(path: Path, end, burning: bool) -> str:
    """Five-minute good/total counts for two days up to `end`; the last two hours at 5% errors when burning."""
    stamps = pd.date_range(end=end, periods=2 * 288, freq="5min")
    bad = [50 if burning and end - at < 2 * H else 0 for at in stamps]
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "good": [1000 - b for b in bad]})
    frame["total"] = 1000
    frame.to_csv(path, index=False)
    return path.name


@pytest.fixture
def oncall_store(engine, store_url, tmp_path, monkeypatch):
    """A store and config where each On-call list has rows (and rows it must leave out), the clock at NOW."""
    slos = tmp_path / "slos"
    slos.mkdir()
    for service, end, burning in (("api", NOW - 3 * H, True), ("web", NOW, False), ("db", NOW - 2 * H, False)):
        data = sli_csv(slos / f"{service}.csv", end, burning)
        spec = {"service": service, "name": "availability", "objective": 99.9, "window": "28d", "sli": {"data": data}}
        (slos / f"{service}.yaml").write_text(yaml.safe_dump(spec))
    teams = {"api": "core", "db": "core", "web": "edge"}
    config = {"teams": teams, "slos": str(slos), "runbooks": {"api": "https://runbooks.example.com/api"}}
    (tmp_path / "gatewatch.yaml").write_text(yaml.safe_dump(config))

    def dep(id_, service, status, finished=None, started=None, **extra):
        return {
            "id": id_,
            "source": "test",
            "service": service,
            "team": teams[service],
            "environment": "production",
            "production": True,
            "status": status,
            "started_at": started,
            "finished_at": finished,
            **extra,
        }

    def run(id_, service, status, started, finished=None):
        return {
            "id": id_,
            "source": "codepipeline",
            "pipeline": f"{service}-pipe",
            "service": service,
            "status": status,
            "started_at": started,
            "finished_at": finished,
        }

    def stage(run_id, name, status, started, category="deploy"):
        return {
            "id": f"{run_id}:{name}",
            "pipeline_run_id": run_id,
            "name": name,
            "status": status,
            "category": category,
            "started_at": started,
        }

    def canary(id_, verdict, created, deployment):
        return {
            "id": id_,
            "created_at": created,
            "verdict": verdict,
            "score": 50.0,
            "source": "test",
            "deployment_id": deployment,
            "config": "{}",
            "result": "{}",
        }

    def decision(id_, service, verdict, created):
        return {
            "id": id_,
            "key": f"k-{id_}",
            "gate": f"{service}-prod",
            "decision": verdict,
            "created_at": created,
            "service": service,
            "checks": "[]",
            "reasons": json.dumps([f"{id_} because"]),
            "actions": "[]",
        }

    def incident(id_, service, opened, resolved=None, deployment=None):
        return {
            "id": id_,
            "source": "test",
            "service": service,
            "title": id_,
            "opened_at": opened,
            "resolved_at": resolved,
            "deployment_id": deployment,
        }

    rows = {
        deployments: [
            dep("d-api", "api", "success", finished=NOW - 5 * H),
            dep("d-api-rb", "api", "in_progress", started=NOW - 20 * M, is_rollback=True, rollback_of="d-api"),
            dep("d-web", "web", "success", finished=NOW - 72 * H),
            dep("d-db", "db", "success", finished=NOW - 100 * H),
        ],
        pipeline_runs: [
            run("r-api-older", "api", "failed", NOW - 5 * H, NOW - 4 * H - 30 * M),
            run("r-api-ok", "api", "succeeded", NOW - 4 * H, NOW - 3 * H),
            run("r-api-first", "api", "failed", NOW - 3 * H, NOW - 2 * H - 40 * M),
            run("r-api-fail", "api", "failed", NOW - 2 * H - 30 * M, NOW - 2 * H - 10 * M),
            run("r-web-live", "web", "in_progress", NOW - 45 * M),
        ],
        stage_runs: [
            stage("r-api-fail", "Build", "succeeded", NOW - 2 * H - 30 * M, "build"),
            stage("r-api-fail", "Prod", "failed", NOW - 2 * H - 20 * M),
            stage("r-web-live", "Build", "succeeded", NOW - 45 * M, "build"),
            stage("r-web-live", "Approve", "in_progress", NOW - 40 * M, "approval"),
        ],
        action_runs: [
            {
                "id": "a-approve",
                "pipeline_run_id": "r-web-live",
                "stage_run_id": "r-web-live:Approve",
                "name": "ManualApproval",
                "category": "approval",
                "provider": "Manual",
                "status": "in_progress",
                "started_at": NOW - 40 * M,
            },
        ],
        canary_runs: [
            canary("c-fail", "fail", NOW - H, "d-api"),
            canary("c-pass", "pass", NOW - 2 * H, "d-api"),
            canary("c-marginal", "marginal", NOW - 3 * H, "d-web"),
        ],
        gate_decisions: [
            decision("g-rollback", "api", "rollback", NOW - 15 * M),
            decision("g-promote", "web", "promote", NOW - H),
            decision("g-hold", "web", "hold", NOW - 5 * H),
            decision("g-old-hold", "web", "hold", NOW - 30 * H),
        ],
        incidents: [
            incident("i-api", "api", NOW - 2 * H - 10 * M),
            incident("i-web", "web", NOW - 30 * M),
            incident("i-named", "web", NOW - H, deployment="d-web"),
            incident("i-closed", "api", NOW - 3 * H, resolved=NOW - 2 * H),
        ],
    }
    with engine.begin() as conn:
        for table, values in rows.items():
            for row in values:
                conn.execute(insert(table).values(**row))
    for service, status, at, channel in (
        ("api", "failed", NOW - 14 * M, "slack"),
        ("web", "failed", NOW - 50 * M, "pagerduty"),
        ("api", "sent", NOW - 10 * M, "outbox"),  # sent: not work for anyone
        ("api", "suppressed", NOW - 9 * M, "slack"),
    ):
        record_notification(
            engine,
            event="gate_rollback",
            action="trigger",
            channel=channel,
            channel_type="slack",
            dedup_key=f"{service}-{channel}",
            severity="critical",
            status=status,
            summary=f"{service} rolled back",
            service=service,
            team=teams[service],
            attempts=4 if status == "failed" else 1,
            error="HTTP 503 Service Unavailable; gave up after 4 attempts" if status == "failed" else None,
            at=at,
        )
    monkeypatch.setattr(api, "utcnow", lambda: NOW)
    monkeypatch.setenv("GATEWATCH_DB", store_url)
    monkeypatch.setenv("GATEWATCH_CONFIG", str(tmp_path / "gatewatch.yaml"))
    return tmp_path


def open_oncall(params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(params or {})
    at.run()
    at.switch_page("views/oncall.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def tables(at: AppTest) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def table_with(at: AppTest, column: str, value: str) -> pd.DataFrame:
    """The one list (a table with ages) with `value` in `column`."""
    found = [t for t in tables(at) if "age" in t and column in t and (t[column] == value).any()]
    assert len(found) == 1, (column, value, [t.columns.tolist() for t in found])
    return found[0]


def stale_note(at: AppTest) -> str:
    """The note of the first SLO listed as stale."""
    return next(t for t in tables(at) if "note" in t)["note"].iloc[0]


def counters(at: AppTest) -> dict[str, tuple[str, bool]]:
    """Each counter's value and whether it is red (a red 'needs a person' note under it)."""
    return {
        m.label: (m.value, m.delta == "needs a person" and m.proto.color == m.proto.MetricColor.RED) for m in at.metric
    }


def test_each_list_shows_its_rows_newest_first_with_their_ages_and_red_counters(oncall_store):
    at = open_oncall()
    runs = table_with(at, "id", "r-api-fail")
    assert runs[["id", "age", "stage", "stage_status"]].values.tolist() == [
        ["r-web-live", "running for 45m", "Approve", "in_progress"],
        ["r-api-fail", "failing for 2h40m", "Prod", "failed"],  # since the first failure after a success
    ]
    approvals = table_with(at, "action", "ManualApproval")
    assert approvals[["run_id", "stage", "age"]].values.tolist() == [["r-web-live", "Approve", "waiting for 40m"]]
    rolling = table_with(at, "id", "d-api-rb")
    assert rolling[["id", "rollback_of", "age"]].values.tolist() == [["d-api-rb", "d-api", "rolling back for 20m"]]
    held = table_with(at, "decision", "rollback")
    assert held[["service", "decision", "age", "reason"]].values.tolist() == [
        ["api", "rollback", "15m ago", "g-rollback because"],
        ["web", "hold", "5h ago", "g-hold because"],
    ]
    canaries = table_with(at, "verdict", "fail")
    assert canaries[["id", "verdict", "age"]].values.tolist() == [
        ["c-fail", "fail", "1h ago"],
        ["c-marginal", "marginal", "3h ago"],
    ]
    open_ = table_with(at, "title", "i-api")
    # linked by the DORA rule: i-api to api's deployment 5 h before it opened; i-web to none (web's last
    # was 3 days before), i-named to the deployment it names
    assert open_[["id", "age", "linked_deployment"]].fillna("none").values.tolist() == [
        ["i-web", "open for 30m", "none"],
        ["i-named", "open for 1h", "d-web"],
        ["i-api", "open for 2h10m", "d-api"],
    ]
    assert open_["deployment_status"].tolist()[1:] == ["success", "success"] and "runbook" in open_

    alerts = table_with(at, "severity", "page")
    assert set(alerts["service"]) == {"api"} and "page" in set(alerts["severity"])
    assert alerts["stale"].all() and set(alerts["age"]) == {"stale: data 3h old"}
    shown = counters(at)
    assert shown["Burn-rate alerts firing"] == (str(len(alerts)), True)
    assert shown["Stale SLIs"] == ("2", True)  # api's and db's data stopped; web's is fresh
    assert shown["Failing pipelines"] == ("1", True)
    assert shown["Stuck executions"] == ("0", False)  # web's pipeline has no finished run to compare with
    assert shown["Approvals waiting"] == ("1", True)
    assert shown["Rollbacks in progress"] == ("1", True)
    assert shown["Holds and rollbacks (24 h)"] == ("2", True)
    assert shown["Canary fail or marginal"] == ("2", True)
    assert shown["Open incidents"] == ("3", True)
    failed = table_with(at, "channel", "slack")
    assert failed[["service", "channel", "age", "attempts"]].values.tolist() == [
        ["api", "slack", "failed 14m ago", 4],
        ["web", "pagerduty", "failed 50m ago", 4],
    ]
    assert shown["Notifications failed"] == ("2", True)
    assert [(t.label, t.value) for t in at.toggle] == [("Auto-refresh every 30 s", True)]
    at.toggle(key="oncall_refresh").set_value(False).run()  # turned off: the same lists, drawn once
    assert not at.exception and counters(at) == shown


def test_stale_sli_data_is_shown_as_stale_never_as_nothing_firing(oncall_store):
    at = open_oncall({"service": "db"})
    assert not any("No burn-rate alert is firing" in s.value for s in at.success)
    assert any("SLI data stopped for 1 SLO" in w.value for w in at.warning)
    stale = table_with(at, "note", stale_note(at))
    assert stale[["service", "age"]].values.tolist() == [["db", "stale: newest point 2h old"]]
    assert counters(at)["Stale SLIs"] == ("1", True) and counters(at)["Burn-rate alerts firing"] == ("0", False)

    fresh = open_oncall({"service": "web"})  # fresh data, nothing burning: said so, in green
    assert any("No burn-rate alert is firing" in s.value for s in fresh.success)
    assert counters(fresh)["Stale SLIs"] == ("0", False) and not fresh.warning


def test_the_team_filter_applies_to_every_list(oncall_store):
    at = open_oncall({"team": "edge"})
    services = {s for t in tables(at) if "service" in t for s in t["service"]}
    assert services == {"web"}
    assert counters(at)["Holds and rollbacks (24 h)"] == ("1", True) and counters(at)["Failing pipelines"] == (
        "0",
        False,
    )
    assert counters(at)["Stale SLIs"] == ("0", False)  # the team's one SLO (web) is fresh
    assert counters(at)["Notifications failed"] == ("1", True)


def test_the_filters_round_trip_through_the_query_string(oncall_store):
    at = open_oncall({"range": "7d", "service": "api", "team": "core", "env": "production"})
    chosen = {key: at.sidebar.selectbox(key=key).value for key in ("f_range", "f_service", "f_team", "f_env")}
    assert chosen == {"f_range": "Last 7 days", "f_service": "api", "f_team": "core", "f_env": "production"}
    assert at.query_params == {"range": "7d", "service": "api", "team": "core", "env": "production"}

    at.sidebar.selectbox(key="f_service").set_value("web").run()
    at.sidebar.selectbox(key="f_team").set_value("All").run()
    at.sidebar.selectbox(key="f_range").set_value("Last 90 days").run()  # the default: left out of the URL
    assert at.query_params == {"service": "web", "env": "production"}
    at.sidebar.selectbox(key="f_range").set_value("Custom dates").run()
    first, last = at.sidebar.date_input(key="f_start").value, at.sidebar.date_input(key="f_end").value
    assert at.query_params == {
        "range": "custom",
        "from": first.isoformat(),
        "to": last.isoformat(),
        "service": "web",
        "env": "production",
    }

    assert not at.warning  # the widgets take their values from the session state alone

    again = open_oncall(at.query_params)  # a reload, or the link shared
    assert again.sidebar.selectbox(key="f_range").value == "Custom dates"
    assert (again.sidebar.date_input(key="f_start").value, again.sidebar.date_input(key="f_end").value) == (first, last)
    assert again.sidebar.selectbox(key="f_service").value == "web"

    unknown = open_oncall({"service": "nope", "range": "3d"})  # not in the store, not a range: the defaults
    assert unknown.sidebar.selectbox(key="f_service").value == "All"
    assert unknown.sidebar.selectbox(key="f_range").value == "Last 90 days"
    assert unknown.query_params == {}
