"""The server's own metrics (Prometheus): counted where things happen, exposed by `GET /metrics`.

Counters and histograms live in the process's default registry. With several worker processes, set
PROMETHEUS_MULTIPROC_DIR to an empty folder writable by every worker before the server starts:
`prometheus_client` then keeps each worker's values in files there, and `/metrics` sums them (there
are no gauges to combine: the one gauge-like figure, the newest event's age, is read from the store
at scrape time). Empty the folder before each start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Metric
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gatewatch.errors import StoreError

__all__ = [
    "MULTIPROCESS_VARIABLE",
    "NewestEventAge",
    "count_action",
    "count_gate_error",
    "count_gate_evaluation",
    "count_notification",
    "count_payloads",
    "count_store_error",
    "count_webhook",
    "multiprocess_dir",
    "observe_gate_seconds",
    "observe_ingest_seconds",
    "scrape_registry",
]

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Webhook ingest and gate evaluation take milliseconds to seconds (a gate may query Prometheus).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

WEBHOOKS_RECEIVED = Counter(
    "gatewatch_webhooks_received",
    "Requests to the webhook and event endpoints, by endpoint and the HTTP status answered",
    ["endpoint", "code"],
)
WEBHOOK_PAYLOADS = Counter(
    "gatewatch_webhook_payloads",
    "Payloads received over HTTP, by source and outcome (stored, duplicate, quarantined)",
    ["source", "outcome"],
)
INGEST_SECONDS = Histogram(
    "gatewatch_ingest_duration_seconds",
    "Time from a webhook request's arrival to its answer (body read, archive and projection committed)",
    ["endpoint"],
    buckets=_BUCKETS,
)
GATE_EVALUATIONS = Counter(
    "gatewatch_gate_evaluations", "Gate calls answered with a decision, by gate and decision", ["gate", "decision"]
)
GATE_ERRORS = Counter(
    "gatewatch_gate_errors",
    "Gate calls that could not be answered with a decision, by gate and error (store, config)",
    ["gate", "error"],
)
GATE_SECONDS = Histogram(
    "gatewatch_gate_evaluation_duration_seconds",
    "Time to answer a gate call (checks, store and actions included), by gate",
    ["gate"],
    buckets=_BUCKETS,
)
GATE_ACTIONS = Counter(
    "gatewatch_gate_actions", "Gate actions run (rollbacks, stops, webhooks), by kind and outcome", ["kind", "outcome"]
)
NOTIFICATIONS = Counter(
    "gatewatch_notifications",
    "Notifications, by channel and outcome (sent, failed, suppressed)",
    ["channel", "outcome"],
)
STORE_ERRORS = Counter(
    "gatewatch_store_errors",
    "Store failures met while serving, by operation (ingest, gate, decision, health, metrics)",
    ["operation"],
)


def count_webhook(endpoint: str, code: int) -> None:
    """One request to a webhook endpoint, answered with HTTP status `code`."""
    WEBHOOKS_RECEIVED.labels(endpoint, str(code)).inc()


def count_payloads(outcome: str, by_source: Mapping[str, int]) -> None:
    """Payloads of an ingest with one outcome (stored, duplicate, quarantined), counted per source."""
    for source, n in by_source.items():
        if n:
            WEBHOOK_PAYLOADS.labels(source, outcome).inc(n)


def observe_ingest_seconds(endpoint: str, seconds: float) -> None:
    """How long a webhook request took to answer."""
    INGEST_SECONDS.labels(endpoint).observe(seconds)


def count_gate_evaluation(gate: str, decision: str, seconds: float) -> None:
    """A gate call answered with `decision` (promote, hold, rollback), and how long it took."""
    GATE_EVALUATIONS.labels(gate, decision).inc()
    GATE_SECONDS.labels(gate).observe(seconds)


def count_gate_error(gate: str, error: str) -> None:
    """A gate call answered without a decision: `store` (503) or `config` (422)."""
    GATE_ERRORS.labels(gate, error).inc()


def observe_gate_seconds(gate: str, seconds: float) -> None:
    """How long a gate call took, when it ended without a decision."""
    GATE_SECONDS.labels(gate).observe(seconds)


def count_action(kind: str, outcome: str) -> None:
    """A gate action run: its type (codedeploy_stop, codepipeline_rollback, webhook) and outcome (ok, failed)."""
    GATE_ACTIONS.labels(kind, outcome).inc()


def count_notification(channel: str, outcome: str) -> None:
    """A notification: the channel's name and the outcome (sent, failed, suppressed)."""
    NOTIFICATIONS.labels(channel, outcome).inc()


def count_store_error(operation: str) -> None:
    """A store failure met while serving `operation`."""
    STORE_ERRORS.labels(operation).inc()


def multiprocess_dir() -> str | None:
    """The folder of multiprocess mode (PROMETHEUS_MULTIPROC_DIR, read by `prometheus_client` itself), if set."""
    return os.environ.get(MULTIPROCESS_VARIABLE) or None


class NewestEventAge:
    """`gatewatch_newest_event_age_seconds{source}`: seconds since the newest payload of each source was
    received, read from the store at scrape time (a store failure leaves the series out and is counted)."""

    def __init__(self, newest: Callable[[], Mapping[str, datetime]], now: Callable[[], datetime]):
        self.newest, self.now = newest, now

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "gatewatch_newest_event_age_seconds",
            "Seconds since the newest payload of each source was received (stored or quarantined)",
            labels=["source"],
        )
        try:
            newest = self.newest()
        except StoreError:
            count_store_error("metrics")
            newest = {}
        now = self.now()
        for source, received in sorted(newest.items()):
            family.add_metric([source], max((now - received).total_seconds(), 0.0))
        yield family


def scrape_registry(*collectors: Collector) -> CollectorRegistry:
    """What `/metrics` serves: this process's metrics (every worker's, summed, in multiprocess mode)
    and `collectors` read at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    folder = multiprocess_dir()
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(REGISTRY)
    for collector in collectors:
        registry.register(collector)
    return registry
