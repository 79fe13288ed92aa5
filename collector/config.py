"""Gatewatch configuration: `gatewatch.yaml` (what counts as production, who owns what, folders, DORA
settings) and the environment, read here and nowhere else.

The file is `--config`, else `$GATEWATCH_CONFIG`, else `./gatewatch.yaml` when it exists, else the
defaults. The environment wins over the file for secrets (GATEWATCH_GITHUB_SECRET,
GATEWATCH_GITLAB_TOKEN, GATEWATCH_PAGERDUTY_SECRET, GATEWATCH_EVENTS_TOKEN, GATEWATCH_GATE_TOKEN) and
folders (GATEWATCH_GATE_POLICIES, GATEWATCH_SLOS); it alone gives the store (`--db`, else
GATEWATCH_DB), Prometheus's URL and credentials (GATEWATCH_PROMETHEUS_URL, _TOKEN, _USER, _PASSWORD)
and, inside GitHub Actions, where step outputs go (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import Field, field_validator, model_validator

from analysis.tiers import Benchmark, benchmark_from_mapping, get_benchmark
from gatewatch.errors import ConfigError
from gatewatch.schema import Duration, Model, PositiveDuration, validate

from .redaction import mask_url
from .textfiles import encoding_label, file_problem, one_line, text_encoding

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PRODUCTION_ENVIRONMENTS",
    "DEFAULT_PRODUCTION_STAGE",
    "DEFAULT_URL",
    "NOTIFY_EVENTS",
    "NOTIFY_SEVERITIES",
    "PAGERDUTY_EVENTS_URL",
    "Channel",
    "Config",
    "Notify",
    "Route",
    "config_from_mapping",
    "environment_variable",
    "load_config",
    "read_text",
    "read_yaml",
    "store_url",
]

DEFAULT_URL = "sqlite:///gatewatch.db"
DEFAULT_PRODUCTION_ENVIRONMENTS = ("production", "prod", "prd", "live")
DEFAULT_PRODUCTION_STAGE = r"(?i)prod"
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
FILE_NAME = "gatewatch.yaml"

# environment variable -> (section, key) of the file it overrides
_OVERRIDES = {
    "GATEWATCH_GITHUB_SECRET": ("webhooks", "github_secret"),
    "GATEWATCH_GITLAB_TOKEN": ("webhooks", "gitlab_token"),
    "GATEWATCH_PAGERDUTY_SECRET": ("webhooks", "pagerduty_secret"),
    "GATEWATCH_EVENTS_TOKEN": ("webhooks", "events_token"),
    "GATEWATCH_GATE_TOKEN": ("gates", "token"),
    "GATEWATCH_GATE_POLICIES": ("gates", "policies"),
    "GATEWATCH_METRICS_TOKEN": ("metrics", "token"),
    "GATEWATCH_SLOS": (None, "slos"),
    "GATEWATCH_PROMETHEUS_URL": ("prometheus", "url"),
    "GATEWATCH_PROMETHEUS_TOKEN": ("prometheus", "token"),
    "GATEWATCH_PROMETHEUS_USER": ("prometheus", "user"),
    "GATEWATCH_PROMETHEUS_PASSWORD": ("prometheus", "password"),
}
Secret = str | None
Names = dict[str, str]


@lru_cache(maxsize=4096)
def _matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


class Production(Model):
    """Which environments, CodePipeline stages and CodeDeploy deployment groups are production."""

    environments: tuple[str, ...] = DEFAULT_PRODUCTION_ENVIRONMENTS
    stage_pattern: str = DEFAULT_PRODUCTION_STAGE
    stages: Names = Field(default_factory=dict)
    deployment_group_pattern: str = DEFAULT_PRODUCTION_STAGE

    @field_validator("environments", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else value
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(v.strip().lower() for v in value)
        raise ValueError(f"expected a list of environment names, got {value!r}")

    @field_validator("stage_pattern", "deployment_group_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class Services(Model):
    """Which service a CodePipeline pipeline or workflow, a repository, a PagerDuty service, a CodeDeploy
    application (or application/deployment group) and a CodeBuild project is."""

    pipelines: Names = Field(default_factory=dict)
    repositories: Names = Field(default_factory=dict)
    pagerduty: Names = Field(default_factory=dict)
    alarms: Names = Field(default_factory=dict)  # CloudWatch alarm name or glob (fnmatch) -> service
    codedeploy: Names = Field(default_factory=dict)
    codebuild: Names = Field(default_factory=dict)


class Webhooks(Model):
    """The webhook receiver's body limit and shared secrets (never shown in a repr or a log)."""

    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, gt=0)
    github_secret: Secret = Field(None, repr=False)
    gitlab_token: Secret = Field(None, repr=False)
    pagerduty_secret: Secret = Field(None, repr=False)
    events_token: Secret = Field(None, repr=False)


