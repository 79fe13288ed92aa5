"""Canary analysis: read a canary's samples, judge them and store the run (one path for the CLI, the
gates and the demo), read stored runs back, and a stored run's report for the dashboard."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import Engine

from analysis.canary import CanaryConfig, Verdict, config_from_mapping, judge, tolerance_band
from analysis.canary.kayenta import from_kayenta, is_kayenta_config
from analysis.canary.sequential import sequential_look
from collector.canary_runs import CanaryOutcome, CanaryRun, list_runs, load_run, save_run
from collector.canary_sequences import (
    CanaryLook,
    CanarySequence,
    list_looks,
    list_sequences,
    load_sequence,
    record_look,
)
from collector.config import Config, read_text, read_yaml
from collector.listings import load_canary_runs
from collector.loaders import Scope
from collector.notifications import deployment_owner
from collector.telemetry import SampleSource, Telemetry, read_samples
from collector.timeutil import utcnow
from gates.notify import Notifier, canary_notification
from gatewatch.errors import CanaryConfigError, ConfigError

__all__ = [
    "KayentaImport",
    "canary_report",
    "canary_runs_between",
    "canary_sequence",
    "get_canary_run",
    "import_kayenta_config",
    "list_canary_runs",
    "list_canary_sequences",
    "load_canary_config",
    "run_canary",
]


def load_canary_config(path: str | Path) -> CanaryConfig:
    """A canary config from a YAML file; CanaryConfigError names the file and the field."""
    raw = read_yaml(path, "canary config")
    try:
        return config_from_mapping(raw)
    except CanaryConfigError as exc:
        raise CanaryConfigError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class KayentaImport:
    """A Kayenta canary config as a Gatewatch one: the config (as its YAML file holds it, validated), the
    YAML text, and a note per thing that was not mapped, each naming its Kayenta field path."""

    config: dict[str, Any]
    yaml: str
    notes: list[str] = field(default_factory=list)
    canary: CanaryConfig | None = None


def import_kayenta_config(
    source: str | Path | Mapping[str, Any],
    *,
    pass_threshold: float | None = None,
    marginal_threshold: float | None = None,
) -> KayentaImport:
    """A Spinnaker Kayenta canary config (a JSON file's path, or its parsed content; a bare config or an
    ad-hoc request holding it under `canaryConfig`) as a Gatewatch canary config. The score thresholds
    given here win over the file's (`classifier.scoreThresholds`, `executionRequest.thresholds`).
    ConfigError names the file and the problem when it cannot be read or is not a Kayenta config."""
    label = "Kayenta config"
    if isinstance(source, Mapping):
        raw: Any = source
    else:
        label = f"Kayenta config {str(source)!r}"
        raw = _read_json(Path(source), label)
    if not is_kayenta_config(raw):
        raise ConfigError(
            f"{label}: not a Kayenta canary config (expected a JSON object with a non-empty list of metrics, "
            "each with query and analysisConfigurations)"
        )
    config, notes = from_kayenta(raw, pass_threshold, marginal_threshold)
    try:
        canary = config_from_mapping(config)
    except CanaryConfigError as exc:
        raise CanaryConfigError(f"{label}: the imported config does not validate: {exc}") from None
    inner = raw.get("canaryConfig", raw)
    header = f"# Gatewatch canary config imported from Kayenta canary config {inner.get('name', '(unnamed)')!r}\n"
    header += "".join(f"# not mapped: {note}\n" for note in notes)
    text = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=120)
    return KayentaImport(config, text, notes, canary)


def _read_json(path: Path, label: str) -> Any:
    text = read_text(path, "Kayenta config")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def run_canary(
    engine: Engine | None,
    config: Config,
    canary: CanaryConfig,
    source: SampleSource,
    *,
    window: tuple[datetime, datetime] | None = None,
    deployment_id: str | None = None,
    store: bool = True,
    sequence: str | None = None,
    at: datetime | None = None,
) -> CanaryOutcome:
    """Read the samples (`source` over `window`), judge them and, with `store`, record the run with
    what it judged (`engine` may be None when not storing). A source that cannot be read gives
    `nodata` for its metrics, never a pass.

    A config with `mode: sequential` takes the next look of the sequence stored under `sequence` (a
    key: the gate's key and check, or `canary run --sequence`) at `at` (default now), reading every
    sample since the sequence started (`window`'s start at its first look, else one look interval
    before it), and answers pass, fail, continue or nodata; a look asked again within the look interval,
    or of a decided sequence, returns the last look."""
    if canary.mode == "sequential":
        if engine is None or not store or not sequence:
            raise CanaryConfigError(
                "mode: sequential: a sequential canary needs a sequence key (--sequence KEY) and the store, "
                "which keeps its looks"
            )
        return _sequential(engine, config, canary, source, sequence, window, deployment_id, at or utcnow())
    telemetry = read_samples(canary, source, window, config.prometheus)
    verdict = judge(canary, telemetry.samples, telemetry.errors)
    run_id = None
    if store:
        if engine is None:
            raise ValueError("run_canary: storing a run needs the store's engine")
        scopes = _scopes(source)
        run_id = save_run(
            engine,
            canary,
            verdict,
            telemetry.samples,
            source.kind,
            deployment_id=deployment_id,
            window=window,
            baseline_scope=scopes[0],
            canary_scope=scopes[1],
        )
        return _notified(engine, config, CanaryOutcome(verdict, run_id, telemetry), deployment_id)
    return CanaryOutcome(verdict, run_id, telemetry)


def _notified(engine: Engine, config: Config, outcome: CanaryOutcome, deployment_id: str | None) -> CanaryOutcome:
    """`outcome`, a stored `fail` verdict notified first (deduplicated by deployment, else run)."""
    notifier = Notifier(engine, config)
    if notifier.enabled and outcome.verdict.verdict == "fail" and outcome.run_id is not None:
        service, team = deployment_owner(engine, deployment_id) if deployment_id else (None, None)
        note = canary_notification(outcome.verdict.to_dict(), outcome.run_id, deployment_id, service, utcnow())
        if note is not None:
            notifier.send(replace(note, team=team))
    return outcome


def _scopes(source: SampleSource) -> tuple[str | None, str | None]:
    return getattr(source, "baseline", None), getattr(source, "canary", None)


def _sequential(
    engine: Engine,
    config: Config,
    canary: CanaryConfig,
    source: SampleSource,
    key: str,
    window: tuple[datetime, datetime] | None,
    deployment_id: str | None,
    now: datetime,
) -> CanaryOutcome:
    """The next look of sequence `key` (see `run_canary`)."""
    stored = load_sequence(engine, key)
    rules = canary.sequential
    if stored is not None:
        if stored.config.to_dict() != canary.to_dict():
            raise CanaryConfigError(
                f"sequence {key!r} was started with another canary config: use a new key for a new rollout"
            )
        looks = list_looks(engine, key)
        if looks and (stored.decision is not None or now - looks[-1].created_at < rules.look_interval):
            return _stored_look(looks[-1])
        started = stored.started_at
    else:
        started = window[0] if window is not None else now - rules.look_interval
    if now <= started:
        raise CanaryConfigError(f"sequence {key!r}: a look at {now.isoformat()} is not after its start")
    span = (started, now)
    telemetry = read_samples(canary, source, span, config.prometheus)
    verdict, state = sequential_look(
        canary, telemetry.samples, now - started, stored.state if stored else None, telemetry.errors
    )
    scopes = _scopes(source)
    new = CanarySequence(
        key,
        stored.created_at if stored else now,
        started,
        now,
        canary,
        source.kind,
        deployment_id if stored is None else stored.deployment_id,
        scopes[0],
        scopes[1],
        state.looks,
        state.decision,
        state,
    )
    recorded, run_id = record_look(engine, key, stored, new, verdict, telemetry.samples, span)
    if not recorded:  # another process took this look first: its answer is the sequence's
        return _stored_look(list_looks(engine, key)[-1])
    return _notified(engine, config, CanaryOutcome(verdict, run_id, telemetry), new.deployment_id)


def _stored_look(look: CanaryLook) -> CanaryOutcome:
    verdict = Verdict.from_dict(look.result)
    verdict.reasons.insert(0, f"look {look.look} (taken {look.created_at:%H:%M:%S} UTC) stands")
    return CanaryOutcome(verdict, look.run_id, Telemetry())


def canary_sequence(engine: Engine, key: str) -> dict[str, Any] | None:
    """A sequence as the Canary page draws it: its state and, per look, the elapsed minutes, verdict and
    each metric's anytime-valid interval and bands relative to the baseline; None when unknown."""
    stored = load_sequence(engine, key)
    if stored is None:
        return None
    rows = []
    for look in list_looks(engine, key):
        for metric in look.result.get("metrics", []):
            reference = (metric.get("baseline") or {}).get("median")
            ci = metric.get("ci")
            bands = (metric.get("sequence") or {}).get("band")
            scale = abs(reference) if reference else None
            rows.append(
                {
                    "look": look.look,
                    "minutes": look.elapsed_s / 60.0,
                    "verdict": look.verdict,
                    "metric": metric["name"],
                    "classification": metric.get("classification"),
                    "low": ci[0] / scale if ci and scale else None,
                    "high": ci[1] / scale if ci and scale else None,
                    "shift": metric["shift"] / scale if metric.get("shift") is not None and scale else None,
                    "fail_band": bands[0] / scale if bands and scale else None,
                    "pass_band": bands[1] / scale if bands and scale else None,
                    "run_id": look.run_id,
                }
            )
    columns = [
        "look", "minutes", "verdict", "metric", "classification", "low", "high", "shift", "fail_band",
        "pass_band", "run_id",
    ]  # fmt: skip
    return {
        "key": stored.key,
        "started_at": stored.started_at,
        "updated_at": stored.updated_at,
        "looks": stored.looks,
        "decision": stored.decision,
        "deployment_id": stored.deployment_id,
        "rules": stored.config.sequential.model_dump(mode="json"),
        "frame": pd.DataFrame(rows, columns=columns),
    }


def list_canary_sequences(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The latest sequential canaries, newest first (key, started_at, updated_at, looks, decision)."""
    return list_sequences(engine, limit)


def get_canary_run(engine: Engine, run_id: str) -> CanaryRun | None:
    """A stored run with its config, result and samples (to audit or re-judge it), or None."""
    return load_run(engine, run_id)


def list_canary_runs(engine: Engine, limit: int = 50, deployment_id: str | None = None) -> pd.DataFrame:
    """The latest runs, newest first (id, created_at, verdict, score, source, deployment_id, window)."""
    return list_runs(engine, limit, deployment_id)


def canary_runs_between(
    engine: Engine, start: datetime, end: datetime, scope: Scope | None = None, limit: int = 200
) -> pd.DataFrame:
    """Runs created in [start, end), newest first, with their deployment's service (of the scope's
    service or team when given)."""
    return load_canary_runs(engine, start, end, scope or Scope(), limit)


def canary_report(engine: Engine, run_id: str, bins: int = 40) -> dict[str, Any] | None:
    """One stored run as the Canary page draws it: its result, and per metric the tolerance band the
    judge used and both sides' samples binned on one scale; None when there is no such run."""
    run = load_run(engine, run_id)
    if run is None:
        return None
    specs = {m.name: m for m in run.config.metrics}
    metrics = []
    for item in run.result.get("metrics", []):
        spec = specs.get(item["name"])
        baseline, canary = run.samples.get(item["name"], (np.empty(0), np.empty(0)))
        if item.get("test") == "proportion":  # good/total pairs: the per-interval rate is what varies
            baseline, canary = _rates(baseline), _rates(canary)
        reference = (item.get("baseline") or {}).get("median")
        band = None if spec is None or reference is None else tolerance_band(spec, reference)
        metrics.append(
            {
                **item,
                "tolerance": None if spec is None else spec.tolerance,
                "band": band,
                "direction": None if spec is None else spec.direction,
                "histogram": _histogram(np.asarray(baseline, float), np.asarray(canary, float), bins),
            }
        )
    return {
        "id": run.id,
        "created_at": run.created_at,
        "verdict": run.verdict,
        "score": run.score,
        "source": run.source,
        "deployment_id": run.deployment_id,
        "window": (run.window_start, run.window_end),
        "baseline_scope": run.baseline_scope,
        "canary_scope": run.canary_scope,
        "reasons": run.result.get("reasons", []),
        "groups": run.result.get("groups"),
        "metrics": metrics,
        "sequence_key": run.result.get("sequence_key"),  # a sequential look's sequence (see canary_sequence)
    }


def _histogram(baseline: np.ndarray, canary: np.ndarray, bins: int) -> pd.DataFrame:
    """Both sides' share of samples per bin, on one scale (0.5th to 99.5th percentile of both)."""
    values = np.concatenate([baseline, canary])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return pd.DataFrame(columns=["side", "lo", "hi", "share"])
    lo, hi = np.percentile(values, [0.5, 99.5])
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    rows = []
    for side, sample in (("baseline", baseline), ("canary", canary)):
        sample = sample[np.isfinite(sample)]
        counts, _ = np.histogram(np.clip(sample, lo, hi), bins=edges)
        rows.append(
            pd.DataFrame({"side": side, "lo": edges[:-1], "hi": edges[1:], "share": counts / max(sample.size, 1)})
        )
    return pd.concat(rows, ignore_index=True)


def _rates(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=float).reshape(-1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs[:, 1] > 0, pairs[:, 0] / pairs[:, 1], np.nan)
