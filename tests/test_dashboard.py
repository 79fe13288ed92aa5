"""The dashboard under Streamlit's AppTest: every page on an empty store and on the demo store runs
without an exception, and the executive page shows exactly the figures of `analysis.dora.report`."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from analysis import dora
from analysis.tiers import get_benchmark
from analysis.windows import Window, window_since
from collector.config import config_from_mapping, load_config
from collector.db import create_store_engine, dispose_engines, upgrade
from collector.gate_decisions import list_decisions
from collector.ingest import ingest_payloads
from collector.listings import load_run_detail
from collector.loaders import Scope, load_dora_frames
from collector.models import incidents
from collector.telemetry.sli import load_slos
from collector.timeutil import utcnow
from tests.conftest import fixture_path

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGES = [
    "views/executive.py",
    "views/oncall.py",
    "views/pipelines.py",
    "views/canary.py",
    "views/slos.py",
    "views/gates.py",
]
KEYS = ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "rework_rate")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_store(request, demo_stores):
    """(url, folder): the demo organisation built by the CLI once per session (conftest's demo_stores),
    ending today; the pages only read it."""
    yield demo_stores("--services", "4", "--days", "45", backend=request.param)
    dispose_engines()


@pytest.fixture(autouse=True)
def _fresh(fresh_dashboard):
    """Every test here starts with empty dashboard caches and no Gatewatch environment."""


def app(monkeypatch, url: str, folder: Path | None = None, tmp_path: Path | None = None) -> AppTest:
    monkeypatch.setenv("GATEWATCH_DB", url)
    if folder is not None:
        monkeypatch.setenv("GATEWATCH_CONFIG", str(folder / "gatewatch.yaml"))
    else:  # no ./gatewatch.yaml of the working tree may leak in
        monkeypatch.chdir(tmp_path)
    return AppTest.from_file(APP, default_timeout=120).run()


def run_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, object]:
    return {m.label: m for m in at.metric}


def test_every_page_on_an_empty_store_says_how_to_get_data_in(monkeypatch, store_url, tmp_path):
    at = app(monkeypatch, store_url, tmp_path=tmp_path)
    for page in PAGES:
        run_page(at, page)
        text = " ".join(i.value for i in at.info)
        if page.endswith("slos.py"):
            assert "No SLOs configured" in text
        else:
            assert "The store is empty" in text and "gatewatch demo" in text and "gatewatch ingest" in text, page
        assert not at.error


def test_the_dashboard_process_allocates_arrow_memory_through_the_system_allocator(monkeypatch, tmp_path):
    """The app switches Arrow to the system allocator (a faster first render; see the README)."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    try:
        app(monkeypatch, f"sqlite:///{tmp_path / 'store.db'}", tmp_path=tmp_path)
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)


def test_every_page_on_the_demo_store_renders_its_data(monkeypatch, demo_store):
    url, folder = demo_store
    at = app(monkeypatch, url, folder)
    config = load_config(str(folder / "gatewatch.yaml"))
    engine = create_store_engine(url)
    try:
        for page in PAGES:
            run_page(at, page)
            assert not at.error, (page, [e.value for e in at.error])
            assert not any("store is empty" in i.value for i in at.info), page

        run_page(at, "views/oncall.py")
        with engine.connect() as conn:
            open_count = conn.execute(
                select(func.count()).select_from(incidents).where(incidents.c.resolved_at.is_(None))
            ).scalar_one()
        assert metrics(at)["Open incidents"].value == str(open_count)
        now = utcnow()
        if now - now.replace(hour=0, minute=0, second=0, microsecond=0) > timedelta(minutes=15):
            # The demo's SLI data ends at 00:00 today: shown as of then, said so, with the burning
            # service's page firing (evaluated at the wall clock, the short windows would be empty).
            assert metrics(at)["Burn-rate alerts firing"].value != "0"
            assert any("SLI data stopped" in w.value and "newest point" in w.value for w in at.warning)

        run_page(at, "views/gates.py")
        window = window_since(90, utcnow())
        log = list_decisions(engine)
        in_window = log[(log["created_at"] >= window.start) & (log["created_at"] < window.end)]
        assert len(in_window) > 0  # the demo stores gate decisions
        shown = metrics(at)
        assert shown["Decisions"].value == str(len(in_window))
        for decision in ("promote", "hold", "rollback"):
            assert shown[decision.capitalize()].value == str(int((in_window["decision"] == decision).sum()))

        run_page(at, "views/slos.py")
        names = {spec.name for spec in load_slos(config.slos)}
        headers = {h.value.split(" · ")[0] for h in at.subheader}
        assert names and names <= headers
        if now - now.replace(hour=0, minute=0, second=0, microsecond=0) > timedelta(minutes=15):
            assert any(m.value != "0" for m in at.metric if m.label == "Alerts firing")

        run_page(at, "views/canary.py")
        assert metrics(at)["Metrics"].value != "0"

        run_page(at, "views/pipelines.py")
        pick = at.selectbox(key="run_pick")  # the slowest execution, drilled down to its stages and actions
        detail = load_run_detail(engine, pick.value)
        tables = at.dataframe
        assert len(detail["stages"]) > 0 and len(tables) >= 2
        assert list(tables[-2].value["id"]) == list(detail["stages"]["id"])
        assert list(tables[-1].value["id"]) == list(detail["actions"]["id"])
    finally:
        engine.dispose()


