"""The app in a real browser: ``streamlit run`` on a free localhost port,
driven with Playwright through Debian's Chromium.

The database is a small demo company built in a temporary folder with a
stored model, so pages load the model instead of fitting one. Every wait is
bounded; the server is stopped in a finalizer. Skipped when Chromium or
Playwright is missing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import ui
from dealcase import store

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TODAY = dt.date(2025, 11, 14)
QUARTER = "2025Q4"
START_TIMEOUT = 40  # seconds until the server answers its health check
PAGE_TIMEOUT = 45  # seconds for a page to finish running

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed"
)


def _library(db: Path, function, *args, **kwargs):
    with store.connect(db) as con:
        return function(con, *args, **kwargs)


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    """A small demo company (seed 7, 15% size) with a stored model."""
    from dealcase.demo import build_demo
    from dealcase.model import train_model

    path = tmp_path_factory.mktemp("e2e") / "demo.duckdb"
    with store.connect(path) as con:
        build_demo(con, seed=7, scale=0.15, today=TODAY)
        train_model(con)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(database, tmp_path_factory, request) -> str:
    """``streamlit run app.py`` on a free localhost port; its base URL."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("e2e_log") / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env={**os.environ, "DEALCASE_DB": str(database)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()

    request.addfinalizer(stop)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server stopped with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return base
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not answer within {START_TIMEOUT} s")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def browser(server):
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    tab = context.new_page()
    yield tab
    context.close()


def settled(tab) -> None:
    """Wait until the app has finished running the page (bounded)."""
    tab.wait_for_selector('[data-testid="stApp"]', timeout=PAGE_TIMEOUT * 1000)
    deadline = time.monotonic() + PAGE_TIMEOUT
    quiet_since = None
    while time.monotonic() < deadline:
        busy = (
            tab.locator('[data-test-script-state="running"]').count() > 0
            or tab.locator('[data-testid="stSpinner"]').count() > 0
            or tab.locator('[data-testid="stStatusWidget"]').is_visible()
        )
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.8:
            return
        time.sleep(0.2)
    pytest.fail(f"the page was still running after {PAGE_TIMEOUT} s")


def visit(tab, server: str, path: str) -> None:
    tab.goto(server + path, timeout=PAGE_TIMEOUT * 1000)
    settled(tab)
    assert tab.locator('[data-testid="stException"]').count() == 0


def metric_value(tab, label: str) -> str:
    metrics = tab.locator('[data-testid="stMetric"]')
    for i in range(metrics.count()):
        metric = metrics.nth(i)
        shown = metric.locator('[data-testid="stMetricLabel"]').inner_text()
        if shown.strip() == label:
            return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    raise AssertionError(f"no metric {label!r} on the page")


def _amount(text: str) -> float:
    """The number behind a shown amount: ``$2.86M`` or ``$24,812,900``."""
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}
    digits = text.strip().lstrip("$").replace(",", "")
    if digits and digits[-1] in scale:
        return float(digits[:-1]) * scale[digits[-1]]
    return float(digits)


def chosen(tab, key: str) -> str:
    """What a select box of the sidebar shows as chosen."""
    box = tab.locator(f'[data-testid="stSidebar"] .st-key-{key}')
    inputs = box.locator("input")
    typed = " ".join(inputs.nth(i).input_value() for i in range(inputs.count()))
    return f"{box.inner_text()} {typed}"


def test_forecast_page_shows_the_library_p50(page, server, database):
    from dealcase.forecast import forecast_quarter

    # the model the server keeps in memory: the range's width is replayed on
    # past quarters with it, so the same model gives the same P10 and P90
    model = ui._fitted_model(str(database), store.data_version(database), TODAY)
    doc = _library(database, forecast_quarter, QUARTER, TODAY, by="team", model=model)
    visit(page, server, f"/?quarter={QUARTER}")

    # Two processes may differ in the last bits of a float sum, which can
    # tip a rounded figure: compare at the precision shown.
    for name in ("p10", "p50", "p90"):
        shown = _amount(metric_value(page, name.upper()))
        assert shown == pytest.approx(doc[name], rel=0.004), name
    caption = re.search(r"P50 (\$[\d,]+)", page.locator("body").inner_text())
    assert caption and _amount(caption.group(1)) == pytest.approx(doc["p50"], rel=1e-3)


