"""Gate service latency over HTTP.

Starts `gatewatch serve` (uvicorn) on 127.0.0.1 with a policy folder whose gate runs a canary check on
CSV telemetry, over a fresh SQLite store. A separate load process sends a steady open-loop load of
`POST /v1/gates/{name}/evaluate` (each request goes out at its scheduled time whether or not earlier
ones have answered; latency counts from the scheduled time, so queueing is not hidden):

  (a) stored:  one repeated key, so every call returns the stored decision;
  (b) fresh:   a new key per call, so every call evaluates the canary anew on the CSV samples.

Prints p50, p99 and max latency and the achieved rate for each, against the target
"p99 under 20 ms for stored decisions at 200 requests/s". A fresh evaluation judges the canary and
stores the canary run (with its samples) and the decision, so its default rate is lower (20/s): far
above what the server sustains, an open-loop load only measures the queue. The load average is printed
too: on a shared machine other work shows up in the tail. Loopback only; count and time are bounded.

    python benchmarks/gate.py [--rate 200] [--duration 10] [--fresh-rate 20] [--samples 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "benchmark-gate-token"
TARGET_P99_MS = 20.0
GATE = "checkout-prod"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_policy(root: Path, samples: int) -> Path:
    """A gate with one canary check on CSV samples (a healthy canary: promote)."""
    import numpy as np
    import pandas as pd
    import yaml

    data, gates = root / "data", root / "gates"
    data.mkdir()
    gates.mkdir()
    rng = np.random.default_rng(1)
    rows = [
        {"metric": m, "group": g, "value": v}
        for m in ("latency_p99", "cpu")
        for g in ("baseline", "canary")
        for v in rng.normal(100, 5, samples)
    ]
    pd.DataFrame(rows).to_csv(data / "samples.csv", index=False)
    (data / "canary.yaml").write_text(
        yaml.safe_dump(
            {
                "metrics": [
                    {"name": "latency_p99", "direction": "increase", "tolerance": 0.1, "critical": True},
                    {"name": "cpu", "direction": "increase", "tolerance": 0.2},
                ]
            }
        )
    )
    (gates / "gate.yaml").write_text(
        yaml.safe_dump(
            {
                "name": GATE,
                "checks": [
                    {"canary": {"config": "../data/canary.yaml", "data": "../data/samples.csv"}, "on_fail": "rollback"}
                ],
            }
        )
    )
    return gates


def start_server(root: Path, policies: Path, port: int) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env["GATEWATCH_GATE_TOKEN"] = TOKEN
    log = root / "serve.log"
    exe = Path(sys.executable).with_name("gatewatch")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "gatewatch"]
    proc = subprocess.Popen(
        [
            *command,
            "--db",
            f"sqlite:///{root / 'bench.db'}",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--policies",
            str(policies),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gatewatch serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, log
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a starting server: there is no event to wait on
    proc.terminate()
    raise SystemExit("gatewatch serve did not become healthy in 60 s")


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for this load: a light
    client (as wrk2 is), so the generator's own CPU time disturbs the measured server as little as possible."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def post(self, host: str, path: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")
        )
        return status, await self.reader.readexactly(length)


async def open_loop(url: str, rate: float, duration: float, fresh: bool, connections: int = 64) -> dict:
    """Send rate x duration requests at fixed intervals; latency from each request's scheduled time."""
    rest = url.removeprefix("http://")
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    path = "/" + path
    count = int(rate * duration)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    decisions: dict[str, int] = {}
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(*await asyncio.open_connection(host, int(port))))

    async def one(i: int, scheduled: float) -> None:
        body = json.dumps({"key": f"fresh-{i}" if fresh else "stored-key", "deployment_id": "bench"}).encode()
        conn = await idle.get()  # more requests in flight than connections: they wait, and that counts
        try:
            status, answer = await asyncio.wait_for(conn.post(hostport, path, body), timeout=30)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            conn = Connection(*await asyncio.open_connection(host, int(port)))
        else:
            if status != 200:
                failures[str(status)] = failures.get(str(status), 0) + 1
            else:
                latencies.append(time.perf_counter() - scheduled)
                decision = json.loads(answer)["decision"]
                decisions[decision] = decisions.get(decision, 0) + 1
        idle.put_nowait(conn)

    if not fresh:  # the decision the repeated key replays
        await one(-1, time.perf_counter())
        latencies.clear()
        decisions.clear()
    tasks = []
    start = time.perf_counter()
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=duration + 120)
    elapsed = time.perf_counter() - start
    return {
        "sent": count,
        "ok": len(latencies),
        "elapsed_s": elapsed,
        "latencies_ms": [x * 1000 for x in latencies],
        "failures": failures,
        "decisions": decisions,
    }


