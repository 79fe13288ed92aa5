"""DORA performance tiers: named benchmark tables and the per-metric tier of a figure.

A table lists, per metric, tiers in order (elite, high, medium, low) with the bound a figure must
meet; the first tier whose bound is met wins, and a figure that meets none is `low`. The shipped
tables transcribe the cluster descriptions of the Accelerate State of DevOps reports 2023 and 2024.
Where a report's clusters are not monotone (2024: high's change failure rate 20% is above medium's
10%, and high and medium share "less than one day" of recovery), reading in order means the later
tier is unreachable for that metric; the report's own numbers are kept rather than re-ordered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gatewatch.errors import ConfigError

TIERS = ("elite", "high", "medium", "low")
HOUR, DAY, WEEK, MONTH = 1.0, 24.0, 168.0, 720.0

# metric -> ((tier, bound), ...). Frequency bounds are minimum deployments per day (figure >= bound);
# lead time and recovery are maximum hours (figure < bound); change failure rate is a maximum
# fraction (figure <= bound).
_DORA_2023 = {
    "deployment_frequency": (("elite", 1.0), ("high", 1 / 7), ("medium", 1 / 30)),
    "lead_time": (("elite", DAY), ("high", WEEK), ("medium", MONTH)),
    "change_failure_rate": (("elite", 0.05), ("high", 0.10), ("medium", 0.15), ("low", 0.64)),
    "recovery_time": (("elite", HOUR), ("high", DAY), ("medium", WEEK)),
}
_DORA_2024 = {
    "deployment_frequency": (("elite", 1.0), ("high", 1 / 7), ("medium", 1 / 30), ("low", 1 / 182)),
    "lead_time": (("elite", DAY), ("high", WEEK), ("medium", MONTH), ("low", 6 * MONTH)),
    "change_failure_rate": (("elite", 0.05), ("high", 0.20), ("medium", 0.10), ("low", 0.40)),
    "recovery_time": (("elite", HOUR), ("high", DAY), ("medium", DAY), ("low", MONTH)),
}
_HIGHER_IS_BETTER = {"deployment_frequency"}
_INCLUSIVE = {"change_failure_rate", "deployment_frequency"}


@dataclass(frozen=True)
class Benchmark:
    """A named tier table (see the module docstring for how bounds read)."""

    name: str
    bounds: Mapping[str, tuple[tuple[str, float], ...]] = field(repr=False)

    def tier(self, metric: str, value: float | None) -> str | None:
        """The tier of `value` for `metric`, or None when there is no value."""
        if value is None:
            return None
        for tier, bound in self.bounds.get(metric, ()):
            if metric in _HIGHER_IS_BETTER:
                met = value >= bound
            elif metric in _INCLUSIVE:
                met = value <= bound
            else:
                met = value < bound
            if met:
                return tier
        return "low"


BENCHMARKS = {"dora-2023": Benchmark("dora-2023", _DORA_2023), "dora-2024": Benchmark("dora-2024", _DORA_2024)}
DEFAULT_BENCHMARK = "dora-2024"


def benchmark_from_mapping(name: str, raw: Mapping[str, Any]) -> Benchmark:
    """A custom table: {metric: {tier: bound}} in the units above; raises ConfigError naming the field."""
    bounds = {}
    for metric, tiers in raw.items():
        if metric not in _DORA_2024:
            raise ConfigError(f"benchmark '{name}': unknown metric {metric!r}; expected one of {sorted(_DORA_2024)}")
        if not isinstance(tiers, Mapping):
            raise ConfigError(f"benchmark '{name}.{metric}': expected a mapping of tier to bound")
        ordered = []
        for tier in TIERS:
            if tier in tiers:
                value = tiers[tier]
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ConfigError(f"benchmark '{name}.{metric}.{tier}': expected a number, got {value!r}")
                ordered.append((tier, float(value)))
        unknown = set(tiers) - set(TIERS)
        if unknown:
            raise ConfigError(f"benchmark '{name}.{metric}': unknown tier(s) {sorted(unknown)}")
        bounds[metric] = tuple(ordered)
    return Benchmark(name, bounds)


def get_benchmark(name: str | None, custom: Mapping[str, Mapping[str, Any]] | None = None) -> Benchmark:
    """A shipped table by name (dora-2023, dora-2024) or a custom one from configuration."""
    name = name or DEFAULT_BENCHMARK
    if custom and name in custom:
        return benchmark_from_mapping(name, custom[name])
    if name in BENCHMARKS:
        return BENCHMARKS[name]
    known = sorted(BENCHMARKS) + sorted(custom or {})
    raise ConfigError(f"unknown benchmark {name!r}; expected one of {', '.join(known)}")
