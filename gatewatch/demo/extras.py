"""The demo's files (SLOs, canary config and samples, gate policies), canary runs and gate decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import Engine

from analysis.canary import config_from_mapping, judge
from collector.canary_runs import list_runs, save_run
from collector.config import Config
from collector.gate_decisions import get_decision
from collector.loaders import Scope, load_dora_frames
from collector.timeutil import utcnow
from gatewatch.errors import ConfigError, PolicyError
from gatewatch.services.gates import GateRequest, evaluate_gate, load_policies
from gatewatch.services.notify import list_notifications, notify_slo
from gatewatch.services.slos import load_slo, slo_status

from .organisation import Service
from .telemetry import CANARY_SPAN, canary_samples, samples_frame, sli_frame, sli_intervals

OBJECTIVES = (99.9, 99.5, 99.9, 99.95)
CANARY_CONFIG: dict[str, Any] = {
    "confidence": 0.98,
    "thresholds": {"pass": 95, "marginal": 75},
    "metrics": [
        {"name": "latency_p99", "direction": "increase", "tolerance": 0.10, "critical": True, "group": "latency"},
        {"name": "latency_p50", "direction": "increase", "tolerance": 0.10, "group": "latency"},
        {"name": "error_ratio", "test": "proportion", "direction": "increase", "tolerance": 0.20, "group": "errors"},
        {"name": "cpu_cores", "direction": "increase", "tolerance": 0.20, "group": "saturation"},
    ],
}
# The three gates: the decision they come to, their service (by position), the canary they judge; the
# decision follows from that canary and the service's SLO profile below.
GATES = (("promote", 0, "healthy"), ("hold", 1, "healthy"), ("rollback", 2, "regressed"))
SLO_PROFILES = {1: "low_budget", 2: "burning"}  # service position -> profile; the others are healthy


@dataclass
class DemoExtras:
    """What `build` wrote and stored: files, canary runs and gate decisions (new and already there)."""

    folder: Path
    slos: list[dict[str, Any]] = field(default_factory=list)
    canary_runs: list[dict[str, Any]] = field(default_factory=list)
    gate_decisions: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    outbox: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """What was written and stored, as `gatewatch demo --json` prints it under `demo_files`."""
        return {
            "folder": str(self.folder),
            "slos": self.slos,
            "canary_runs": self.canary_runs,
            "gate_decisions": self.gate_decisions,
            "notifications": self.notifications,
            "outbox": self.outbox,
        }


# --- files ---------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}; run the demo in a folder you can write to") from None


def write_slos(folder: Path, services: list[Service], end: datetime, seed: int) -> list[dict[str, Any]]:
    """One SLO file and SLI CSV per service in `folder`; returns {service, objective, profile, file}."""
    out = []
    intervals = sli_intervals(end)
    for i, svc in enumerate(services):
        profile = SLO_PROFILES.get(i, "healthy")
        objective = OBJECTIVES[i % len(OBJECTIVES)]
        csv = folder / f"{svc.name}-sli.csv"
        _write(csv, sli_frame(svc.name, profile, objective, end, seed, intervals).to_csv(index=False))
        slo = {
            "service": svc.name,
            "name": "availability",
            "description": f"{svc.name} requests answered without a 5xx",
            "objective": objective,
            "window": "28d",
            "sli": {"data": csv.name},
        }
        _write(
            folder / f"{svc.name}.yaml",
            "# Written by `gatewatch demo` (rewritten by every run).\n" + yaml.safe_dump(slo, sort_keys=False),
        )
        out.append(
            {"service": svc.name, "objective": objective, "profile": profile, "file": str(folder / f"{svc.name}.yaml")}
        )
    return out


def _policy(gate: str, service: str, slo_folder: str) -> dict[str, Any]:
    slo = f"../{slo_folder}/{service}.yaml"
    return {
        "name": gate,
        "on_missing_data": "hold",
        "checks": [
            {"canary": {"config": "../canary/canary.yaml", "data": f"../canary/{gate}.csv"}, "on_fail": "rollback"},
            {"error_budget": {"slo": slo, "min_remaining": 0.25}, "on_fail": "hold"},
            {"burn_rate": {"slo": slo}, "on_fail": "rollback"},
        ],
    }


# --- the store -----------------------------------------------------------------------------------


def _recent_deployments(engine: Engine, services: list[Service], start: datetime, end: datetime) -> pd.DataFrame:
    """The demo services' production deployments of the window, newest first."""
    deps = load_dora_frames(engine, start, end, Scope()).deployments
    deps = deps[
        deps["service"].isin([s.name for s in services]) & (deps["finished_at"] >= start) & (deps["finished_at"] < end)
    ]
    return deps.sort_values(["finished_at", "id"], ascending=[False, True]).reset_index(drop=True)


def _save_canary(engine: Engine, dep: pd.Series, kind: str, seed: int) -> dict[str, Any]:
    existing = list_runs(engine, limit=1, deployment_id=dep["id"])
    finished = dep["finished_at"].to_pydatetime()
    if not existing.empty:
        row = existing.iloc[0]
        return {
            "id": row["id"],
            "deployment_id": dep["id"],
            "service": dep["service"],
            "kind": kind,
            "verdict": row["verdict"],
            "new": False,
        }
    config = config_from_mapping(CANARY_CONFIG)
    samples = canary_samples(dep["id"], kind, seed)
    verdict = judge(config, samples)
    scope = f'service="{dep["service"]}",track='
    run_id = save_run(
        engine,
        config,
        verdict,
        samples,
        "demo",
        deployment_id=dep["id"],
        window=(finished - CANARY_SPAN, finished),
        baseline_scope=scope + '"baseline"',
        canary_scope=scope + '"canary"',
    )
    return {
        "id": run_id,
        "deployment_id": dep["id"],
        "service": dep["service"],
        "kind": kind,
        "verdict": verdict.verdict,
        "new": True,
    }