def summarise(name: str, result: dict, rate: float) -> dict:
    import numpy as np

    lat = np.array(result["latencies_ms"]) if result["latencies_ms"] else np.array([np.nan])
    out = {
        "case": name,
        "target_rate": rate,
        "achieved_rate": result["ok"] / result["elapsed_s"],
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(np.max(lat)),
        "ok": result["ok"],
        "sent": result["sent"],
        "failures": result["failures"],
        "decisions": result["decisions"],
    }
    print(
        f"  {name:<7} {rate:>6.0f} req/s target, {out['achieved_rate']:>6.1f} achieved  "
        f"p50 {out['p50_ms']:7.2f} ms  p99 {out['p99_ms']:7.2f} ms  max {out['max_ms']:7.2f} ms  "
        f"({result['ok']}/{result['sent']} ok{', failures ' + str(result['failures']) if result['failures'] else ''}; "
        f"{result['decisions']})",
        flush=True,
    )
    return out


def run_load(url: str, rate: float, duration: float, fresh: bool) -> dict:
    """Run the load generator in a separate process (not sharing the server's interpreter or GIL)."""
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            "--rate",
            str(rate),
            "--duration",
            str(duration),
            *(["--fresh"] if fresh else []),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 180,
    )
    if proc.returncode != 0:
        raise SystemExit(f"load generator failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the stored-decision load")
    parser.add_argument("--fresh-rate", type=float, default=20.0, help="requests/s for fresh evaluations")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per case (at most 60)")
    parser.add_argument("--samples", type=int, default=100, help="CSV samples per metric and group")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.duration = min(args.duration, 60.0)
    if args.load:
        if not args.load.startswith("http://127.0.0.1:"):
            raise SystemExit("the load generator only targets 127.0.0.1")
        print(json.dumps(asyncio.run(open_loop(args.load, args.rate, args.duration, args.fresh))))
        return

    with tempfile.TemporaryDirectory(prefix="gatewatch-bench-") as tmp:
        root = Path(tmp)
        policies = write_policy(root, args.samples)
        port = free_port()
        proc, _log = start_server(root, policies, port)
        url = f"http://127.0.0.1:{port}/v1/gates/{GATE}/evaluate"
        try:
            print(
                f"gatewatch serve on 127.0.0.1:{port}, SQLite store, canary on CSV "
                f"(2 metrics x {args.samples} samples per side); {args.duration:g} s of open-loop load per case; "
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
            )
            stored = summarise("stored", run_load(url, args.rate, args.duration, fresh=False), args.rate)
            summarise("fresh", run_load(url, args.fresh_rate, args.duration, fresh=True), args.fresh_rate)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    met = stored["p99_ms"] < TARGET_P99_MS and stored["achieved_rate"] >= 0.95 * args.rate and not stored["failures"]
    print(
        f"target: p99 under {TARGET_P99_MS:g} ms for stored decisions at {args.rate:g} req/s: "
        f"{'met' if met else 'NOT met'} (p99 {stored['p99_ms']:.2f} ms at {stored['achieved_rate']:.1f} req/s)"
    )


if __name__ == "__main__":
    main()
