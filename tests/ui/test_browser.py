"""The web view in a real headless browser (Debian's chromium, driven by Playwright).

The browser follows the links a person would click and reads what it
renders. CI installs chromium (``.ci/run``); elsewhere the test is skipped
when chromium is absent. With ``SCRIBESTORE_SCREENSHOTS=DIR`` the pages are
also saved there (that is how ``docs/images/ui-*.png`` are made).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.webview import CHROMIUM, CHROMIUM_ARGS, MODEL_BYTES, RUNS

playwright = pytest.importorskip("playwright.sync_api")

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must have chromium for the browser test; none at {CHROMIUM}")
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[playwright.Page]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        opened = browser.new_page(viewport={"width": 1100, "height": 700})
        opened.set_default_timeout(20_000)
        yield opened
        browser.close()


def _shot(page: playwright.Page, tmp_path: Path, name: str) -> None:
    target = tmp_path / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1100 and height >= 300
    keep = os.environ.get("SCRIBESTORE_SCREENSHOTS")
    if keep:
        Path(keep, f"ui-{name}.png").write_bytes(data)


def test_a_person_browses_from_the_index_to_a_diff(
    page: playwright.Page, base_url: str, tmp_path: Path
) -> None:
    page.goto(base_url + "/")
    page.click("text=repository.json")
    rows = page.locator("#artifacts tbody tr")
    assert rows.count() == 2
    assert "@production" in rows.nth(1).inner_text()
    page.click("#artifacts >> text=model")
    versions = page.locator("#versions tbody tr")
    assert versions.count() == 2
    cells = versions.nth(1).locator("td")
    assert cells.nth(2).inner_text() == f"{MODEL_BYTES / 2**20:.1f} MiB"
    assert float(cells.nth(4).inner_text().rstrip(" %")) > 90  # the fine-tune's dedup saving
    assert "@production" in versions.nth(0).inner_text()
    _shot(page, tmp_path, "artifact")
    page.click("nav >> text=repository")
    page.click("#artifacts >> text=config")
    page.click("a.diff")
    assert page.locator("#diff .removed").inner_text().startswith('-{"lr": 0.1')
    assert page.locator("#diff .added").inner_text().startswith('+{"lr": 0.01')


def test_a_person_sorts_experiments_and_charts_a_metric(
    page: playwright.Page, base_url: str, tmp_path: Path
) -> None:
    page.goto(base_url + "/")
    page.click("text=project.json")

    def accuracies() -> list[float]:
        headers = [h.split(" ")[0] for h in page.locator("#experiments thead th").all_inner_texts()]
        column = headers.index("accuracy")  # the sorted column's header ends in an arrow
        cells = page.locator(f"#experiments tbody tr td:nth-child({column + 1})")
        return [float(t) for t in cells.all_inner_texts()]

    assert accuracies() == [a for a, _ in RUNS]  # creation order
    page.click("#experiments thead >> text=accuracy")
    assert accuracies() == sorted((a for a, _ in RUNS), reverse=True)
    page.click("#experiments thead >> text=accuracy")
    assert accuracies() == sorted(a for a, _ in RUNS)
    points = page.locator("#chart circle.point")
    assert points.count() == len(RUNS)
    heights = [float(points.nth(i).get_attribute("cy") or "nan") for i in range(len(RUNS))]
    best = max(range(len(RUNS)), key=lambda i: RUNS[i][0])
    assert heights[best] == min(heights)  # the best accuracy is drawn highest
    page.select_option("select[name=chart]", "loss")
    page.wait_for_url("**chart=loss**")
    assert page.locator("h2").first.inner_text() == "loss across experiments"
    _shot(page, tmp_path, "project")
    page.click("#experiments tbody >> text=run-1")
    assert "holdout" in page.locator("section.test h2").inner_text()
