"""Canary analysis: judge a canary against its baseline (pure computation; telemetry is read by collector)."""
from .judge import (CanaryConfig, CanaryConfigError, MetricResult, MetricSpec, Verdict, config_from_mapping, judge,
                    judge_metric, samples_from_frame, score)
from .stats import Shift, hodges_lehmann, kth_difference, mann_whitney, proportion_difference

__all__ = ["CanaryConfig", "CanaryConfigError", "MetricResult", "MetricSpec", "Verdict", "config_from_mapping",
           "judge", "judge_metric", "samples_from_frame", "score", "Shift", "hodges_lehmann", "kth_difference",
           "mann_whitney", "proportion_difference"]
