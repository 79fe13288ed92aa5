"""The canary config: the metrics to judge (how each is read, which way is worse, its tolerance), the
interval's confidence and the score thresholds (see the README's "The config")."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from gatewatch.errors import CanaryConfigError
from gatewatch.schema import LIST, Model, PositiveDuration, validate

__all__ = [
    "DIRECTIONS",
    "SHAPE_DEFAULTS",
    "SHAPE_TESTS",
    "TESTS",
    "CanaryConfig",
    "CloudWatchMetric",
    "CriticalEffectSize",
    "EffectSize",
    "MetricSpec",
    "Sequential",
    "Thresholds",
    "config_from_mapping",
    "worse_sides",
]

DIRECTIONS = ("increase", "decrease", "either")
TESTS = ("mann-whitney", "proportion")
Text = Annotated[str, Field(min_length=1)]
SHAPE_TESTS = ("scale", "distribution", "zeros")  # analysis.canary.shape
SHAPE_DEFAULTS = {"scale": 0.2, "distribution": 0.1, "zeros": 0.05}


def _shape_option(value: Any) -> Any:
    """A shape test's key: true (on, default tolerance), false or absent (off), or a tolerance (a number >= 0)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    raise ValueError(f"expected true, false or a tolerance (a number at least 0), got {value!r}")


ShapeOption = Annotated[bool | float | None, BeforeValidator(_shape_option)]


def worse_sides(direction: str) -> tuple[bool, bool]:
    """(a rise is worse, a fall is worse) for a metric's direction."""
    return direction in ("increase", "either"), direction in ("decrease", "either")


class CloudWatchMetric(Model):
    """Where a metric is in CloudWatch: the baseline and canary scopes add their dimensions."""

    namespace: Text
    metric_name: Text
    stat: Text = "Average"
    dimensions: dict[str, str] = Field(default_factory=dict)
    period: int | None = Field(None, gt=0)


class EffectSize(Model):
    """Kayenta's `allowedIncrease`/`allowedDecrease`: how far the mean ratio (canary mean / baseline
    mean) must go for a significant shift to count; a shift within it passes."""

    allowed_increase: float | None = Field(None, ge=1)
    allowed_decrease: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _some(self) -> EffectSize:
        if self.allowed_increase is None and self.allowed_decrease is None:
            raise ValueError("expected allowed_increase and/or allowed_decrease")
        return self


class CriticalEffectSize(Model):
    """Kayenta's `criticalIncrease`/`criticalDecrease`: a failing critical metric fails the canary only
    when its mean ratio is at or beyond these (a side left out: any failure that way is critical)."""

    critical_increase: float | None = Field(None, ge=1)
    critical_decrease: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _some(self) -> CriticalEffectSize:
        if self.critical_increase is None and self.critical_decrease is None:
            raise ValueError("expected critical_increase and/or critical_decrease")
        return self