class Dora(Model):
    """The DORA report's defaults: the tier table and how long an unlinked incident is blamed on a deployment."""

    benchmark: str | None = None
    link_window: Duration = timedelta(hours=24)
    benchmarks: dict[str, dict[str, dict[str, float | int]]] = Field(default_factory=dict)

    @field_validator("benchmarks")
    @classmethod
    def _tables(cls, value: dict) -> dict:
        for name, table in value.items():
            try:
                benchmark_from_mapping(name, table)
            except ConfigError as exc:  # names the metric and tier
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _known_benchmark(self) -> Dora:
        if self.benchmark is not None:
            try:
                get_benchmark(self.benchmark, self.benchmarks)
            except ConfigError as exc:
                raise ValueError(f"benchmark: {exc}") from None
        return self

    def tiers(self, name: str | None = None) -> Benchmark:
        """The tier table `name` (default: `benchmark`, else dora-2024), built in or defined here."""
        try:
            return get_benchmark(name or self.benchmark, self.benchmarks)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


class Gates(Model):
    """The folder of gate policies the HTTP service and the Lambda serve, and the gate API's token."""

    policies: str | None = None
    token: Secret = Field(None, repr=False)


class Metrics(Model):
    """`GET /metrics` of the server: open to anyone who can reach it, unless a bearer token is set."""

    token: Secret = Field(None, repr=False)


class Prometheus(Model):
    """The default Prometheus-compatible server and its credentials (from the environment)."""

    url: str | None = None
    token: Secret = Field(None, repr=False)
    user: str | None = None
    password: Secret = Field(None, repr=False)

    @property
    def headers(self) -> dict[str, str] | None:
        """The bearer-token header, when a token is set."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else None

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        return (self.user, self.password or "") if self.user else None


class GithubActions(Model):
    """Where a step's outputs and summary go when running inside GitHub Actions (unset elsewhere)."""

    output: str | None = None
    step_summary: str | None = None


