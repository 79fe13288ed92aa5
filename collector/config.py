"""Gatewatch configuration (`gatewatch.yaml`): what counts as production, who owns what, secrets.

Looked up from `--config`, else `GATEWATCH_CONFIG`, else `./gatewatch.yaml` when it exists, else
the defaults below. Secrets may also come from the environment (GATEWATCH_GITHUB_SECRET,
GATEWATCH_GITLAB_TOKEN, GATEWATCH_PAGERDUTY_SECRET, GATEWATCH_EVENTS_TOKEN, GATEWATCH_GATE_TOKEN),
which wins over the file; GATEWATCH_GATE_POLICIES names the folder of gate policies (`gates.policies`)
and GATEWATCH_SLOS the folder of SLO files (`slos`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError
from .timeutil import parse_duration

DEFAULT_PRODUCTION_ENVIRONMENTS = ("production", "prod", "prd", "live")
DEFAULT_PRODUCTION_STAGE = r"(?i)prod"
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024

_SECRET_ENV = {
    "github_secret": "GATEWATCH_GITHUB_SECRET",
    "gitlab_token": "GATEWATCH_GITLAB_TOKEN",
    "pagerduty_secret": "GATEWATCH_PAGERDUTY_SECRET",
    "events_token": "GATEWATCH_EVENTS_TOKEN",
    "gate_token": "GATEWATCH_GATE_TOKEN",
}


@lru_cache(maxsize=4096)
def _matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


@dataclass(frozen=True)
class Secrets:
    """Shared secrets of the webhook receiver and the gate API; never logged (repr hides them)."""

    github_secret: str | None = field(default=None, repr=False)
    gitlab_token: str | None = field(default=None, repr=False)
    pagerduty_secret: str | None = field(default=None, repr=False)
    events_token: str | None = field(default=None, repr=False)
    gate_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Config:
    """What the collector needs to turn events into production deployments of services and teams."""

    production_environments: tuple[str, ...] = DEFAULT_PRODUCTION_ENVIRONMENTS
    production_stage_pattern: str = DEFAULT_PRODUCTION_STAGE
    production_stages: Mapping[str, str] = field(default_factory=dict)
    pipeline_services: Mapping[str, str] = field(default_factory=dict)
    repository_services: Mapping[str, str] = field(default_factory=dict)
    pagerduty_services: Mapping[str, str] = field(default_factory=dict)
    service_teams: Mapping[str, str] = field(default_factory=dict)
    incident_label: str = "incident"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    secrets: Secrets = field(default_factory=Secrets)
    dora_benchmark: str | None = None
    dora_link_window: str = "24h"
    benchmarks: Mapping[str, Any] = field(default_factory=dict)
    gate_policies: str | None = None
    slos: str | None = None
    runbooks: Mapping[str, str] = field(default_factory=dict)
    source_path: str | None = None

    def is_production_environment(self, environment: str | None) -> bool:
        """True when an environment name (case-insensitive) means production."""
        return bool(environment) and environment.strip().lower() in self.production_environments

    def is_production_stage(self, pipeline: str, stage: str) -> bool:
        """True when a CodePipeline stage deploys to production: the pipeline's configured stage, else by pattern."""
        if pipeline in self.production_stages:
            return stage == self.production_stages[pipeline]
        return _matches(self.production_stage_pattern, stage)

    def service_for_pipeline(self, pipeline: str) -> str:
        """Service of a CodePipeline pipeline or CI workflow: the configured map, else its name."""
        return self.pipeline_services.get(pipeline, pipeline)

    def service_for_repository(self, full_name: str) -> str:
        """Service of a repository (`owner/name`): the configured map, else the repository's name."""
        if full_name in self.repository_services:
            return self.repository_services[full_name]
        return full_name.rsplit("/", 1)[-1]

    def service_for_pagerduty(self, service_id: str | None, name: str | None) -> str | None:
        """Service of a PagerDuty service: the configured map (by id or name), else its name."""
        for candidate in (service_id, name):
            if candidate and candidate in self.pagerduty_services:
                return self.pagerduty_services[candidate]
        return name or service_id

    def team_for(self, service: str | None) -> str | None:
        """The team that owns a service, if configured."""
        return self.service_teams.get(service) if service else None


def _mapping(raw: Mapping[str, Any], key: str) -> dict[str, str]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"config '{key}': expected a mapping of names to strings")
    return {str(k): v for k, v in value.items()}