class MetricSpec(Model):
    """One metric of a canary config (see the README for each field)."""

    name: Text
    query: str | None = None
    direction: Literal["increase", "decrease", "either"] = "increase"
    tolerance: float = Field(0.10, ge=0)
    critical: bool = False
    group: str = "default"
    weight: float = Field(1.0, ge=0)
    test: Literal["mann-whitney", "proportion"] = "mann-whitney"
    min_samples: int = Field(10, ge=1)
    on_nodata: Literal["ignore", "fail"] = "ignore"
    outliers: Literal["none", "iqr"] = "none"
    good_query: str | None = None
    total_query: str | None = None
    cloudwatch: CloudWatchMetric | None = None
    effect_size: EffectSize | None = None
    critical_effect_size: CriticalEffectSize | None = None
    outlier_factor: float | None = Field(None, gt=0)  # None: 1.5
    scale: ShapeOption = None
    distribution: ShapeOption = None
    zeros: ShapeOption = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected a non-empty string")
        return value

    @field_validator("group", mode="before")
    @classmethod
    def _group(cls, value: Any) -> Any:
        return value or "default"

    @model_validator(mode="after")
    def _effects(self) -> MetricSpec:
        if self.outlier_factor is not None and self.outliers != "iqr":
            raise ValueError("outlier_factor: applies with outliers: iqr only")
        if self.critical_effect_size is not None and not self.critical:
            raise ValueError(
                "critical_effect_size: applies to critical metrics only (set critical: true), as in Kayenta"
            )
        return self

    @model_validator(mode="after")
    def _shape(self) -> MetricSpec:
        for test in self.shape_tests():
            if self.test != "mann-whitney":
                raise ValueError(
                    f"{test}: shape tests need test: mann-whitney (a {self.test} metric has no distribution of values)"
                )
        zeros = self.shape_tolerance("zeros")
        if zeros is not None and zeros >= 1:
            raise ValueError(f"zeros: expected a tolerance below 1 (a difference of non-zero shares), got {zeros:g}")
        return self

    def shape_tolerance(self, test: str) -> float | None:
        """A shape test's tolerance (its default for `true`), or None when it is off."""
        value = getattr(self, test)
        if value is None or value is False:
            return None
        return SHAPE_DEFAULTS[test] if value is True else float(value)

    def shape_tests(self) -> dict[str, float]:
        """The shape tests that are on, with their tolerances."""
        return {t: tol for t in SHAPE_TESTS if (tol := self.shape_tolerance(t)) is not None}


class Thresholds(Model):
    """Score thresholds (0-100): pass at or above `pass`, marginal at or above `marginal`."""

    pass_: float = Field(95.0, alias="pass", ge=0, le=100)
    marginal: float = Field(75.0, ge=0, le=100)


class Sequential(Model):
    """How a sequential canary is judged over a rollout (see `analysis.canary.sequential`)."""

    min_duration: PositiveDuration = timedelta(minutes=10)
    max_duration: PositiveDuration = timedelta(minutes=30)
    look_interval: PositiveDuration = timedelta(minutes=1)
    quantile: float = Field(0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Sequential:
        if self.min_duration > self.max_duration:
            raise ValueError("min_duration: longer than max_duration")
        return self


class CanaryConfig(Model):
    """A canary config: metrics, the interval's confidence, and the score thresholds."""

    metrics: Annotated[tuple[MetricSpec, ...], LIST] = ()
    confidence: float = Field(0.98, ge=0.5, le=0.9999)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    group_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    mode: Literal["fixed", "sequential"] = "fixed"
    sequential: Sequential = Field(default_factory=Sequential)

    @field_validator("metrics")
    @classmethod
    def _some(cls, value: tuple[MetricSpec, ...]) -> tuple[MetricSpec, ...]:
        if not value:
            raise ValueError("expected a non-empty list of metrics")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CanaryConfig:
        names = [m.name for m in self.metrics]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"metrics: duplicate name(s) {duplicated}")
        if self.mode == "sequential":
            for i, metric in enumerate(self.metrics):
                for key in ("effect_size", "critical_effect_size"):
                    if getattr(metric, key) is not None:
                        raise ValueError(
                            f"metrics[{i}].{key}: effect sizes are a fixed-horizon notion, not for mode: "
                            "sequential (use tolerance)"
                        )
                if metric.shape_tests():
                    test = next(iter(metric.shape_tests()))
                    raise ValueError(
                        f"metrics[{i}].{test}: shape tests are fixed-horizon; not available in mode: sequential"
                    )
        if self.thresholds.marginal > self.thresholds.pass_:
            raise ValueError(
                f"thresholds.marginal: {self.thresholds.marginal:g} is above thresholds.pass {self.thresholds.pass_:g}"
            )
        return self

    @property
    def pass_threshold(self) -> float:
        return self.thresholds.pass_

    @property
    def marginal_threshold(self) -> float:
        return self.thresholds.marginal

    def to_dict(self) -> dict[str, Any]:
        """The config as a file would hold it (how a canary run stores it, to be re-judged later)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def config_from_mapping(raw: Mapping[str, Any] | Any) -> CanaryConfig:
    """Validate a parsed canary config (YAML, or a stored run's); CanaryConfigError names the field."""
    return validate(CanaryConfig, raw, error=CanaryConfigError)