def expected(url: str, folder: Path, window: Window, scope: Scope, by: str | None = None) -> dict:
    config = load_config(str(folder / "gatewatch.yaml"))
    bench = get_benchmark(config.dora.benchmark, config.dora.benchmarks)
    link = config.dora.link_window
    engine = create_store_engine(url)
    try:
        frames = load_dora_frames(engine, window.start, window.end, scope, link)
        return dora.report(frames, window, by=by, benchmark=bench, link_window=link)
    finally:
        engine.dispose()


def _hours(value):
    return "no data" if value is None else f"{value:.2f} h"


def _pct(value):
    return "no data" if value is None else f"{value * 100:.1f}%"


@pytest.mark.parametrize("days, service, team", [(30, "first", None), (90, None, "first"), (14, None, None)])
def test_executive_figures_equal_the_analysis_api_for_the_same_filters(monkeypatch, demo_store, days, service, team):
    url, folder = demo_store
    at = app(monkeypatch, url, folder)
    services = at.sidebar.selectbox(key="f_service").options[1:]
    teams = at.sidebar.selectbox(key="f_team").options[1:]
    service = services[0] if service else None
    team = teams[0] if team else None
    at.sidebar.selectbox(key="f_range").set_value(f"Last {days} days")
    if service:
        at.sidebar.selectbox(key="f_service").set_value(service)
    if team:
        at.sidebar.selectbox(key="f_team").set_value(team)
    at.run()
    assert not at.exception
    window = window_since(days, utcnow())
    previous = Window(window.start - (window.end - window.start), window.start)
    scope = Scope(service=service, team=team)
    now, before = expected(url, folder, window, scope, by="week"), expected(url, folder, previous, scope)
    assert now["deployment_frequency"]["deployments"] > 0
    shown = metrics(at)
    df, lt, cfr, rt, rw = (now[k] for k in KEYS)
    assert shown["Deployment frequency"].value == f"{df['per_day']:.2f}/day"
    assert shown["Deployment frequency"].help.startswith(
        f"{df['deployments']} deployments; previous period {before['deployment_frequency']['deployments']}"
    )
    assert shown["Change lead time (median)"].value == _hours(lt["median_hours"])
    assert shown["Change lead time (median)"].help.startswith(f"{lt['changes']} changes")
    assert shown["Change failure rate"].value == _pct(cfr["rate"])
    assert shown["Change failure rate"].help == f"{cfr['failed']} failed of {cfr['deployments']}"
    assert shown["Recovery time (median)"].value == _hours(rt["median_hours"])
    assert shown["Recovery time (median)"].help == f"{rt['recovered']} recovered, {rt['open']} open"
    assert shown["Rework rate"].value == _pct(rw["rate"])
    # The change against the previous period of equal length.
    prev_rate = before["change_failure_rate"]["rate"]
    want = None if prev_rate is None or cfr["rate"] is None else f"{(cfr['rate'] - prev_rate) * 100:+.2f} pp"
    assert (shown["Change failure rate"].delta or None) == want
    prev_per_day = before["deployment_frequency"]["per_day"]
    want = None if prev_per_day is None else f"{df['per_day'] - prev_per_day:+.2f}/day"
    assert (shown["Deployment frequency"].delta or None) == want
    # Tier badges, in metric order (rework rate has none).
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    tiers = [now[k]["tier"] or "no tier" for k in KEYS[:4]]
    assert [b.split("[", 1)[1].rstrip("]") for b in badges[:4]] == tiers
    # The per-week table equals the report's weekly series.
    table = at.dataframe[-1].value
    assert list(table["deployments"]) == [b["deployment_frequency"]["deployments"] for b in now["series"]]
    assert list(table["change failure rate"].fillna(-1)) == [
        -1 if b["change_failure_rate"]["rate"] is None else b["change_failure_rate"]["rate"] for b in now["series"]
    ]


