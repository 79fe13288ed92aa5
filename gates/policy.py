"""Gate policies: which checks a deployment must pass and what a failure means (rollback or hold),
and how the checks' results combine into promote, hold or rollback."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from collector.timeutil import parse_duration

from .windows import DeployWindow, parse_window

CHECK_TYPES = ("canary", "error_budget", "burn_rate", "deploy_window", "dora")
EFFECTS = ("rollback", "hold")
MISSING = ("hold", "ignore", "rollback")
DECISIONS = ("promote", "hold", "rollback")
ACTION_TYPES = ("codedeploy_stop", "codepipeline_rollback", "webhook")
ACTION_TRIGGERS = ("rollback", "hold")
WEBHOOK_METHODS = ("POST", "PUT", "PATCH")
_AWS_NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}")  # CodePipeline's pattern for pipeline and stage names
_EXECUTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class PolicyError(ValueError):
    """A policy that does not fit the schema; the message names the field and the fix."""


@dataclass(frozen=True)
class Check:
    """One check of a policy: its type, settings, what a failure means, what missing data means."""

    type: str
    settings: Mapping[str, Any]
    on_fail: str
    on_missing_data: str
    name: str
    window: DeployWindow | None = None


@dataclass(frozen=True)
class Action:
    """An action a decision triggers: its type, validated settings, and the decisions that trigger it."""

    type: str
    settings: Mapping[str, Any]
    on: tuple[str, ...] = ("rollback",)


@dataclass(frozen=True)
class Policy:
    """A gate policy (see the README): a name, its checks, the missing-data default and actions."""

    name: str
    checks: tuple[Check, ...]
    on_missing_data: str = "hold"
    actions: tuple[Action, ...] = ()
    base_dir: Path = field(default=Path("."))

    def path(self, relative: str) -> Path:
        """A file named in the policy, relative to the policy file."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.base_dir / candidate


@dataclass(frozen=True)
class CheckResult:
    """A check's outcome: `status` pass|fail|nodata, the `effect` it has on the decision, and why."""

    name: str
    status: str
    effect: str  # none | hold | rollback
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "effect": self.effect, "reason": self.reason,
                "evidence": dict(self.evidence)}


def policy_from_mapping(raw: Any, base_dir: Path = Path(".")) -> Policy:
    """Validate a parsed policy (YAML); PolicyError names the field."""
    if not isinstance(raw, Mapping):
        raise PolicyError("policy: expected a mapping with 'name' and 'checks'")
    unknown = set(raw) - {"name", "on_missing_data", "checks", "actions"}
    if unknown:
        raise PolicyError(f"policy: unknown key(s) {sorted(unknown)}; expected name, on_missing_data, checks, actions")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError("name: expected the gate's name, e.g. checkout-prod")
    default_missing = raw.get("on_missing_data", "hold")
    if default_missing not in MISSING:
        raise PolicyError(f"on_missing_data: expected one of {', '.join(MISSING)}, got {default_missing!r}")
    items = raw.get("checks")
    if not isinstance(items, list) or not items:
        raise PolicyError("checks: expected a non-empty list of checks")
    checks = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        where = f"checks[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"{where}: expected a mapping such as {{canary: {{...}}, on_fail: rollback}}")
        kind, settings = _kind(item, CHECK_TYPES, {"on_fail", "on_missing_data", "name"}, where,
                               "with on_fail (and optional on_missing_data, name)")
        on_fail = item.get("on_fail", "hold")
        if on_fail not in EFFECTS:
            raise PolicyError(f"{where}.on_fail: expected rollback or hold, got {on_fail!r}")
        missing = item.get("on_missing_data", default_missing)
        if missing not in MISSING:
            raise PolicyError(f"{where}.on_missing_data: expected one of {', '.join(MISSING)}, got {missing!r}")
        seen[kind] = seen.get(kind, 0) + 1
        check_name = item.get("name") or (kind if seen[kind] == 1 else f"{kind}#{seen[kind]}")
        window = None
        if kind == "deploy_window":
            try:
                window = parse_window(dict(settings))
            except ValueError as exc:
                raise PolicyError(f"{where}.{exc}") from None
        for required in {"canary": ("config",), "error_budget": ("slo",), "burn_rate": ("slo",),
                         "dora": ("metric", "max")}.get(kind, ()):
            if required not in settings:
                raise PolicyError(f"{where}.{kind}.{required}: required")
        if kind == "canary":
            sources = sorted({"data", "prometheus", "cloudwatch"} & set(settings))
            if len(sources) != 1:
                raise PolicyError(f"{where}.canary: expected one of 'data' (a CSV file), 'prometheus' "
                                  f"{{url, baseline, canary}} or 'cloudwatch' {{baseline, canary, region}}"
                                  + (f"; got {' and '.join(sources)}" if sources else ""))
            if sources != ["data"] and not isinstance(settings[sources[0]], Mapping):
                raise PolicyError(f"{where}.canary.{sources[0]}: expected a mapping such as {{baseline: ..., canary: ...}}")
        if kind == "error_budget":
            minimum = settings.get("min_remaining", 0)
            if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not 0 <= minimum <= 1:
                raise PolicyError(f"{where}.error_budget.min_remaining: expected a fraction from 0 to 1, "
                                  f"e.g. 0.25, got {minimum!r}")
        checks.append(Check(kind, dict(settings), on_fail, missing, check_name, window))
    actions = raw.get("actions") or []
    if not isinstance(actions, list):
        raise PolicyError("actions: expected a list such as [{webhook: {url: ...}}]")
    parsed = tuple(parse_action(item, f"actions[{i}]") for i, item in enumerate(actions))
    return Policy(name, tuple(checks), default_missing, parsed, base_dir)