def test_clicking_a_pipeline_deal_opens_its_page(page, server, database):
    from dealcase.deals import deals_report

    first = _library(database, deals_report, quarter=QUARTER, as_of=TODAY).doc[0]
    visit(page, server, f"/pipeline?quarter={QUARTER}")

    grid = page.locator('.st-key-pipeline_deals [data-testid="stDataFrame"]')
    grid.wait_for(state="visible")
    box = grid.bounding_box()
    # the row selector of the first row: header row, then rows of 35 px
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)
    page.wait_for_url(re.compile(r"/deal\?"), timeout=PAGE_TIMEOUT * 1000)
    settled(page)

    assert f"deal={first['deal_id']}" in page.url
    assert f"quarter={QUARTER}" in page.url
    heading = page.locator('[data-testid="stHeading"] h3').first.inner_text()
    assert heading.strip() == first["name"]
    assert metric_value(page, "Close likelihood") == ui.percent(
        first["close_likelihood"]
    )


def test_a_link_reproduces_the_filters(page, server, database):
    from dealcase.history import deals_as_of

    teams = sorted(_library(database, deals_as_of, TODAY)["team"].dropna().unique())
    team = teams[-1]
    visit(page, server, f"/pipeline?quarter=2025Q3&as_of=2025-09-30&team={team}")

    sidebar = page.locator('[data-testid="stSidebar"]')
    assert "2025Q3" in chosen(page, "sidebar_quarter")
    assert sidebar.locator(".st-key-sidebar_as_of input").input_value() == (
        "2025-09-30"
    )
    assert team in chosen(page, "sidebar_team")
    body = page.locator("body").inner_text()
    assert "Which open deals may close in 2025Q3" in body
    for name in ("quarter=2025Q3", "as_of=2025-09-30", f"team={team}"):
        assert name in page.url


def test_saving_an_answer_changes_the_case_score(page, server, database):
    # runs last: it writes to the database the other tests read
    from dealcase.case import case_as_of, case_scores

    visit(page, server, f"/business_case?quarter={QUARTER}")
    deal_id = re.search(r"deal=([^&]+)", page.url).group(1)
    before = _library(database, case_scores, TODAY, [deal_id]).iloc[0]["case_score"]
    assert metric_value(page, "Case score") == f"{before:.0f}"
    case = _library(database, case_as_of, deal_id, TODAY).set_index("question_id")
    question = next(q for q in case.index if case.loc[q, "status"] == "unknown")

    prefix = f"business_case_editor_{deal_id}_{question}"
    status = page.locator(f".st-key-{prefix}_status input")
    status.click()
    status.fill("confirmed")
    page.locator('[role="option"]', has_text="confirmed").first.click(timeout=15_000)
    assert page.locator(f".st-key-{prefix}_status input").input_value() == "confirmed"
    evidence = page.locator(f".st-key-{prefix}_evidence input")
    evidence.fill("The CFO confirmed it on a call")
    evidence.press("Tab")
    page.get_by_role("button", name="Save answers").click()
    page.get_by_text(f"for {deal_id}; score").wait_for(timeout=PAGE_TIMEOUT * 1000)
    settled(page)

    saved = _library(database, case_as_of, deal_id, TODAY).set_index("question_id")
    assert saved.loc[question, "status"] == "confirmed"
    assert saved.loc[question, "evidence"] == "The CFO confirmed it on a call"
    after = _library(database, case_scores, TODAY, [deal_id]).iloc[0]["case_score"]
    assert after > before
    assert metric_value(page, "Case score") == f"{after:.0f}"