def test_the_dashboard_command_refuses_a_bad_store_without_a_traceback(tmp_path, gatewatch):
    res = gatewatch("--db", "mysql+nonexistent://x", "dashboard", "--port", "1")
    assert res.returncode == 4 and "Traceback" not in res.stderr and res.stderr.strip()
    res = gatewatch("dashboard", "--port", "99999")
    assert res.returncode == 2 and "99999" in res.stderr


def test_a_refresh_recomputes_the_window_and_keeps_the_previous_period_for_15_minutes(monkeypatch, tmp_path):
    """The 60 s entries expire on their own; the previous period's report (a past window) is kept
    longer, so a refresh shows a new deployment of the window at once and one of the previous period
    only when that entry expires too."""
    from datetime import timedelta

    from collector import ingest
    from collector.config import config_from_mapping
    from collector.db import upgrade
    from dashboard import common, data
    from tests.records import dep

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    config = config_from_mapping({}, environ={})
    now = utcnow()

    def deploy(name: str, days_ago: float) -> None:
        record = dep(name, "api", (now - timedelta(days=days_ago)).isoformat())
        assert ingest.ingest_payloads(engine, [record], config).quarantined == []

    for i in range(3):
        deploy(f"now-{i}", 1 + i)
    for i in range(2):
        deploy(f"before-{i}", 20 + i)
    monkeypatch.setenv("GATEWATCH_DB", url)
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.sidebar.selectbox(key="f_range").set_value("Last 14 days")
    at.run()

    def shown() -> str:
        assert not at.exception, [e.value for e in at.exception]
        return metrics(at)["Deployment frequency"].help

    assert shown().startswith("3 deployments; previous period 2")
    deploy("now-new", 2.5)
    deploy("before-new", 22.5)
    for cached in (data.executive, common.store_counts, common.filter_options):  # what a minute expires
        cached.clear()
    at.run()
    assert shown().startswith("4 deployments; previous period 2")
    data.previous_report.clear()  # fifteen minutes later, when every entry has expired
    data.executive.clear()
    at.run()
    assert shown().startswith("4 deployments; previous period 3")
    engine.dispose()


def test_the_pipelines_page_names_a_pipeline_with_no_production_stage(monkeypatch, store_url, tmp_path):
    engine = create_store_engine(store_url)
    upgrade(engine)
    try:
        events = fixture_path("aws/codepipeline-execution.eventbridge.ndjson").read_text().splitlines()
        ingest_payloads(engine, [json.loads(line) for line in events], config_from_mapping({}, environ={}))
    finally:
        engine.dispose()
    (tmp_path / "gatewatch.yaml").write_text("production:\n  stage_pattern: '(?i)live'\n")
    at = run_page(app(monkeypatch, store_url, folder=tmp_path), "views/pipelines.py")
    assert [w.value.split(";")[0] for w in at.warning] == ["pipeline myPipeline: stages Build, Prod, Source"]


def chart_data(at: AppTest, index: int = 0, dataset: int = 0):
    """A dataset of the page's `index`th Altair chart (a layered chart has one per layer), and its
    Vega-Lite spec."""
    import pyarrow as pa

    proto = at.get("vega_lite_chart")[index].proto
    frame = pa.ipc.open_stream(proto.datasets[dataset].data.data).read_pandas()
    return frame, json.loads(proto.spec)


def test_the_pipelines_duration_chart_has_a_bar_per_service_and_pipeline(monkeypatch, store_url, tmp_path):
    """Two services' `deploy` workflows are two bars (each its own medians), and the CodePipeline
    execution's Prod stage, a CodeDeploy action, is deploy time on its bar."""
    from tests.pipeline_events import codepipeline, shifted, two_services_deploy

    by = timedelta(days=(utcnow().date() - date(2024, 5, 4)).days)  # the samples' days, moved into this week
    engine = create_store_engine(store_url)
    upgrade(engine)
    try:
        payloads = shifted([*two_services_deploy(), *codepipeline()], by)
        assert ingest_payloads(engine, payloads, config_from_mapping({}, environ={})).quarantined == []
    finally:
        engine.dispose()
    at = run_page(app(monkeypatch, store_url, tmp_path=tmp_path), "views/pipelines.py")
    bars, spec = chart_data(at)
    assert spec["encoding"]["y"]["field"] == "label" and spec["encoding"]["x"]["stack"] is True
    per_bar = bars.groupby(["label", "category"])["median_hours"].sum()
    assert per_bar.to_dict() == pytest.approx(
        {
            ("api · deploy", "queue"): 2 / 60,
            ("api · deploy", "deploy"): 40 / 60,
            ("web · deploy", "queue"): 2 / 60,
            ("web · deploy", "deploy"): 6 / 60,
            ("myPipeline · myPipeline", "queue"): 1 / 3600,
            ("myPipeline · myPipeline", "build"): 379 / 3600,
            ("myPipeline · myPipeline", "deploy"): 1024 / 3600,
        }
    )
    stages = next(d.value for d in at.dataframe if "category" in d.value)  # the per-stage table: the same classes
    assert stages.set_index(["pipeline", "stage"]).loc[("myPipeline", "Prod"), "category"] == "deploy"