EventKind = Literal[
    "gate_rollback",
    "gate_hold",
    "action_failed",
    "canary_fail",
    "deployment_failed",
    "burn_rate_page",
    "burn_rate_ticket",
    "data_stale",
    "test",
]
Severity = Literal["critical", "error", "warning", "info"]  # PagerDuty Events v2's, most severe first
NOTIFY_EVENTS: tuple[str, ...] = get_args(EventKind)
NOTIFY_SEVERITIES: tuple[str, ...] = get_args(Severity)
CHANNEL_TYPES = ("slack", "pagerduty", "sns", "webhook", "file")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
# Each channel type's settings: required, optional (anything else is refused, naming the type).
_CHANNEL_FIELDS = {
    "slack": ({"url"}, set()),
    "pagerduty": ({"routing_key"}, {"url"}),
    "sns": ({"topic_arn"}, {"region"}),
    "webhook": ({"url"}, {"method", "headers", "template"}),
    "file": ({"path"}, set()),
}
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Channel(Model):
    """Where notifications go: a Slack incoming webhook (`url`), PagerDuty Events API v2
    (`routing_key`, `url` for tests), an SNS topic (`topic_arn`, `region`), a webhook (`url`, `method`,
    `headers`, a Jinja2 `template` for the body) or a file (`path`: an NDJSON outbox). `${VAR}` in a
    URL, routing key or header value is read from the environment when sending, never stored."""

    type: Literal["slack", "pagerduty", "sns", "webhook", "file"]
    url: str | None = Field(None, repr=False)  # a Slack webhook URL is a secret when written out
    routing_key: str | None = Field(None, repr=False)
    topic_arn: str | None = None
    region: str | None = None
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    template: str | None = None
    path: str | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if "\n" in text or "\r" in text:
                raise ValueError(f"{name}: expected a one-line value (use ${{VAR}} for secrets)")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> Channel:
        required, optional = _CHANNEL_FIELDS[self.type]
        given = {
            name
            for name, spec in type(self).model_fields.items()
            if name != "type" and getattr(self, name) != spec.get_default(call_default_factory=True)
        }
        for name in sorted(required - given):
            raise ValueError(f"{name}: required for a {self.type} channel")
        for name in sorted(given - required - optional):
            raise ValueError(
                f"{name}: not a setting of a {self.type} channel (it takes {', '.join(sorted(required | optional))})"
            )
        if self.url is not None and not re.match(r"(https?://[^/\s]+|\$\{[A-Za-z_][A-Za-z0-9_]*\})", self.url):
            raise ValueError(
                f"url: expected an http:// or https:// URL or a ${{VAR}} placeholder, got {mask_url(self.url)!r}"
            )
        if self.type == "sns" and not (self.topic_arn or "").startswith("arn:"):
            raise ValueError(f"topic_arn: expected an SNS topic ARN (arn:aws:sns:...), got {self.topic_arn!r}")
        if self.template is not None:
            from jinja2 import TemplateSyntaxError
            from jinja2.sandbox import SandboxedEnvironment

            try:
                SandboxedEnvironment().parse(self.template)
            except TemplateSyntaxError as exc:
                raise ValueError(f"template: not a valid Jinja2 template ({exc.message}, line {exc.lineno})") from None
        return self


class Route(Model):
    """Which notifications a route sends to its channels: events, services, teams and severities (each
    empty: any)."""

    channels: tuple[str, ...] = Field(min_length=1, strict=False)
    events: tuple[EventKind, ...] = Field((), strict=False)
    services: tuple[str, ...] = Field((), strict=False)
    teams: tuple[str, ...] = Field((), strict=False)
    severities: tuple[Severity, ...] = Field((), strict=False)

    def matches(self, event: str, service: str | None, team: str | None, severity: str) -> bool:
        """True when a notification of this event, service, team and severity takes this route."""
        return (
            (not self.events or event in self.events)
            and (not self.services or service in self.services)
            and (not self.teams or team in self.teams)
            and (not self.severities or severity in self.severities)
        )


class Notify(Model):
    """Notifications: the channels by name, the routes (none: every event to every channel), the dedupe
    window, the HTTP retries, the base URL of decision links and the server's scan interval."""

    channels: dict[str, Channel] = Field(default_factory=dict)
    routes: tuple[Route, ...] = Field((), strict=False)
    dedupe_window: PositiveDuration = timedelta(hours=1)
    retries: int = Field(3, ge=0)
    backoff: PositiveDuration = timedelta(seconds=1)
    timeout: PositiveDuration = timedelta(seconds=5)
    max_time: PositiveDuration = timedelta(seconds=30)
    base_url: str | None = None
    scan_interval: Duration = timedelta(0)

    @model_validator(mode="after")
    def _known_channels(self) -> Notify:
        for i, route in enumerate(self.routes):
            for name in route.channels:
                if name not in self.channels:
                    known = ", ".join(sorted(self.channels)) or "none defined"
                    raise ValueError(f"routes[{i}].channels: no channel {name!r} (channels: {known})")
        if self.base_url is not None and not re.match(r"https?://[^/\s]+", self.base_url):
            raise ValueError(f"base_url: expected an http:// or https:// URL, got {self.base_url!r}")
        return self

    def channels_for(self, event: str, service: str | None, team: str | None, severity: str) -> list[str]:
        """The channels a notification goes to, in configuration order (each once)."""
        if not self.routes:
            return list(self.channels)
        chosen = {name for r in self.routes if r.matches(event, service, team, severity) for name in r.channels}
        return [name for name in self.channels if name in chosen]


