"""Gate policies: which checks a deployment must pass and what a failure means (rollback or hold), the
actions a decision triggers, and how the checks' results combine into promote, hold or rollback.

A policy file is validated once, when it is read: every field a check or an action uses is typed
here, so an evaluation never meets a setting it cannot use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from gatewatch.errors import PolicyError
from gatewatch.schema import LIST, HttpUrl, Model, NonEmpty, PositiveDuration, validate

from .windows import DeployWindow

__all__ = [
    "ACTION_TYPES",
    "CHECK_TYPES",
    "DECISIONS",
    "Action",
    "Check",
    "CheckResult",
    "Policy",
    "PolicyError",
    "decide",
    "effect_of",
    "policy_from_mapping",
]

CHECK_TYPES = ("canary", "error_budget", "burn_rate", "deploy_window", "dora")
DECISIONS = ("promote", "hold", "rollback")
ACTION_TYPES = ("codedeploy_stop", "codepipeline_rollback", "webhook")
ACTION_TRIGGERS = ("rollback", "hold")
_AWS_NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}")  # CodePipeline's pattern for pipeline and stage names
_EXECUTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
Effect = Literal["rollback", "hold"]
Missing = Literal["hold", "ignore", "rollback"]


# --- checks -----------------------------------------------------------------------------------------


class CanaryPrometheus(Model):
    """A canary's samples from a Prometheus-compatible server over the last `window`."""

    url: HttpUrl
    baseline: NonEmpty | None = None
    canary: NonEmpty | None = None
    window: PositiveDuration = timedelta(minutes=30)
    step: PositiveDuration = timedelta(seconds=30)


class CanaryCloudWatch(Model):
    """A canary's samples from CloudWatch GetMetricData over the last `window`."""

    baseline: NonEmpty | None = None
    canary: NonEmpty | None = None
    window: PositiveDuration = timedelta(minutes=30)
    step: PositiveDuration = timedelta(seconds=60)
    region: NonEmpty | None = None


class CanaryCheck(Model):
    """Judge a canary: its config, and its samples from a CSV file, Prometheus or CloudWatch."""

    config: NonEmpty
    data: NonEmpty | None = None
    prometheus: CanaryPrometheus | None = None
    cloudwatch: CanaryCloudWatch | None = None
    mode: Literal["fixed", "sequential"] | None = None  # overrides the canary config's mode

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):
            sources = sorted({"data", "prometheus", "cloudwatch"} & set(raw))
            if len(sources) != 1:
                raise ValueError(
                    "expected one of 'data' (a CSV file), 'prometheus' {url, baseline, canary} or "
                    "'cloudwatch' {baseline, canary, region}" + (f"; got {' and '.join(sources)}" if sources else "")
                )
        return raw


class ErrorBudgetCheck(Model):
    """At least `min_remaining` (a fraction) of the SLO's error budget must be left."""

    slo: NonEmpty
    min_remaining: float = Field(0.0, ge=0, le=1)

    @field_validator("min_remaining", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"expected a fraction from 0 to 1, e.g. 0.25, got {value!r}")
        return float(value)


class BurnRateCheck(Model):
    """No multiwindow burn-rate alert of the SLO may fire."""

    slo: NonEmpty


class DoraCheck(Model):
    """A DORA figure over the last `since` must stay at or below `max`."""

    metric: Literal["change_failure_rate", "lead_time", "recovery_time"]
    max: float
    since: PositiveDuration = timedelta(days=30)
    service: NonEmpty | None = None


Settings = CanaryCheck | ErrorBudgetCheck | BurnRateCheck | DeployWindow | DoraCheck


