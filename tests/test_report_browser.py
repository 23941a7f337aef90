"""``syncd report --html`` in a real browser: Debian's chromium driven by Selenium through
chromedriver, at a desktop's 1280 px and a phone's 400 px.

Two stores: the demo's, filled by real sync cycles between the emulators (``syncd demo``
as a user runs it), and the hand-built March history of ``tests/test_report.py`` (late and
never-followed-up hand-offs, several weeks, a source to escape). The page must never
scroll sideways, show every section, label its charts (``viewBox``, ``<title>``), draw the
SLA on the speed-to-lead histogram, and keep every table column reachable.

Screenshots go to the test's temporary directory and, when ``SYNCD_TEST_ARTIFACTS`` is
set, to that directory too; their paths are printed. Without chromium or chromedriver the
test skips with that reason, except in CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from syncd.cli.app import app
from syncd.harness.demo import run_demo
from syncd.state.store import Store
from tests import test_report_quality
from tests.test_report import _config_dir, fill

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTHS = (1280, 400)
SECTIONS = (
    "summary",
    "funnel",
    "funnel-by",
    "speed-to-lead",
    "revenue",
    "quality",
    "trend",
    "recycled",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        install = "apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing in CI ({install})")
        pytest.skip(f"{', '.join(missing)} missing: browser test not run ({install})")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _report(config: Path, store_url: str, page: Path, *period: str) -> Path:
    """``syncd report --html`` as a user runs it, grouped by lead source."""
    answer = CliRunner().invoke(
        app,
        ["report", "--config", str(config), *period, "--by", "lead_source", "--html", str(page)],
        env={"SYNCD_STORE_URL": store_url},
    )
    assert answer.exit_code == 0, answer.output
    return page


def _demo_page(directory: Path) -> Path:
    """The report of a store that real sync cycles filled: the demo's."""
    failed = run_demo(directory / "demo", Console(file=io.StringIO(), width=120))
    assert failed == []
    # The demo's own configuration names its emulators' certificate, gone with them: the
    # shipped configuration reads the demo's store as well.
    store = directory / "demo" / "syncd.db"
    assert store.is_file()
    return _report(_config_dir(directory), f"sqlite:///{store}", directory / "demo.html")


def _march_page(directory: Path, name: str = "march") -> Path:
    """The report of ``tests/test_report.py``'s hand-built March history (``quality``:
    ``tests/test_report_quality.py``'s, with scores, bands, thresholds and small samples)."""
    store_url = f"sqlite:///{directory / name}.db"
    store = Store.open(store_url)
    try:
        (test_report_quality.fill if name == "quality" else fill)(store)
    finally:
        store.close()
    config = _config_dir(directory)
    period = ("--since", "2026-03-01", "--until", "2026-04-01")
    return _report(config, store_url, directory / f"{name}.html", *period)