class ConfigFile(Model):
    """`gatewatch.yaml` as written (see README 'Configuration')."""

    production: Production = Field(default_factory=Production)
    services: Services = Field(default_factory=Services)
    teams: Names = Field(default_factory=dict)
    incident_label: str = "incident"
    webhooks: Webhooks = Field(default_factory=Webhooks)
    dora: Dora = Field(default_factory=Dora)
    gates: Gates = Field(default_factory=Gates)
    metrics: Metrics = Field(default_factory=Metrics)
    slos: str | None = None
    runbooks: Names = Field(default_factory=dict)
    prometheus: Prometheus = Field(default_factory=Prometheus)
    notify: Notify = Field(default_factory=Notify)


class Config(ConfigFile):
    """The configuration in use: the file's settings with the environment's, the store, and where
    the file was read from."""

    store_url: str = DEFAULT_URL
    source_path: str | None = None
    github_actions: GithubActions = Field(default_factory=GithubActions)

    def is_production_environment(self, environment: str | None) -> bool:
        """True when an environment name (case-insensitive) means production."""
        return bool(environment) and environment.strip().lower() in self.production.environments  # type: ignore[union-attr]

    def is_production_stage(self, pipeline: str, stage: str) -> bool:
        """True when a CodePipeline stage deploys to production: the pipeline's configured stage, else by pattern."""
        stages = self.production.stages
        if pipeline in stages:
            return stage == stages[pipeline]
        return _matches(self.production.stage_pattern, stage)

    def service_for_pipeline(self, pipeline: str) -> str:
        """Service of a CodePipeline pipeline or CI workflow: the configured map, else its name."""
        return self.services.pipelines.get(pipeline, pipeline)

    def is_production_deployment_group(self, group: str) -> bool:
        """True when a CodeDeploy deployment group deploys to production (by `deployment_group_pattern`)."""
        return _matches(self.production.deployment_group_pattern, group)

    def service_for_codedeploy(self, application: str, group: str) -> str:
        """Service of a CodeDeploy deployment: the map's `application/group`, else `application`, else the name."""
        mapped = self.services.codedeploy
        return mapped.get(f"{application}/{group}") or mapped.get(application) or application

    def service_for_build_project(self, project: str) -> str:
        """Service of a CodeBuild project: the configured map, else the project's name."""
        return self.services.codebuild.get(project, project)

    def service_for_repository(self, full_name: str) -> str:
        """Service of a repository (`owner/name`): the configured map, else the repository's name."""
        if full_name in self.services.repositories:
            return self.services.repositories[full_name]
        return full_name.rsplit("/", 1)[-1]

    def service_for_pagerduty(self, service_id: str | None, name: str | None) -> str | None:
        """Service of a PagerDuty service: the configured map (by id or name), else its name."""
        for candidate in (service_id, name):
            if candidate and candidate in self.services.pagerduty:
                return self.services.pagerduty[candidate]
        return name or service_id

    def service_for_alarm(self, name: str, dimensions: Mapping[str, str] | None = None) -> str | None:
        """Service of a CloudWatch alarm: the configured map (exact name, then the first matching glob),
        else the alarm metric's `service` or `ServiceName` dimension, else None."""
        alarms = self.services.alarms
        if name in alarms:
            return alarms[name]
        for pattern, service in alarms.items():
            if fnmatchcase(name, pattern):
                return service
        dimensions = dimensions or {}
        return dimensions.get("service") or dimensions.get("ServiceName")

    def team_for(self, service: str | None) -> str | None:
        """The team that owns a service, if configured."""
        return self.teams.get(service) if service else None


