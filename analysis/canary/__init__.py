"""Canary analysis: judge a canary against its baseline (pure computation; telemetry is read by collector)."""

from gatewatch.errors import CanaryConfigError

from .config import CanaryConfig, CloudWatchMetric, MetricSpec, Sequential, Thresholds, config_from_mapping
from .judge import MetricResult, Verdict, judge, judge_metric, samples_from_frame, score, tolerance_band
from .sequential import SequenceState, sequential_look
from .stats import Shift, hodges_lehmann, kth_difference, mann_whitney, proportion_difference

__all__ = [
    "CanaryConfig",
    "CanaryConfigError",
    "CloudWatchMetric",
    "MetricResult",
    "MetricSpec",
    "SequenceState",
    "Sequential",
    "Shift",
    "Thresholds",
    "Verdict",
    "config_from_mapping",
    "hodges_lehmann",
    "judge",
    "judge_metric",
    "kth_difference",
    "mann_whitney",
    "proportion_difference",
    "samples_from_frame",
    "score",
    "sequential_look",
    "tolerance_band",
]
