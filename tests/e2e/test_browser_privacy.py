"""The HTML leaderboard's privacy columns in real headless Chromium: the page loads without console errors, the
privacy columns show each row's numbers ("–" where none), sort by their numbers with the rows without privacy results
first, the per-seed privacy table is there, and no string from a record runs as a script."""

from __future__ import annotations

import pytest

from benchmark.leaderboard import build_leaderboard
from benchmark.render import render
from tests.e2e import test_browser as chromium
from tests.test_privacy_leaderboard import records

pytestmark = chromium.pytestmark
browser = chromium.browser  # the same headless Chromium fixture


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    path = tmp_path_factory.mktemp("privacy-html") / "board.html"
    path.write_text(render(build_leaderboard(records(), headline_eps=0.1), "html"), encoding="utf-8")
    return path


def test_privacy_columns_load_sort_and_escape(browser, page):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    shown = dict(zip(chromium.column_texts(browser, "defense"), chromium.column_texts(browser, "MIA adv."),
                     strict=True))
    assert shown == {"standard": "0.275 ± 0.035", "dp-sgd": "0.055 ± 0.007", "fedavg": "–", "pgd-at": "–"}
    assert dict(zip(chromium.column_texts(browser, "defense"), chromium.column_texts(browser, "DP ε"),
                    strict=True))["dp-sgd"] == "2.70 (sample)"
    headers = browser.find_elements(By.CSS_SELECTOR, "#board thead th")
    next(h for h in headers if h.text == "MIA adv.").click()
    assert chromium.column_texts(browser, "defense")[2:] == ["dp-sgd", "standard"]  # no number first, then ascending
    assert sorted(chromium.column_texts(browser, "defense")[:2]) == ["fedavg", "pgd-at"]
    rows = browser.execute_script("return document.querySelectorAll('#privacy tbody tr').length;")
    assert rows == 6  # one per seed of the rows with privacy results
    assert browser.execute_script("return document.querySelectorAll('script').length;") == 1  # only the page's own
