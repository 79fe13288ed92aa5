"""A real Prometheus server for tests: deterministic history backfilled with promtool, served on
127.0.0.1. Binaries come from /usr/bin, or from Debian's package unpacked under .cache/prometheus
(`.ci/run` fetches it; this helper fetches it too when it can). The canary and SLO histories here are what
conftest's servers serve (`prometheus` for the session, `prometheus_recent` per module)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "prometheus"

# A canary configuration for the canary history below: latency per version, errors as a proportion.
CANARY_CONFIG = {
    "metrics": [
        {
            "name": "latency",
            "query": 'canary_latency_seconds{job="api", {scope}}',
            "direction": "increase",
            "tolerance": 0.10,
            "critical": True,
            "group": "latency",
        },
        {
            "name": "errors",
            "test": "proportion",
            "direction": "increase",
            "tolerance": 0.5,
            "group": "errors",
            "good_query": 'sum(rate(canary_requests_total{job="api", code="500", {scope}}[1m]))',
            "total_query": 'sum(rate(canary_requests_total{job="api", {scope}}[1m]))',
        },
    ]
}


def binaries() -> tuple[Path, Path]:
    """(prometheus, promtool), unpacking Debian's package into .cache when they are not installed."""
    for folder in (Path("/usr/bin"), CACHE / "usr" / "bin"):
        if (folder / "prometheus").exists() and (folder / "promtool").exists():
            return folder / "prometheus", folder / "promtool"
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = list(CACHE.glob("prometheus_*.deb"))
    if not debs:
        if subprocess.run(["apt-get", "download", "prometheus"], cwd=CACHE, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(["apt-get", "download", "prometheus"], cwd=CACHE, check=True, capture_output=True)
        debs = list(CACHE.glob("prometheus_*.deb"))
    subprocess.run(["dpkg", "-x", str(debs[0]), str(CACHE)], check=True)
    return CACHE / "usr" / "bin" / "prometheus", CACHE / "usr" / "bin" / "promtool"


@dataclass
class Server:
    url: str
    start: datetime
    end: datetime
    written: dict[str, np.ndarray]  # version -> latency samples written
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


def write_history(path: Path, end: datetime, seed: int = 17, extra: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Two hours of 15 s samples: latency per version (v1 baseline, v2 healthy, v3 +30%) and request
    counters (v1 1% errors, v2 1%, v3 4%), as OpenMetrics; `extra` lines (whole metric families) follow."""
    rng = np.random.default_rng(seed)
    stamps = [end - timedelta(seconds=15 * i) for i in range(480)][::-1]
    latency = {
        "v1": rng.normal(0.100, 0.01, len(stamps)),
        "v2": rng.normal(0.100, 0.01, len(stamps)),
        "v3": rng.normal(0.130, 0.01, len(stamps)),
    }
    errors = {"v1": 0.01, "v2": 0.01, "v3": 0.04}
    lines = ["# HELP canary_latency_seconds Request latency.", "# TYPE canary_latency_seconds gauge"]
    for version, values in latency.items():
        for t, v in zip(stamps, values):
            lines.append(f'canary_latency_seconds{{job="api",version="{version}"}} {v:.6f} {t.timestamp():.3f}')
    lines += ["# HELP canary_requests Requests served.", "# TYPE canary_requests counter"]
    for version, rate in errors.items():
        good = bad = 0
        for t in stamps:
            bad += round(100 * rate)
            good += 100 - round(100 * rate)
            lines.append(f'canary_requests_total{{job="api",version="{version}",code="500"}} {bad} {t.timestamp():.3f}')
            lines.append(
                f'canary_requests_total{{job="api",version="{version}",code="200"}} {good} {t.timestamp():.3f}'
            )
    lines += list(extra)
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return latency


def start(
    tmp: Path, extra: Callable[[datetime], Iterable[str]] | None = None, rule_files: Iterable[Path] = ()
) -> Server:
    """Backfill the history and start Prometheus on a free loopback port; ready when this returns.

    `extra(end)` may add OpenMetrics families (lines) of its own to the history ending at `end`;
    `rule_files` are loaded and evaluated every second from the start."""
    prometheus, promtool = binaries()
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    data = tmp / "data"
    written = write_history(tmp / "history.om", end, extra=extra(end) if extra else ())
    # a few large blocks rather than one per 2 h: days of backfill load in a fraction of the time
    subprocess.run(
        [
            str(promtool),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=96h",
            str(tmp / "history.om"),
            str(data),
        ],
        check=True,
        capture_output=True,
    )
    rules = [str(Path(f).resolve()) for f in rule_files]
    settings = {"global": {"scrape_interval": "1h", "evaluation_interval": "1s"}, "scrape_configs": []}
    (tmp / "prometheus.yml").write_text(json.dumps(settings | ({"rule_files": rules} if rules else {})))
    port = free_port()
    process = subprocess.Popen(
        [
            str(prometheus),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=30d",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return Server(url, end - timedelta(seconds=15 * 479), end, written, process)
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # waiting on a starting server: there is no event to block on
    process.terminate()
    raise RuntimeError("prometheus did not become ready within 30 s")


# --- the SLO history (`families`): minute i is the interval (end - (i+1) min, end - i min] -------------
# Every counter starts at 0 at the first sample, so Prometheus' increase() over a window ending on a
# sample is exactly the sum of that window's minutes.

MINUTES = 3 * 1440 + 60  # history length: the longest burn-rate window (3d) and an hour more
PER_MINUTE = 1000  # requests per minute of each job


def api_bad(i: int) -> int:
    """job="api" errors in minute i: 30/min in the last 5 minutes, 8/min back to 6 hours, none before."""
    return 30 if i < 5 else 8 if i < 360 else 0


def checkout_bad(i: int) -> int:
    """job="checkout" errors: one every ten minutes (a 0.1x burn of a 99.9% objective)."""
    return 1 if i % 10 == 0 else 0


def api_slow(i: int) -> int:
    """job="api" requests slower than 0.3 s: 50/min in the last hour, 5/min before."""
    return 50 if i < 60 else 5


def window_counts(bad, minutes: int, offset: int = 0) -> tuple[int, int]:
    """(good, total) of the minutes offset .. offset+minutes-1 before the end (clipped to the history)."""
    span = range(offset, min(offset + minutes, MINUTES))
    return sum(PER_MINUTE - bad(i) for i in span), PER_MINUTE * len(span)


def families(end: datetime) -> list[str]:
    """OpenMetrics lines: http_requests_total per job and code, and the latency histogram of two jobs."""
    stamps = [end - timedelta(minutes=j) for j in range(MINUTES, -1, -1)]  # oldest first

    def cumulative(per_minute) -> list[int]:
        """Counter values at each stamp: the value at end - j min counts minutes j .. MINUTES-1."""
        values, running = [], 0
        for j in range(MINUTES, -1, -1):
            values.append(running)
            if j > 0:
                running += per_minute(j - 1)
        return values

    counters = {
        ("api", "200"): cumulative(lambda i: PER_MINUTE - api_bad(i)),
        ("api", "500"): cumulative(api_bad),
        ("checkout", "200"): cumulative(lambda i: PER_MINUTE - checkout_bad(i)),
        ("checkout", "503"): cumulative(checkout_bad),
    }
    lines = ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    for k, t in enumerate(stamps):
        for (job, code), values in counters.items():
            lines.append(f'http_requests_total{{job="{job}",code="{code}"}} {values[k]} {t.timestamp():.3f}')
    fast = {"api": cumulative(lambda i: PER_MINUTE - api_slow(i)), "batch": cumulative(lambda i: 0)}
    count = cumulative(lambda i: PER_MINUTE)
    lines += ["# HELP http_request_duration_seconds Request latency.", "# TYPE http_request_duration_seconds histogram"]
    for k, t in enumerate(stamps):
        for job in ("api", "batch"):
            ts = f"{t.timestamp():.3f}"
            lines += [
                f'http_request_duration_seconds_bucket{{job="{job}",le="0.3"}} {fast[job][k]} {ts}',
                f'http_request_duration_seconds_bucket{{job="{job}",le="+Inf"}} {count[k]} {ts}',
                f'http_request_duration_seconds_count{{job="{job}"}} {count[k]} {ts}',
            ]
    return lines