def _show(driver: Any, width: int, height: int) -> None:
    """A viewport of exactly ``width`` x ``height`` CSS pixels (a desktop, not a phone's
    emulation: a page without a viewport tag is not scaled down to fit)."""
    driver.set_window_size(width, height)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def _screenshot(driver: Any, directories: list[Path], name: str, width: int) -> None:
    """The whole page, as tall as it is."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    _show(driver, width, min(int(height), 16000))
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.png"
        assert driver.save_screenshot(str(path)), path
        print(f"screenshot: {path}")


OVERFLOW = """
const width = window.innerWidth;
const out = [];
for (const element of document.body.querySelectorAll('*')) {
  if (element.closest('.scroll')) continue;  // tables scroll inside their own box
  const box = element.getBoundingClientRect();
  if (box.width && (box.right > width + 0.5 || box.left < -0.5)) {
    out.push(element.tagName + '#' + element.id + '.' + element.className.baseVal
             + (typeof element.className === 'string' ? element.className : '')
             + ' ' + Math.round(box.left) + '..' + Math.round(box.right));
  }
}
return out.slice(0, 10);
"""

REACHABLE = """
const cell = arguments[0];
cell.scrollIntoView({block: 'nearest', inline: 'nearest'});
const box = cell.getBoundingClientRect();
return [box.left, box.right, window.innerWidth, window.scrollX];
"""


@pytest.mark.parametrize("source", ["demo", "march", "quality"])
def test_the_html_report_reads_at_desktop_and_phone_widths(
    browser: Any, tmp_path: Path, source: str
) -> None:
    from selenium.webdriver.common.by import By

    page = _demo_page(tmp_path) if source == "demo" else _march_page(tmp_path, source)
    shots = [tmp_path / "screenshots"]
    if os.environ.get("SYNCD_TEST_ARTIFACTS"):
        shots.append(Path(os.environ["SYNCD_TEST_ARTIFACTS"]) / "report-browser")
        shots[-1].mkdir(parents=True, exist_ok=True)
        shutil.copy(page, shots[-1] / f"report-{source}.html")
    for width in WIDTHS:
        _show(browser, width, 900)
        browser.get(page.as_uri())
        assert browser.execute_script("return window.innerWidth") == width
        scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
        overflowing = browser.execute_script(OVERFLOW)
        assert scroll_width <= width and overflowing == [], (width, scroll_width, overflowing)

        for section in SECTIONS:
            found = browser.find_elements(By.ID, section)
            assert len(found) == 1, f"section #{section} missing at {width} px"
            heading = found[0].find_element(By.TAG_NAME, "h2")
            assert heading.is_displayed() and heading.text.strip(), section
        assert "Generated at " in browser.find_element(By.ID, "generated").text

        svgs = browser.find_elements(By.CSS_SELECTOR, "svg")
        assert len(svgs) >= 6  # funnel, a group's funnel, histogram, revenue, 3 trends
        for svg in svgs:
            label = svg.get_attribute("id")
            assert svg.get_dom_attribute("viewBox"), f"{label}: no viewBox"
            title = svg.find_elements(By.XPATH, "./*[local-name()='title']")
            assert title and title[0].get_attribute("textContent").strip(), f"{label}: no title"
            assert svg.find_elements(By.XPATH, "./*[local-name()='desc']"), f"{label}: no desc"
            box = svg.rect
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (label, box)
            # Still legible on a phone: the smallest text at least 7 CSS px high.
            smallest = browser.execute_script(
                "return Math.min(...[...arguments[0].querySelectorAll('text')]"
                ".map(t => t.getBoundingClientRect().height))",
                svg,
            )
            assert smallest >= 7, (label, width, smallest)

        if source == "quality":  # its charts: by source, by score band, by threshold
            for chart in ("source", "band", "thresholds"):
                assert browser.find_element(By.ID, f"quality-{chart}-chart").is_displayed()

        marker = browser.find_element(By.ID, "speed-chart-marker")
        assert "SLA 24 h" in marker.get_attribute("textContent")
        assert marker.rect["height"] > 50 and marker.rect["x"] + marker.rect["width"] <= width
        # Every bin of the histogram is drawn inside the page, the last ("not yet") too.
        bins = browser.find_elements(By.CSS_SELECTOR, "#speed-chart rect")
        assert len(bins) == 6
        assert all(b.rect["x"] >= 0 and b.rect["x"] + b.rect["width"] <= width for b in bins)

        # Every table has a caption, and every column can be scrolled to inside the table's
        # own box without the page moving sideways (the funnel's median and 90% columns).
        tables = browser.find_elements(By.CSS_SELECTOR, "table")
        assert tables
        for table in tables:
            assert table.find_element(By.TAG_NAME, "caption").get_attribute("textContent")
            for cell in table.find_elements(By.CSS_SELECTOR, "thead th"):
                left, right, inner, scroll_x = browser.execute_script(REACHABLE, cell)
                assert left >= -0.5 and right <= inner + 0.5 and scroll_x == 0, (
                    cell.get_attribute("textContent"),
                    width,
                    left,
                    right,
                )
        headings = browser.execute_script(
            "return [...document.querySelectorAll('#funnel thead th')].map(t => t.textContent)"
        )
        assert (
            "Median hours to next stage" in headings and "90% moved on within (hours)" in headings
        )

        _screenshot(browser, shots, f"report-{source}-{width}", width)