class Check(Model):
    """One check of a policy: its settings, what a failure means, what missing data means, its name."""

    canary: CanaryCheck | None = None
    error_budget: ErrorBudgetCheck | None = None
    burn_rate: BurnRateCheck | None = None
    deploy_window: DeployWindow | None = None
    dora: DoraCheck | None = None
    on_fail: Effect = "hold"
    on_missing_data: Missing = "hold"
    name: NonEmpty

    @model_validator(mode="before")
    @classmethod
    def _one_type(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            raise ValueError("expected a mapping such as {canary: {...}, on_fail: rollback}")
        kinds = [k for k in raw if k in CHECK_TYPES]
        if len(kinds) != 1 or set(raw) - set(CHECK_TYPES) - {"on_fail", "on_missing_data", "name"}:
            raise ValueError(
                f"expected exactly one of {', '.join(CHECK_TYPES)} with on_fail (and optional "
                f"on_missing_data, name); got {sorted(map(str, raw))}"
            )
        if raw[kinds[0]] is None:
            return {**raw, kinds[0]: {}}
        return raw

    @property
    def type(self) -> str:
        """canary, error_budget, burn_rate, deploy_window or dora."""
        return next(kind for kind in CHECK_TYPES if getattr(self, kind) is not None)

    @property
    def settings(self) -> Settings:
        return getattr(self, self.type)

    @property
    def window(self) -> DeployWindow | None:
        return self.deploy_window


# --- actions ----------------------------------------------------------------------------------------


def _aws_name(value: str) -> str:
    if not _AWS_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not valid; expected 1-100 letters, digits and . @ - _")
    return value


def _attempts(value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
        raise ValueError(f"expected a whole number of attempts from 1 to 20 (1: never retried), got {value!r}")
    return value


class CodeDeployStop(Model):
    """CodeDeploy StopDeployment with automatic rollback (the deployment from here or the caller)."""

    deployment_id: NonEmpty | None = None
    region: NonEmpty | None = None


class CodePipelineRollback(Model):
    """CodePipeline RollbackStage to `target_execution_id`, else the newest succeeded execution."""

    pipeline: NonEmpty
    stage: NonEmpty
    target_execution_id: NonEmpty | None = None
    region: NonEmpty | None = None

    @field_validator("pipeline", "stage")
    @classmethod
    def _names(cls, value: str) -> str:
        return _aws_name(value)

    @field_validator("target_execution_id")
    @classmethod
    def _execution(cls, value: str | None) -> str | None:
        if value is not None and not _EXECUTION_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not valid; expected a pipeline execution id (a lower-case UUID)")
        return value


class Webhook(Model):
    """An HTTP request with the decision as its body, retried with backoff within `max_time`."""

    url: HttpUrl
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveDuration = timedelta(seconds=5)
    max_time: PositiveDuration = timedelta(seconds=30)
    retries: int = 3
    backoff: PositiveDuration = timedelta(seconds=0.5)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a mapping of header names to values, got {value!r}")
        out = {}
        for name, text in value.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if isinstance(text, bool) or not isinstance(text, (str, int)) or "\n" in str(text) or "\r" in str(text):
                raise ValueError(f"{name}: expected a one-line string (use ${{VAR}} for secrets)")
            out[name] = str(text)
        return out

    @field_validator("retries", mode="before")
    @classmethod
    def _retries(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
            raise ValueError(f"expected a whole number from 0 to 20, got {value!r}")
        return value


class Action(Model):
    """An action a decision triggers: its settings, and the decisions (`on`) that trigger it."""

    codedeploy_stop: CodeDeployStop | None = None
    codepipeline_rollback: CodePipelineRollback | None = None
    webhook: Webhook | None = None
    on: Annotated[tuple[Literal["rollback", "hold"], ...], LIST] = ("rollback",)
    max_attempts: int | None = None  # a failed action's attempts in all (default: the policy's actions_max_attempts)

    @model_validator(mode="before")
    @classmethod
    def _one_type(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            raise ValueError("expected a mapping such as {webhook: {url: ...}}")
        raw = {("on" if k is True else k): v for k, v in raw.items()}  # YAML 1.1 reads a bare `on` as true
        kinds = [k for k in raw if k in ACTION_TYPES]
        if len(kinds) != 1 or set(raw) - set(ACTION_TYPES) - {"on", "max_attempts"}:
            raise ValueError(
                f"expected exactly one of {', '.join(ACTION_TYPES)} (and optional on, max_attempts); "
                f"got {sorted(map(str, raw))}"
            )
        if raw[kinds[0]] is None:
            raw[kinds[0]] = {}
        return raw

    @field_validator("on", mode="before")
    @classmethod
    def _triggers(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, (list, tuple)) or not value or any(t not in ACTION_TRIGGERS for t in value):
            raise ValueError(f"expected a list of {', '.join(ACTION_TRIGGERS)}, e.g. [rollback], got {value!r}")
        return tuple(dict.fromkeys(value))

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _max_attempts(cls, value: Any) -> Any:
        return _attempts(value)

    @property
    def type(self) -> str:
        """codedeploy_stop, codepipeline_rollback or webhook."""
        return next(kind for kind in ACTION_TYPES if getattr(self, kind) is not None)

    @property
    def settings(self) -> CodeDeployStop | CodePipelineRollback | Webhook:
        return getattr(self, self.type)


# --- the policy -------------------------------------------------------------------------------------


class Policy(Model):
    """A gate: its name, its checks, what missing data means by default, and the actions it triggers.
    Files a policy names are relative to the policy file (`path`)."""

    name: NonEmpty
    on_missing_data: Missing = "hold"
    checks: Annotated[tuple[Check, ...], LIST]
    actions: Annotated[tuple[Action, ...], LIST] = ()
    actions_max_attempts: int = 3  # a failed action is re-attempted on later calls up to this many attempts in all
    _base_dir: Path = PrivateAttr(default=Path("."))

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: Any) -> Any:
        """Each check's name (its type, numbered when repeated) and on_missing_data (the policy's default)."""
        if not isinstance(raw, Mapping):
            return raw
        raw = dict(raw)
        if raw.get("actions") is None:
            raw.pop("actions", None)
        checks = raw.get("checks")
        if not isinstance(checks, list) or not checks:
            raise ValueError("checks: expected a non-empty list of checks")
        default = raw.get("on_missing_data", "hold")
        seen: dict[str, int] = {}
        filled = []
        for item in checks:
            if isinstance(item, Mapping):
                item = dict(item)
                kind = next((k for k in item if k in CHECK_TYPES), None)
                if kind is not None:
                    seen[kind] = seen.get(kind, 0) + 1
                    item.setdefault("name", kind if seen[kind] == 1 else f"{kind}#{seen[kind]}")
                if default in ("hold", "ignore", "rollback"):
                    item.setdefault("on_missing_data", default)
            filled.append(item)
        raw["checks"] = filled
        return raw

    @field_validator("actions_max_attempts", mode="before")
    @classmethod
    def _max_attempts(cls, value: Any) -> Any:
        return _attempts(value)

    def max_attempts(self, action: Action) -> int:
        """How many attempts `action` gets in all: its own max_attempts, else the policy's."""
        return action.max_attempts or self.actions_max_attempts

    @model_validator(mode="after")
    def _base(self, info: ValidationInfo) -> Policy:
        self._base_dir = Path((info.context or {}).get("base_dir", "."))
        return self

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def path(self, relative: str) -> Path:
        """A file named in the policy, relative to the policy file."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self._base_dir / candidate


def policy_from_mapping(raw: Any, base_dir: Path = Path(".")) -> Policy:
    """Validate a parsed policy (YAML); PolicyError names the field (`checks[0].on_fail: ...`)."""
    return validate(Policy, raw, error=PolicyError, context={"base_dir": base_dir})


# --- decisions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """A check's outcome: `status` pass|fail|nodata|continue, the `effect` it has on the decision, and why."""

    name: str
    status: str
    effect: str  # none | hold | rollback
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "effect": self.effect,
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }


def decide(results: list[CheckResult]) -> tuple[str, list[str]]:
    """promote, hold or rollback from the checks' effects, with the reasons that decided it.

    Any rollback effect rolls back; else any hold holds; else promote. Missing data never promotes
    unless its check says `ignore`."""
    rollback = [r for r in results if r.effect == "rollback"]
    hold = [r for r in results if r.effect == "hold"]
    if rollback:
        return "rollback", [f"{r.name}: {r.reason}" for r in rollback]
    if hold:
        return "hold", [f"{r.name}: {r.reason}" for r in hold]
    return "promote", [
        "every check passed"
        + (" (missing data ignored where the policy says so)" if any(r.status == "nodata" for r in results) else "")
    ]


def effect_of(check: Check, status: str) -> str:
    """What a check's status does to the decision under its policy: a sequential canary that has not
    decided yet (`continue`) always holds, whatever `on_missing_data` says."""
    if status == "pass":
        return "none"
    if status == "continue":
        return "hold"
    if status == "fail":
        return check.on_fail
    return "none" if check.on_missing_data == "ignore" else check.on_missing_data