# SLOs over a one-day window of 100 requests a minute at 99%: 1,440 bad allowed; bad events every
# `every` minutes, `bad` at a time, leave these shares of the budget (the same in any one-day window).
SLO_BUDGETS = {
    "api-latency": ("api", 5, 4, 0.2),  # 288 x 4 = 1,152 bad: 20% left
    "web-availability": ("web", 4, 2, 0.5),  # 360 x 2 = 720 bad: 50% left
    "api-availability": ("api", 4, 1, 0.75),  # 360 bad: 75% left
    "batch-availability": ("batch", 10, 1, 0.9),  # 144 bad: 90% left; batch has no team
}


def write_slo_folder(folder: Path, now) -> None:
    """The SLO files of SLO_BUDGETS with their CSV SLIs, per minute from two days before `now` to two hours
    after (rows after the status time are not read), on whole minutes."""
    import pandas as pd

    folder.mkdir()
    origin = now.replace(second=0, microsecond=0) - timedelta(days=2)
    stamps = [origin + timedelta(minutes=i) for i in range(2 * 1440 + 120)]
    for name, (service, every, bad, _) in SLO_BUDGETS.items():
        errors = [bad if i % every == 0 else 0 for i in range(len(stamps))]
        pd.DataFrame(
            {"timestamp": [t.isoformat() for t in stamps], "good": [100 - e for e in errors], "total": 100}
        ).to_csv(folder / f"{name}.csv", index=False)
        body = {"service": service, "objective": 99, "window": "1d", "sli": {"data": f"{name}.csv"}}
        (folder / f"{name}.yaml").write_text(json.dumps(body))


def test_the_slo_page_honours_the_team_filter_sorts_by_budget_left_and_charts_burn_rates(
    monkeypatch, store_url, tmp_path
):
    import pandas as pd

    from gatewatch import api
    from tests.records import dep

    now = utcnow()
    write_slo_folder(tmp_path / "slos", now)
    (tmp_path / "gatewatch.yaml").write_text(json.dumps({"slos": "slos", "teams": {"api": "core", "web": "front"}}))
    engine = create_store_engine(store_url)
    upgrade(engine)
    try:  # deployments of the teams' services (the team filter lists the store's teams)
        records = [dep("d-api", "api", (now - timedelta(days=1)).isoformat()), dep("d-web", "web", now.isoformat())]
        assert ingest_payloads(engine, records, config_from_mapping({}, environ={})).quarantined == []
    finally:
        engine.dispose()

    # The service API: least budget left first, the team's SLOs only when it is given.
    config = load_config(str(tmp_path / "gatewatch.yaml"))
    overview = api.slo_overview(config, config.slos, None, now.replace(second=0, microsecond=0), team="core")
    assert [(s["name"], s["team"]) for s in overview["slos"]] == [("api-latency", "core"), ("api-availability", "core")]

    at = app(monkeypatch, store_url, tmp_path)
    run_page(at, "views/slos.py")
    assert not at.error and not at.warning

    def shown() -> list[tuple[str, str]]:
        budgets = [m.value for m in at.metric if m.label == "Error budget remaining"]
        return list(zip((h.value for h in at.subheader), budgets))

    everything = [(f"{name} · {svc}", f"{left * 100:.1f}%") for name, (svc, _, _, left) in SLO_BUDGETS.items()]
    assert shown() == everything  # least budget left first (SLO_BUDGETS is in that order; files are not)
    at.sidebar.selectbox(key="f_team").set_value("core")
    at.run()
    assert not at.exception
    assert shown() == [("api-latency · api", "20.0%"), ("api-availability · api", "75.0%")]
    # api-latency's burn rates over its one-day window: 12 minutes of 4 bad an hour, 48 of 6,000 = 0.8x,
    # in every 1h and 6h window; the page alerts' thresholds drawn with them.
    lines, _ = chart_data(at, 1)
    assert set(lines["window"]) == {"1h", "6h"} and len(lines) == 2 * 720
    assert lines["burn_rate"].to_numpy() == pytest.approx(0.8)
    end = lines["at"].max()  # the status time: the page's minute
    assert end >= pd.Timestamp(now.replace(second=0, microsecond=0)) and end == end.floor("min")
    assert lines["at"].min() == end - pd.Timedelta(days=1)
    limits, spec = chart_data(at, 1, dataset=1)
    assert sorted(zip(limits["window"], limits["threshold"])) == [("1h", 14.4), ("6h", 6.0)]
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "rule"]