def _kind(item: Mapping, types: tuple[str, ...], options: set[str], where: str,
          expected: str) -> tuple[str, Mapping[str, Any]]:
    """The one type key of a check or action entry and its settings mapping."""
    kinds = [k for k in item if k in types]
    if len(kinds) != 1 or set(item) - set(types) - options:
        raise PolicyError(f"{where}: expected exactly one of {', '.join(types)} {expected}; "
                          f"got {sorted(map(str, item))}")
    settings = item[kinds[0]] or {}
    if not isinstance(settings, Mapping):
        raise PolicyError(f"{where}.{kinds[0]}: expected a mapping of settings")
    return kinds[0], settings


def parse_action(item: Any, where: str) -> Action:
    """One entry of a policy's `actions:`, validated; PolicyError names the field (`actions[1].webhook.url`)."""
    if not isinstance(item, Mapping):
        raise PolicyError(f"{where}: expected a mapping such as {{webhook: {{url: ...}}}}")
    # YAML 1.1 reads a bare `on` key as the boolean True
    item = {("on" if k is True else k): v for k, v in item.items()}
    kind, settings = _kind(item, ACTION_TYPES, {"on"}, where, "(and optional on)")
    on = item.get("on", ["rollback"])
    on = [on] if isinstance(on, str) else on
    if not isinstance(on, list) or not on or any(t not in ACTION_TRIGGERS for t in on):
        raise PolicyError(f"{where}.on: expected a list of {', '.join(ACTION_TRIGGERS)}, e.g. [rollback], got {on!r}")
    field_ = f"{where}.{kind}"
    validate = {"codedeploy_stop": _codedeploy_stop, "codepipeline_rollback": _codepipeline_rollback,
                "webhook": _webhook}[kind]
    return Action(kind, validate(dict(settings), field_), tuple(dict.fromkeys(on)))


def _known(settings: dict, where: str, allowed: tuple[str, ...]) -> None:
    unknown = set(settings) - set(allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; expected {', '.join(allowed)}")


def _text(settings: dict, key: str, where: str, required: bool = False, pattern: re.Pattern | None = None,
          example: str = "") -> str | None:
    value = settings.get(key)
    if value is None:
        if required:
            raise PolicyError(f"{where}.{key}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise PolicyError(f"{where}.{key}: {value!r} is not valid; expected {example}")
    return value


def _codedeploy_stop(settings: dict, where: str) -> dict:
    _known(settings, where, ("deployment_id", "region"))
    return {"deployment_id": _text(settings, "deployment_id", where), "region": _text(settings, "region", where)}


def _codepipeline_rollback(settings: dict, where: str) -> dict:
    _known(settings, where, ("pipeline", "stage", "target_execution_id", "region"))
    names = "1-100 letters, digits and . @ - _"
    return {"pipeline": _text(settings, "pipeline", where, True, _AWS_NAME, names),
            "stage": _text(settings, "stage", where, True, _AWS_NAME, names),
            "target_execution_id": _text(settings, "target_execution_id", where, pattern=_EXECUTION_ID,
                                         example="a pipeline execution id (a lower-case UUID)"),
            "region": _text(settings, "region", where)}


def _seconds(settings: dict, key: str, where: str, default: float) -> float:
    value = settings.get(key, default)
    if isinstance(value, str):
        try:
            value = parse_duration(value).total_seconds()
        except ValueError:
            raise PolicyError(f"{where}.{key}: expected a duration such as 5s or 1m, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PolicyError(f"{where}.{key}: expected a positive duration such as 5s, got {value!r}")
    return float(value)


def _webhook(settings: dict, where: str) -> dict:
    _known(settings, where, ("url", "method", "headers", "timeout", "max_time", "retries", "backoff"))
    url = _text(settings, "url", where, True)
    if not re.match(r"https?://[^/\s]+", url):
        raise PolicyError(f"{where}.url: expected an http:// or https:// URL, got {url!r}")
    method = str(settings.get("method", "POST")).upper()
    if method not in WEBHOOK_METHODS:
        raise PolicyError(f"{where}.method: expected one of {', '.join(WEBHOOK_METHODS)}, got {settings['method']!r}")
    headers = settings.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise PolicyError(f"{where}.headers: expected a mapping of header names to values")
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise PolicyError(f"{where}.headers: {name!r} is not a valid header name")
        if isinstance(value, bool) or not isinstance(value, (str, int)) or "\n" in str(value) or "\r" in str(value):
            raise PolicyError(f"{where}.headers.{name}: expected a one-line string (use ${{VAR}} for secrets)")
    retries = settings.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
        raise PolicyError(f"{where}.retries: expected a whole number from 0 to 20, got {retries!r}")
    timeout = _seconds(settings, "timeout", where, 5.0)
    max_time = _seconds(settings, "max_time", where, 30.0)
    return {"url": url, "method": method, "headers": {k: str(v) for k, v in headers.items()}, "timeout": timeout,
            "max_time": max_time, "retries": retries, "backoff": _seconds(settings, "backoff", where, 0.5)}


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
    return "promote", ["every check passed" + (" (missing data ignored where the policy says so)"
                                               if any(r.status == "nodata" for r in results) else "")]


def effect_of(check: Check, status: str) -> str:
    """What a check's status does to the decision under its policy."""
    if status == "pass":
        return "none"
    if status == "fail":
        return check.on_fail
    return "none" if check.on_missing_data == "ignore" else check.on_missing_data
