"""The dashboard's worker process: the previous period's report computed there equals the one computed
in this process by the analysis API; a dead worker, an in-memory store and a Streamlit `__main__`
(the app script, which a new process would re-run) each still give the report; a killed server
leaves no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types
from datetime import timedelta
from pathlib import Path

import pytest

from analysis import dora
from analysis.tiers import get_benchmark
from analysis.windows import Window, window_since
from collector.config import config_from_mapping
from collector.db import get_engine
from collector.loaders import Scope, load_dora_frames
from collector.timeutil import utcnow
from dashboard import workers
from tests.processes import alive, cmdline, descendants, gone

LINK = timedelta(hours=24)


@pytest.fixture(scope="module")
def demo_url(demo_stores):
    """A demo store built once per session (conftest's demo_stores); the workers only read it."""
    url, _ = demo_stores("--services", "3", "--days", "30")
    return url


def _expected(url: str, window: Window, scope: Scope) -> dict:
    frames = load_dora_frames(get_engine(url), window.start, window.end, scope, LINK)
    return dora.report(frames, window, benchmark=get_benchmark(None), link_window=LINK)


def _worker_pid() -> int:
    pool = workers._worker_pool()
    assert pool is not None  # Linux has a fork server
    return pool.submit(os.getpid).result(timeout=60)


def _args(window: Window, scope: Scope) -> tuple:
    return (config_from_mapping({}, environ={}), window, scope)


@pytest.mark.parametrize("scope", [Scope(), Scope(service="checkout")], ids=["all", "service"])
def test_the_worker_computes_the_report_the_analysis_api_computes(demo_url, scope):
    window = window_since(14, utcnow())
    assert _worker_pid() != os.getpid()
    got = workers.dora_report_elsewhere(demo_url, *_args(window, scope))
    assert got == _expected(demo_url, window, scope)
    assert got["deployment_frequency"]["deployments"] > 0


def test_a_dead_worker_is_replaced_and_the_report_still_comes(demo_url):
    window = window_since(14, utcnow())
    first = _worker_pid()
    os.kill(first, signal.SIGKILL)  # whether or not the pool has noticed yet when the report is asked for
    assert workers.dora_report_elsewhere(demo_url, *_args(window, Scope())) == _expected(demo_url, window, Scope())
    second = _worker_pid()
    assert second not in (first, os.getpid())


def test_an_in_memory_store_is_read_in_this_process(monkeypatch):
    """A worker cannot see this process's in-memory database: the report is computed here."""
    url = "sqlite://"
    engine = get_engine(url)  # migrated, shared by this process
    monkeypatch.setattr(workers, "_worker_pool", lambda: pytest.fail("the worker was asked"))
    window = window_since(7, utcnow())
    got = workers.dora_report_elsewhere(url, *_args(window, Scope()))
    assert got == _expected(url, window, Scope()) and got["deployment_frequency"]["deployments"] == 0
    assert get_engine(url) is engine


def test_a_streamlit_main_module_is_not_rerun_by_the_new_worker(monkeypatch, tmp_path, demo_url):
    """Under Streamlit `__main__` is the app script: a fork server would run it again. The worker
    starts with it hidden, and `__main__` is back afterwards."""
    script = tmp_path / "app.py"
    marker = tmp_path / "ran"
    script.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    monkeypatch.setattr(workers, "_pool", None)  # a new worker (the module's one is shut down below)
    window = window_since(14, utcnow())
    try:
        assert workers.dora_report_elsewhere(demo_url, *_args(window, Scope())) == _expected(demo_url, window, Scope())
        assert _worker_pid() != os.getpid()
        assert sys.modules["__main__"] is fake and not marker.exists()
    finally:
        if workers._pool is not None:
            workers._pool.shutdown()


def test_the_worker_and_its_fork_server_end_when_the_server_is_killed(tmp_path):
    """A SIGKILLed (or OOM-killed) server cannot stop its worker; the worker sees its parent end and
    exits, and the fork server with it, so nothing is left holding memory or the store's files."""
    script = tmp_path / "server.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(Path(workers.__file__).parent.parent)!r})\n"
        "from dashboard import workers\n"
        "print(workers._worker_pool().submit(os.getpid).result(timeout=60), flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        started = descendants(proc.pid)
        assert worker in started and any(b"forkserver" in cmdline(pid) for pid in started), started
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert gone(started), [cmdline(pid) for pid in started if alive(pid)]