def _names(raw: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config '{key}': expected a list of names")
    return tuple(value)


def config_from_mapping(raw: Mapping[str, Any] | None, source_path: str | None = None,
                        environ: Mapping[str, str] | None = None) -> Config:
    """Build a Config from a parsed YAML mapping (see README 'Configuration')."""
    raw = raw or {}
    environ = os.environ if environ is None else environ
    if not isinstance(raw, Mapping):
        raise ConfigError("config: expected a YAML mapping at the top level")
    known = {"production", "services", "teams", "incident_label", "webhooks", "dora", "gates", "runbooks", "slos"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"config: unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}")
    production = raw.get("production") or {}
    services = raw.get("services") or {}
    webhooks = raw.get("webhooks") or {}
    dora = raw.get("dora") or {}
    gates = raw.get("gates") or {}
    for name, value in (("production", production), ("services", services), ("webhooks", webhooks),
                        ("dora", dora), ("gates", gates)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config '{name}': expected a mapping")
    stage_pattern = production.get("stage_pattern", DEFAULT_PRODUCTION_STAGE)
    try:
        re.compile(stage_pattern)
    except (re.error, TypeError) as exc:
        raise ConfigError(f"config 'production.stage_pattern': not a valid regular expression ({exc})") from None
    max_body = webhooks.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if not isinstance(max_body, int) or max_body <= 0:
        raise ConfigError("config 'webhooks.max_body_bytes': expected a positive integer")
    secrets = {}
    for key, env_name in _SECRET_ENV.items():
        section, where = (gates, "gates.token") if key == "gate_token" else (webhooks, f"webhooks.{key}")
        value = environ.get(env_name) or section.get("token" if key == "gate_token" else key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"config '{where}': expected a string")
        secrets[key] = value
    policies = environ.get("GATEWATCH_GATE_POLICIES") or gates.get("policies")
    if policies is not None and not isinstance(policies, str):
        raise ConfigError("config 'gates.policies': expected a folder of gate policy files")
    slos = environ.get("GATEWATCH_SLOS") or raw.get("slos")
    if slos is not None and not isinstance(slos, str):
        raise ConfigError("config 'slos': expected a folder of SLO files")
    if source_path:  # folders named in the file are relative to it
        policies, slos = (str(Path(source_path).resolve().parent / p) if p and not Path(p).is_absolute() else p
                          for p in (policies, slos))
    link_window = str(dora.get("link_window", "24h"))
    try:
        parse_duration(link_window)
    except ValueError as exc:
        raise ConfigError(f"config 'dora.link_window': {exc}") from None
    custom = dora.get("benchmarks") or {}
    if not isinstance(custom, Mapping):
        raise ConfigError("config 'dora.benchmarks': expected a mapping of name to {metric: {tier: bound}}")
    return Config(
        production_environments=tuple(e.lower() for e in _names(production, "environments",
                                                               DEFAULT_PRODUCTION_ENVIRONMENTS)),
        production_stage_pattern=stage_pattern,
        production_stages=_mapping(production, "stages"),
        pipeline_services=_mapping(services, "pipelines"),
        repository_services=_mapping(services, "repositories"),
        pagerduty_services=_mapping(services, "pagerduty"),
        service_teams=_mapping(raw, "teams"),
        incident_label=str(raw.get("incident_label", "incident")),
        max_body_bytes=max_body,
        secrets=Secrets(**secrets),
        dora_benchmark=dora.get("benchmark"),
        dora_link_window=link_window,
        benchmarks=dict(custom),
        gate_policies=policies,
        slos=slos,
        runbooks=_mapping(raw, "runbooks"),
        source_path=source_path,
    )


def read_yaml(path: str | os.PathLike[str], what: str) -> Any:
    """A YAML file's content; ConfigError naming `what` and the file when it is missing or not YAML."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{what} {str(path)!r}: no such file")
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {str(path)!r}: not valid YAML ({exc})") from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the configuration from `path`, GATEWATCH_CONFIG or ./gatewatch.yaml; defaults otherwise."""
    chosen = path or os.environ.get("GATEWATCH_CONFIG")
    if not chosen and Path("gatewatch.yaml").is_file():
        chosen = "gatewatch.yaml"
    if not chosen:
        return config_from_mapping({})
    raw = read_yaml(chosen, "config file (from --config or GATEWATCH_CONFIG)")
    return config_from_mapping(raw, source_path=str(chosen))
