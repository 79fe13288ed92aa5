"""Gate policies: which checks a deployment must pass and what a failure means (rollback or hold),
and how the checks' results combine into promote, hold or rollback."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .windows import DeployWindow, parse_window

CHECK_TYPES = ("canary", "error_budget", "burn_rate", "deploy_window", "dora")
EFFECTS = ("rollback", "hold")
MISSING = ("hold", "ignore", "rollback")
DECISIONS = ("promote", "hold", "rollback")


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
class Policy:
    """A gate policy (see the README): a name, its checks, the missing-data default and actions."""

    name: str
    checks: tuple[Check, ...]
    on_missing_data: str = "hold"
    actions: tuple[Mapping[str, Any], ...] = ()
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
        kinds = [k for k in item if k in CHECK_TYPES]
        extra = set(item) - set(CHECK_TYPES) - {"on_fail", "on_missing_data", "name"}
        if len(kinds) != 1 or extra:
            raise PolicyError(f"{where}: expected exactly one of {', '.join(CHECK_TYPES)} with on_fail "
                              f"(and optional on_missing_data, name); got {sorted(item)}")
        kind = kinds[0]
        settings = item[kind] or {}
        if not isinstance(settings, Mapping):
            raise PolicyError(f"{where}.{kind}: expected a mapping of settings")
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
        if kind == "canary" and not ({"data", "prometheus"} & set(settings)):
            raise PolicyError(f"{where}.canary: expected 'data' (a CSV file) or 'prometheus' {{url, baseline, canary}}")
        if kind == "error_budget":
            minimum = settings.get("min_remaining", 0)
            if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not 0 <= minimum <= 1:
                raise PolicyError(f"{where}.error_budget.min_remaining: expected a fraction from 0 to 1, "
                                  f"e.g. 0.25, got {minimum!r}")
        checks.append(Check(kind, dict(settings), on_fail, missing, check_name, window))
    actions = raw.get("actions") or []
    if not isinstance(actions, list) or not all(isinstance(a, Mapping) and len(a) == 1 for a in actions):
        raise PolicyError("actions: expected a list of single-key mappings such as {webhook: {url: ...}}")
    return Policy(name, tuple(checks), default_missing, tuple(actions), base_dir)


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
