"""The architecture, checked on the source: each module's role, what it may import, no import cycles,
no SQL or business rules in the command line, the environment read in one place, one exception tree."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("analysis", "collector", "gates", "dashboard", "gatewatch")
KERNEL = {"gatewatch.errors", "gatewatch.schema", "gatewatch.process", "gatewatch.metrics", "gatewatch.logs"}
# The surfaces: what users and other systems call. They reach the rest only through gatewatch.api.
SURFACES = {"collector.webhooks", "gates.views", "gates.aws_lambda", "gatewatch.__main__"}
SURFACE_PACKAGES = ("gatewatch.cli", "dashboard")
SERVICE_PACKAGES = ("gatewatch.api", "gatewatch.services", "gatewatch.demo")
# Which other surfaces a surface may start: `gatewatch serve` runs the HTTP service, `gatewatch
# dashboard` the dashboard's server.
SURFACE_ENTRY_POINTS = {
    "gatewatch.cli": {"collector.webhooks", "gates.views", "dashboard"},
    "gatewatch.__main__": {"gatewatch.cli"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            parts = file.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = file
    return found


MODULES = modules()


def role(module: str) -> str:
    if module in KERNEL:
        return "kernel"
    if module in SURFACES or module.startswith(SURFACE_PACKAGES):
        return "surface"
    if module == "gatewatch" or module.startswith(SERVICE_PACKAGES):
        return "service"
    return module.split(".")[0]  # analysis, collector, gates


def imports(module: str) -> set[str]:
    """The project modules `module` imports, anywhere in its source (functions included)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module and name.split(".")[0] in PACKAGES:
                found.add(name)
    return found


ALLOWED = {
    "kernel": {"kernel"},
    "analysis": {"analysis", "kernel"},
    "collector": {"collector", "analysis", "kernel"},
    "gates": {"gates", "collector", "analysis", "kernel"},
    "service": {"service", "gates", "collector", "analysis", "kernel"},
}


def surface_may_import(module: str, target: str) -> bool:
    if role(target) == "kernel" or target in ("gatewatch", "gatewatch.api"):
        return True
    home = next((p for p in SURFACE_PACKAGES if module.startswith(p)), module)
    if target.startswith(home):
        return True
    return any(target == entry or target.startswith(entry + ".") for entry in SURFACE_ENTRY_POINTS.get(home, ()))


def test_every_module_imports_only_what_its_role_may():
    wrong = []
    for module in MODULES:
        for target in imports(module):
            mine = role(module)
            ok = surface_may_import(module, target) if mine == "surface" else role(target) in ALLOWED[mine]
            if not ok:
                wrong.append(f"{module} ({mine}) imports {target} ({role(target)})")
    assert wrong == []


def test_the_rules_catch_a_violation():
    assert role("dashboard.data") == "surface" and not surface_may_import("dashboard.data", "collector.loaders")
    assert surface_may_import("dashboard.data", "gatewatch.api") and surface_may_import("gates.views", "gatewatch.api")
    assert not surface_may_import("gatewatch.cli.store", "collector.models")
    assert surface_may_import("gatewatch.cli.serve", "gates.views")
    assert role("gatewatch.services.delivery") == "service" and "service" not in ALLOWED["gates"]
    assert "collector" not in ALLOWED["analysis"]


def test_no_import_cycles():
    graph = {m: imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def _tree(module: str) -> ast.AST:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


def test_the_command_line_holds_no_sql_and_no_broad_value_error_handlers():
    for module in [m for m in MODULES if m.startswith("gatewatch.cli")]:
        tree = _tree(module)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "sqlalchemy" for n in names), module
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = [n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)]
                assert "ValueError" not in caught, f"{module}:{node.lineno} catches ValueError"
        source = MODULES[module].read_text(encoding="utf-8")
        assert not re.search(r"\bselect\(|\braw_events\b|\bexecute\(", source), module


# Modules that may read the process environment, and why.
ENVIRONMENT_READERS = {
    "collector.config": "the configuration loader: every Gatewatch setting from the environment",
    "gatewatch.cli.dashboard": "passes the environment on to the dashboard server it execs",
    "gatewatch.cli.serve": "passes --db, --config, --policies and --log-format on to its --workers processes",
    "gatewatch.metrics": "PROMETHEUS_MULTIPROC_DIR, which prometheus_client itself reads for multiprocess mode",
}


def test_the_environment_is_read_by_the_configuration_loader_only():
    readers = set()
    for module in MODULES:
        for node in ast.walk(_tree(module)):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.add(module)
    assert readers <= set(ENVIRONMENT_READERS), sorted(readers - set(ENVIRONMENT_READERS))


def test_every_error_is_part_of_the_one_tree():
    from gatewatch.errors import GatewatchError

    outside = []
    for module in MODULES:
        if (
            module.startswith("collector.migrations")
            or module in ("dashboard.app", "gatewatch.__main__")
            or module.startswith("dashboard.views")
        ):
            continue  # alembic scripts; scripts that run when imported (Streamlit's, `python -m gatewatch`)
        loaded = importlib.import_module(module)
        for name, value in vars(loaded).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module
                and not name.startswith("_")
                and not issubclass(value, GatewatchError)
            ):
                outside.append(f"{module}.{name}")
    assert outside == []


@pytest.mark.parametrize(
    "name",
    [
        "ConfigError",
        "PolicyError",
        "CanaryConfigError",
        "SloError",
        "ParameterError",
        "PayloadError",
        "StoreError",
        "SourceUnavailable",
        "ActionFailed",
    ],
)
def test_the_tree_maps_each_error_to_its_exit_status(name):
    from gatewatch import errors

    cls = getattr(errors, name)
    assert issubclass(cls, errors.GatewatchError)
    expected = {"PayloadError": 1, "ActionFailed": 1, "StoreError": 4, "SourceUnavailable": 5}.get(name, 2)
    assert cls.exit_code == expected
    assert name in errors.__doc__  # documented in the one place


def test_every_package_of_the_project_is_covered():
    assert {m.split(".")[0] for m in MODULES} == set(PACKAGES)
    assert {p.name for p in pkgutil.iter_modules([str(ROOT)]) if p.ispkg} >= set(PACKAGES)