def build(
    engine: Engine,
    config: Config,
    services: list[Service],
    start: datetime,
    end: datetime,
    seed: int,
    folder: Path,
    slo_folder: str = "slos",
    gate_folder: str = "gates",
    runs: int = 6,
) -> DemoExtras:
    """Write the demo files under `folder`, store canary runs of recent deployments, make the gate decisions.

    `build_demo` calls it after ingesting the delivery history. It writes SLO files with their SLI
    counts, a canary config with per-gate sample CSVs and gate policies, judges synthesized canaries of
    recent production deployments with the real judge and stores them, and makes three gate decisions
    through the real gate service: a promote, a hold and a rollback (each notified, with the SLOs'
    burn-rate alerts, on the configured channels: the demo's is an NDJSON outbox). Everything is drawn from generators
    seeded with the seed and the end date, so the files and verdicts are the same every time; stored runs
    and decisions are never stored twice (a deployment that has a canary run, or a gate key that has a
    decision, is left alone)."""
    extras = DemoExtras(folder)
    started = utcnow()
    extras.slos = write_slos(folder / slo_folder, services, end, seed)
    deps = _recent_deployments(engine, services, start, end)
    latest = deps.drop_duplicates("service")
    by_service = {row["service"]: row for _, row in latest.iterrows()}

    gated = []
    for _, position, kind in GATES:
        if position < len(services) and services[position].name in by_service:
            gated.append((services[position], kind, by_service[services[position].name]))
    canary_dir = folder / "canary"
    header = "# Written by `gatewatch demo` (rewritten by every run)"
    _write(
        canary_dir / "canary.yaml",
        f"{header}: the demo gates' canary config.\n" + yaml.safe_dump(CANARY_CONFIG, sort_keys=False),
    )
    for svc, kind, dep in gated:
        gate = f"{svc.name}-prod"
        frame = samples_frame(canary_samples(dep["id"], kind, seed), dep["finished_at"].to_pydatetime())
        _write(canary_dir / f"{gate}.csv", frame.to_csv(index=False))
        _write(
            folder / gate_folder / f"{gate}.yaml",
            f"{header}: the {svc.name} production gate.\n"
            + yaml.safe_dump(_policy(gate, svc.name, slo_folder), sort_keys=False),
        )

    # Canary runs: the latest deployment of each service not gated, and the latest rolled-back ones.
    gated_ids = {dep["id"] for *_, dep in gated}
    picks = [row for _, row in deps[~deps["id"].isin(gated_ids)].drop_duplicates("service").head(runs).iterrows()]
    picked = {row["id"] for row in picks}
    rolled_back = set(deps["rollback_of"].dropna()) | set(deps.loc[deps["status"] == "rolled_back", "id"])
    picks += [row for _, row in deps[deps["id"].isin(rolled_back - gated_ids - picked)].head(2).iterrows()]
    for i, dep in enumerate(picks):
        kind = "regressed" if dep["id"] in rolled_back else ("marginal" if i == 1 else "healthy")
        extras.canary_runs.append(_save_canary(engine, dep, kind, seed))

    try:
        policies = load_policies(folder / gate_folder) if gated else {}
    except PolicyError as exc:  # a file someone added to the demo's folder
        raise ConfigError(f"demo gate policies in {folder / gate_folder}: {exc}") from None
    for svc, _, dep in gated:
        gate = f"{svc.name}-prod"
        key = f"{gate}:{dep['id']}"
        stored = get_decision(engine, key=key)
        new = stored is None
        if stored is None:
            request = GateRequest(deployment_id=dep["id"], service=svc.name, key=key)
            stored = evaluate_gate(engine, config, policies[gate], request, now=end)
        extras.gate_decisions.append(
            {
                "gate": gate,
                "key": key,
                "deployment_id": dep["id"],
                "service": svc.name,
                "decision": stored.decision,
                "reasons": stored.reasons,
                "canary_run_id": stored.evidence.get("canary_run_id"),
                "new": new,
            }
        )
    if config.notify.channels:
        _notify(engine, config, extras, started, end)
    return extras


def _notify(engine: Engine, config: Config, extras: DemoExtras, started: datetime, end: datetime) -> None:
    """Notify the SLOs' burn-rate alerts as of the history's end (the gate decisions notified when they
    were made), and list what this run notified (sent, or suppressed as already sent)."""
    for item in extras.slos:
        spec = load_slo(item["file"])
        notify_slo(engine, config, spec, slo_status(config, spec, end))
    extras.notifications = [
        {k: n[k] for k in ("channel", "event", "action", "service", "severity", "status", "summary")}
        for n in reversed(list_notifications(engine, since=started, limit=1000))
    ]
    files = [c.path for c in config.notify.channels.values() if c.type == "file"]
    extras.outbox = files[0] if files else None