def store_url(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The store URL: `explicit` (--db), else GATEWATCH_DB, else ./gatewatch.db; postgresql:// URLs
    use the psycopg 3 driver Gatewatch ships."""
    environ = os.environ if environ is None else environ
    chosen = explicit or environ.get("GATEWATCH_DB") or DEFAULT_URL
    for prefix in ("postgresql://", "postgres://"):
        if chosen.startswith(prefix):
            chosen = "postgresql+psycopg://" + chosen[len(prefix) :]
    return chosen


def environment_variable(name: str) -> str | None:
    """One environment variable, for a policy's `${VAR}` placeholders (read when the action runs)."""
    return os.environ.get(name)


def config_from_mapping(
    raw: Any, source_path: str | None = None, environ: Mapping[str, str] | None = None, db: str | None = None
) -> Config:
    """The configuration from a parsed `gatewatch.yaml` mapping and the environment (default os.environ)."""
    environ = os.environ if environ is None else environ
    label = f"config {source_path}" if source_path else "config"
    raw = {} if raw is None else raw
    file = validate(ConfigFile, raw, label=label)
    sections = {
        name: getattr(file, name).model_dump() if isinstance(getattr(file, name), Model) else getattr(file, name)
        for name in ConfigFile.model_fields
    }
    if source_path:  # folders named in the file are relative to it
        base = Path(source_path).resolve().parent
        sections["gates"]["policies"] = _relative(sections["gates"]["policies"], base)
        sections["slos"] = _relative(sections["slos"], base)
        for channel in sections["notify"]["channels"].values():
            channel["path"] = _relative(channel["path"], base)
    for variable, (section, key) in _OVERRIDES.items():
        value = environ.get(variable)
        if value:
            (sections[section] if section else sections)[key] = value
    return validate(
        Config,
        {
            **sections,
            "store_url": store_url(db, environ),
            "source_path": source_path,
            "github_actions": {
                "output": environ.get("GITHUB_OUTPUT") or None,
                "step_summary": environ.get("GITHUB_STEP_SUMMARY") or None,
            },
        },
        label=label,
    )


def _relative(folder: str | None, base: Path) -> str | None:
    return str(base / folder) if folder and not Path(folder).is_absolute() else folder


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """A text file's content (UTF-8, or UTF-16/32 with a byte-order mark; the mark dropped); ConfigError
    naming `what` and the file when it cannot be read."""
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"{what} {str(path)!r}: {problem}")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: cannot be read ({exc.strerror or exc})") from None
    encoding = text_encoding(data[:4])
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {str(path)!r}: not a {encoding_label(encoding)} text file ({exc.reason} at byte {exc.start})"
        ) from None


def read_yaml(path: str | os.PathLike[str], what: str) -> Any:
    """A YAML file's content; ConfigError naming `what` and the file when it cannot be read or parsed."""
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {str(path)!r}: not valid YAML ({_yaml_problem(exc)})") from None
    except RecursionError:
        raise ConfigError(f"{what} {str(path)!r}: not valid YAML (nested too deeply)") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where (line and column counted from 1)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        return f"{what} at line {mark.line + 1}, column {mark.column + 1}" if mark else what
    return one_line(exc)


def config_file(path: str | os.PathLike[str] | None = None) -> str | None:
    """Which file configures Gatewatch: `path`, else GATEWATCH_CONFIG, else ./gatewatch.yaml if present."""
    chosen = path or os.environ.get("GATEWATCH_CONFIG")
    if not chosen and Path(FILE_NAME).is_file():
        chosen = FILE_NAME
    return str(chosen) if chosen else None


def load_config(path: str | os.PathLike[str] | None = None, db: str | None = None) -> Config:
    """The configuration in use: the file (see `config_file`) and the environment; the store is `db`
    (--db), else GATEWATCH_DB, else ./gatewatch.db."""
    chosen = config_file(path)
    if not chosen:
        return config_from_mapping({}, db=db)
    raw = read_yaml(chosen, "config file (from --config or GATEWATCH_CONFIG)")
    return config_from_mapping(raw, source_path=chosen, db=db)
