"""`dashboard.server`, the process `gatewatch dashboard` runs: it warms up (the worker process
started, the pages' modules imported) before Streamlit's server starts, quietly."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

from tests.processes import cmdline, descendants, running_dashboard

WARM_UP = """
import sys
from dashboard.server import PAGE_MODULES, warm_up
assert not any(name in sys.modules for name in ("altair", "dashboard.data"))
warm_up(wait=True)
print(all(name in sys.modules for name in PAGE_MODULES), flush=True)
input()  # until the test has looked at this process's children
"""


def test_warming_up_starts_the_worker_and_imports_the_pages_modules_without_warnings():
    proc = subprocess.Popen(
        [sys.executable, "-c", WARM_UP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "True", proc.stderr.read()
        children = descendants(proc.pid)
        assert any(b"forkserver" in cmdline(pid) for pid in children), [cmdline(pid) for pid in children]
        _out, err = proc.communicate("\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # Streamlit warns "No runtime found" for each cached function defined before its server runs.
    assert "WARNING" not in err and "No runtime" not in err, err


def test_the_server_command_is_streamlits_command_line():
    res = subprocess.run(
        [sys.executable, "-m", "dashboard.server", "run", "--help"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "Usage: streamlit run" in res.stdout and "--server.port" in res.stdout


def test_gatewatch_dashboard_serves_from_a_folder_that_holds_a_dashboard_folder(tmp_path, gatewatch):
    """The server is this installation's dashboard, not a `dashboard/` of the user's working directory."""
    decoy = tmp_path / "dashboard"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the working directory\\'s dashboard/ was imported')\n")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    res = gatewatch("--db", url, "demo", "--services", "2", "--days", "7", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with running_dashboard(url, tmp_path) as (base, _), urllib.request.urlopen(f"{base}/", timeout=10) as response:
        assert response.status == 200
    assert "was imported" not in (tmp_path / "dashboard.log").read_text()
