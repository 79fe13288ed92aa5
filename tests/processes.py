"""Helpers for the tests of server and worker processes: a free port to serve on, a server's health
check answering, `gatewatch dashboard` running, a process's descendants, whether processes have exited
(they need not be the test's children), a process's command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition()` holds within `timeout`, polled: another process's state (a process
    appearing or exiting, a server starting) has no event this process could wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def wait_until_healthy(url: str, proc: subprocess.Popen, deadline: float = 30.0) -> None:
    """Return once `url` answers 200 (`gatewatch serve`'s health check); fail if `proc` exits first."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"gatewatch serve exited: {proc.stderr.read()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a server that is starting up: there is no event to wait on
    raise AssertionError("gatewatch serve did not become healthy in time")


@contextmanager
def running_dashboard(url: str, cwd: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`gatewatch --db URL dashboard` started in `cwd` (log in cwd/dashboard.log), once its health
    check answers: yields its base URL and its process, and stops it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    log_path = cwd / "dashboard.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("gatewatch")), "--db", url, "dashboard", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        up = until(lambda: proc.poll() is not None or _healthy(base), 60)
        assert proc.poll() is None, log_path.read_text()
        assert up, "the dashboard did not come up in 60 s"
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def descendants(pid: int) -> set[int]:
    """The pids of a process's children, their children and so on."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def gone(pids: set[int], timeout: float = 15) -> bool:
    """Whether every process of `pids` has exited within `timeout`."""
    return until(lambda: not any(alive(pid) for pid in pids), timeout)


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
