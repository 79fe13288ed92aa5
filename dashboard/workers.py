"""A worker process for the dashboard: the executive page's previous-period DORA report is computed
there while the page computes the current window.

Both are SQLite or driver reads and pandas work that hold the GIL, so a thread does not overlap
them (measured: two periods in threads were slower than in turn); a second process does, on a second
core. The worker comes from a fork server that imported the loaders and the analysis (pandas,
SQLAlchemy, Arrow) once; it never forks the server's threads. This module imports only the standard
library, so a page can start the worker before it imports anything heavy itself.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import types
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gatewatch.api import Config, Scope, Window

PRELOAD = ["gatewatch.api", "gatewatch.services.delivery", "analysis.dora", "collector.loaders"]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def dora_report(url: str, config: Config, window: Window, scope: Scope) -> dict[str, Any]:
    """The plain `gatewatch dora` report of one window: the service API's call, as the CLI's."""
    from gatewatch import api

    return api.dora_report(api.open_store(url, migrate=False), config, window, scope)


def _start_worker() -> None:
    from gatewatch.process import use_system_allocator

    use_system_allocator()
    threading.Thread(target=_exit_with_parent, name="gatewatch-parent-watch", daemon=True).start()


def _exit_with_parent() -> None:
    """End this worker when the process that asked for it ends, however it ends: a SIGKILLed or
    OOM-killed server gives its pool no chance to stop the worker, which would otherwise wait for
    work forever (and keep the fork server alive with it)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(0)


@contextmanager
def _no_main_script():
    """A new process of multiprocessing's fork server re-runs the `__main__` module's file; under
    Streamlit that module is the app script itself, so it is hidden while the worker starts."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _worker_pool() -> ProcessPoolExecutor | None:
    """The one worker, started on first use (about a second: a fork server importing this module,
    then the worker forked from it); None where there is no fork server (Windows)."""
    global _pool
    with _lock:
        if _pool is None and "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__, *PRELOAD])
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_start_worker)
            with _no_main_script():
                _pool.submit(int)  # starts the fork server and the worker now
        return _pool


def start() -> None:
    """Start the worker in the background if it is not running, so it is ready when a page needs it."""
    if _pool is None:
        threading.Thread(target=_worker_pool, name="gatewatch-worker-start", daemon=True).start()


def ready(timeout: float = 60) -> bool:
    """Start the worker if it is not running and wait until it answers; False if there is none."""
    pool = _worker_pool()
    try:
        return pool is not None and pool.submit(int).result(timeout) == 0
    except (BrokenProcessPool, OSError, TimeoutError):
        return False


def dora_report_elsewhere(url: str, *args) -> dict[str, Any]:
    """`dora_report(url, *args)` in the worker process, waiting without the GIL; in this process for
    an in-memory store (the worker cannot see it), without a fork server, or if the worker died."""
    from gatewatch import api

    global _pool
    if api.in_memory_store(url):
        return dora_report(url, *args)
    pool = None
    try:
        pool = _worker_pool()
        if pool is not None:
            future: Future = pool.submit(dora_report, url, *args)
            return future.result()
    except (BrokenProcessPool, OSError):  # the worker died, or could not start: not the report's errors
        with _lock:
            if pool is not None and _pool is pool:
                _pool = None
                pool.shutdown(wait=False, cancel_futures=True)
    return dora_report(url, *args)
