"""`dashboard.server`, the process `gatewatch dashboard` runs: it warms up (the worker process
started, the pages' modules imported) before Streamlit's server starts, quietly."""
from __future__ import annotations

import subprocess
import sys

from tests.processes import cmdline, descendants

WARM_UP = """
import os, sys
from dashboard.server import PAGE_MODULES, warm_up
assert not any(name in sys.modules for name in ("altair", "dashboard.data"))
warm_up(wait=True)
print(all(name in sys.modules for name in PAGE_MODULES), flush=True)
input()  # until the test has looked at this process's children
"""


def test_warming_up_starts_the_worker_and_imports_the_pages_modules_without_warnings():
    proc = subprocess.Popen([sys.executable, "-c", WARM_UP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True", proc.stderr.read()
        children = descendants(proc.pid)
        assert any(b"forkserver" in cmdline(pid) for pid in children), [cmdline(pid) for pid in children]
        out, err = proc.communicate("\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # Streamlit warns "No runtime found" for each cached function defined before its server runs.
    assert "WARNING" not in err and "No runtime" not in err, err


def test_the_server_command_is_streamlits_command_line():
    res = subprocess.run([sys.executable, "-m", "dashboard.server", "run", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Usage: streamlit run" in res.stdout and "--server.port" in res.stdout
