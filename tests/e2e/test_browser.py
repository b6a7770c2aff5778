"""The HTML leaderboard in real headless Chromium: it loads without console errors, shows one row per defense,
sorts by a column when its header is clicked, and its plots render."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Chromium and chromedriver (Debian: apt-get install chromium "
                                      "chromium-driver; .ci/run installs them)")
DEFENSES = ("standard", "noise-aug", "pgd-at")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    bench = [sys.executable, "-m", "benchmark"]
    run = subprocess.run([*bench, "evaluate", "--dataset", "synthetic", "--model", "mlp", "--quick", "--device", "cpu",
                          "--defense", ",".join(DEFENSES), "--attack", "suite:quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    html = out / "board.html"
    run = subprocess.run([*bench, "leaderboard", "--store", str(out), "--format", "html", "--out", str(html)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return html


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1400,1800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def column_values(driver, column: int) -> list[float]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#board tbody tr'))"
        f".map(r => parseFloat(r.cells[{column}].dataset.value));")


def column_texts(driver, title: str) -> list[str]:
    """The visible text of the board column headed ``title``, top to bottom."""
    return driver.execute_script(
        "var i = Array.from(document.querySelectorAll('#board thead th')).findIndex(h => h.textContent === "
        f"{title!r}); return Array.from(document.querySelectorAll('#board tbody tr'))"
        ".map(r => r.cells[i].textContent);")


def test_page_loads_without_console_errors(browser, page):
    browser.get(page.as_uri())
    assert browser.title.startswith("Leaderboard: synthetic")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_one_row_per_defense_in_rank_order(browser, page):
    browser.get(page.as_uri())
    assert sorted(column_texts(browser, "defense")) == sorted(DEFENSES)
    ranks = column_texts(browser, "#")
    ranked = [rank for rank in ranks if rank != "—"]
    assert ranked == [str(i) for i in range(1, len(ranked) + 1)]
    assert ranks == ranked + ["—"] * (len(ranks) - len(ranked))  # unranked rows last


def test_clicking_a_header_sorts_the_rows(browser, page):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    headers = browser.find_elements(By.CSS_SELECTOR, "#board thead th")
    clean = next(i for i, h in enumerate(headers) if h.text.startswith("clean"))
    ranked_order = column_texts(browser, "defense")
    before = column_values(browser, clean)
    headers[clean].click()
    ascending = column_values(browser, clean)
    assert ascending == sorted(before)
    assert headers[clean].get_attribute("aria-sort") == "ascending"
    headers[clean].click()
    assert column_values(browser, clean) == sorted(before, reverse=True)
    names_by_clean = column_texts(browser, "defense")
    next(h for h in headers if h.text == "defense").click()  # text columns sort by name
    names = column_texts(browser, "defense")
    assert names == sorted(names) and sorted(names_by_clean) == names
    next(h for h in headers if h.text == "#").click()  # back to rank order, unranked rows last
    assert column_texts(browser, "defense") == ranked_order


def test_plots_render(browser, page):
    browser.get(page.as_uri())
    for plot in ("robustness", "cost"):
        size = browser.execute_script(
            f"var svg = document.querySelector('#plot-{plot} svg');"
            "var box = svg.getBoundingClientRect();"
            "return [box.width, box.height, svg.querySelectorAll('path').length];")
        assert size[0] > 200 and size[1] > 100 and size[2] > 10, (plot, size)
