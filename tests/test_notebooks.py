"""The analyst notebooks: committed without outputs, and executed top to bottom against the demo store
with their figures equal to the Python API's."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from analysis import dora
from analysis.canary import config_from_mapping, judge
from analysis.windows import window_between
from collector.canary_runs import list_runs, load_run
from collector.db import create_store_engine
from collector.loaders import Scope, load_dora_frames

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
END = "2025-06-02"
PROBE = "__probe__ = "


@pytest.fixture(scope="module")
def demo_store(demo_stores) -> str:
    """A demo store built once per session (conftest's demo_stores); the notebooks only read it."""
    url, _ = demo_stores("--services", "4", "--days", "60", "--end", END)
    return url


def execute(name: str, env: dict[str, str], monkeypatch, probe: str) -> tuple[nbformat.NotebookNode, dict]:
    """Run a notebook in a python3 kernel with `env`, plus a last cell printing `probe` as JSON."""
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    book.cells.append(new_code_cell(f"import json as _json\nprint({PROBE!r} + _json.dumps({probe}, default=str))"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    NotebookClient(book, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    printed = "".join(o.get("text", "") for o in book.cells[-1].outputs if o.output_type == "stream")
    return book, json.loads(printed.split(PROBE, 1)[1])


def outputs_of(book, mime: str) -> list[str]:
    return [
        str(value)
        for cell in book.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.output_type in ("display_data", "execute_result")
        for key, value in o.get("data", {}).items()
        if key.startswith(mime)
    ]


def charts(book) -> list[str]:
    """Altair charts as the kernel rendered them (HTML embedding a Vega-Lite spec, or the Vega-Lite mime type)."""
    return [
        o
        for o in outputs_of(book, "text/html") + outputs_of(book, "application/vnd.vegalite")
        if "vega-lite" in o or "$schema" in o
    ]


@pytest.mark.parametrize("name", ["dora_exploration.ipynb", "canary_postmortem.ipynb"])
def test_the_committed_notebooks_have_no_outputs(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert book.metadata["kernelspec"]["name"] == "python3"
    assert "matplotlib" not in "".join(c.source for c in code)
    assert public_api_violations("\n".join(c.source for c in code)) == []


def public_api_violations(source: str) -> list[str]:
    """What a notebook uses of Gatewatch beyond its public API: only `gatewatch.api`'s names, and the
    public (`__all__`) names of `analysis` modules for re-computation; no other project module, and
    no name starting with `_`."""
    import ast
    import importlib

    from gatewatch import api

    allowed_roots = {"os", "datetime", "altair", "numpy", "pandas", "analysis", "gatewatch", "json", "math"}
    problems, aliases = [], {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            problems += [
                f"import {a.name}"
                for a in node.names
                if a.name.split(".")[0] not in allowed_roots or a.name.split(".")[0] in {"analysis", "gatewatch"}
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] not in allowed_roots:
                problems.append(f"from {module}")
            elif module == "gatewatch":
                problems += [f"from gatewatch import {a.name}" for a in node.names if a.name != "api"]
                aliases.update({a.asname or a.name: api for a in node.names if a.name == "api"})
            elif module.split(".")[0] == "gatewatch":
                problems.append(f"from {module} (only gatewatch.api is public)")
            elif module.split(".")[0] == "analysis":
                public = set(getattr(importlib.import_module(module), "__all__", ()))
                problems += [
                    f"from {module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") or a.name not in public
                ]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and (node.attr.startswith("_") or node.attr not in api.__all__)
        ):
            problems.append(f"api.{node.attr}")
    return problems


def test_the_notebook_check_catches_private_and_internal_names():
    assert public_api_violations("from gatewatch import api\napi.dora_report\napi.Scope()") == []
    assert public_api_violations("from gatewatch import api\napi._EXPORTS") == ["api._EXPORTS"]
    assert public_api_violations("from gatewatch import api as g\ng.load_frames()") == ["api.load_frames"]
    assert public_api_violations("from collector.loaders import Scope") == ["from collector.loaders"]
    assert public_api_violations("from gatewatch.services.delivery import dora_report") == [
        "from gatewatch.services.delivery (only gatewatch.api is public)"
    ]
    assert public_api_violations("from analysis.dora import _in, report") == ["from analysis.dora import _in"]
    assert public_api_violations("import collector.db") == ["import collector.db"]


def _same(a, b) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or a != a) and (b is None or b != b)
    return a == pytest.approx(b, rel=1e-9)


def test_the_dora_notebook_computes_each_teams_months_as_the_api_does(demo_store, monkeypatch):
    book, seen = execute(
        "dora_exploration.ipynb",
        {"GATEWATCH_DB": demo_store, "GATEWATCH_END": END, "GATEWATCH_DAYS": "60"},
        monkeypatch,
        '{"monthly": monthly.to_dict(orient="records"), "teams": [first, second]}',
    )
    end = date.fromisoformat(END)
    window = window_between(end - timedelta(days=60), end)
    engine = create_store_engine(demo_store)
    expected = []
    for team in ("payments", "discovery", "platform"):
        report = dora.report(load_dora_frames(engine, window.start, window.end, Scope(team=team)), window, by="month")
        for bucket in report["series"]:
            expected.append(
                (
                    team,
                    bucket["window"]["start"][:7],
                    bucket["deployment_frequency"]["deployments"],
                    bucket["lead_time"]["median_hours"],
                    bucket["change_failure_rate"]["rate"],
                    bucket["recovery_time"]["median_hours"],
                )
            )
    engine.dispose()
    got = sorted(
        (
            r["team"],
            r["month"],
            r["deployments"],
            r["lead_time_median_h"],
            r["change_failure_rate"],
            r["recovery_median_h"],
        )
        for r in seen["monthly"]
    )
    expected.sort()
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    assert {g[1] for g in got} == {"2025-04", "2025-05", "2025-06"}  # 3 Apr .. 1 Jun
    assert all(_same(a, b) for g, e in zip(got, expected) for a, b in zip(g[3:], e[3:])), (got, expected)
    assert sum(g[2] for g in got) > 50
    assert len(seen["teams"]) == 2 and set(seen["teams"]) <= {"payments", "discovery", "platform"}
    drawn = charts(book)
    assert len(drawn) == 1 and all(team in drawn[0] for team in seen["teams"]), "no trend chart of the two teams"
    assert any("<table" in o for o in outputs_of(book, "text/html")), "no table was shown"


def test_the_canary_notebook_rejudges_a_run_as_the_judge_does(demo_store, monkeypatch):
    engine = create_store_engine(demo_store)
    runs = list_runs(engine, limit=100)
    marginal = runs[runs["verdict"] == "marginal"]["id"].iloc[0]
    run = load_run(engine, marginal)
    engine.dispose()
    probe = (
        '{"run": run.id, "before": run.verdict, "after": rejudged.verdict, "score": rejudged.score, '
        '"changed": changes["changed"].to_dict(), "now": changes["classification now"].to_dict()}'
    )
    book, seen = execute(
        "canary_postmortem.ipynb",
        {"GATEWATCH_DB": demo_store, "RUN_ID": marginal, "TOLERANCE": "0.3"},
        monkeypatch,
        probe,
    )
    settings = run.config.to_dict()
    settings["metrics"] = [{**m, "tolerance": 0.3} for m in settings["metrics"]]
    expected = judge(config_from_mapping(settings), run.samples)
    assert seen["run"] == marginal and seen["before"] == "marginal"
    assert seen["after"] == expected.verdict == "pass" and seen["score"] == expected.score
    assert seen["now"] == {m.name: m.classification for m in expected.metrics}
    before = {m["name"]: m["classification"] for m in run.result["metrics"]}
    assert seen["changed"] == {name: before[name] != seen["now"][name] for name in before}
    assert any(seen["changed"].values())
    assert len(charts(book)) == 2


def test_the_canary_notebook_takes_the_latest_run_by_default(demo_store, monkeypatch):
    monkeypatch.delenv("RUN_ID", raising=False)
    engine = create_store_engine(demo_store)
    latest = list_runs(engine, limit=1)["id"].iloc[0]
    engine.dispose()
    _, seen = execute(
        "canary_postmortem.ipynb", {"GATEWATCH_DB": demo_store}, monkeypatch, '{"run": run.id, "tolerance": TOLERANCE}'
    )
    assert seen == {"run": latest, "tolerance": 0.25}
