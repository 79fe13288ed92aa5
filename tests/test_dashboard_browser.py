"""`gatewatch dashboard` for real: the server on 127.0.0.1 over the demo store, the executive page
loaded in headless Chromium (Selenium), a screenshot, and the DORA section rendered (no error page)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.processes import alive, cmdline, descendants, gone, running_dashboard, until

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="Debian chromium and chromium-driver are not installed",
)


@pytest.fixture
def server(tmp_path, gatewatch):
    """`gatewatch dashboard` over a fresh demo store; yields its base URL and its process."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    res = gatewatch("--db", url, "demo", "--services", "4", "--days", "30", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with running_dashboard(url, tmp_path) as (base, proc):
        yield base, proc


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,2200",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


SCRIPT_DONE = """
const app = document.querySelector('[data-testid="stApp"]');
const running = document.querySelector('[data-testid="stStatusWidget"]');
return app !== null && running === null && document.querySelectorAll('[data-testid="stMetric"]').length >= 5;
"""


def test_the_executive_page_renders_the_dora_section_in_chromium(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, proc = server
    # `gatewatch dashboard` starts the worker process as the server starts, before any page view.
    assert until(lambda: any(b"forkserver" in cmdline(pid) for pid in descendants(proc.pid)), 30), (
        "no worker process 30 s after the server came up, before any page view"
    )
    browser.get(base)
    WebDriverWait(browser, 60, poll_frequency=0.25).until(lambda d: d.execute_script(SCRIPT_DONE))
    drawn = (
        'return document.querySelectorAll(\'[data-testid="stVegaLiteChart"] canvas, '
        '[data-testid="stVegaLiteChart"] svg.marks\').length'
    )
    WebDriverWait(browser, 30, poll_frequency=0.25).until(lambda d: d.execute_script(drawn) >= 3)  # Vega drew
    shot = tmp_path / "executive.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    text = browser.find_element(By.TAG_NAME, "body").text
    for label in (
        "DORA keys",
        "Deployment frequency",
        "Change lead time",
        "Change failure rate",
        "Recovery time",
        "Deployment cadence",
    ):
        assert label in text, label
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    assert "Traceback" not in text and "Error" not in text.split("Deployment cadence")[0]
    charts = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
    assert len(charts) >= 3
    if os.environ.get("GATEWATCH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["GATEWATCH_KEEP_SCREENSHOT"])
    # The previous period was computed in the dashboard's worker process, forked from a fork server
    # under the server; stopping the server (the command's own process) stops them all.
    workers = descendants(proc.pid)
    assert any(b"forkserver" in cmdline(pid) for pid in workers), [cmdline(pid) for pid in workers]
    proc.terminate()
    proc.wait(timeout=30)
    assert gone(workers), [cmdline(pid) for pid in workers if alive(pid)]
