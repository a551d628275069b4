"""The report page in real headless Chromium: opened from a file with every other request
refused, its charts drawn, its Chinese text rendered, and printed to an A4 PDF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.contract.report import PreviousPeriod
from streams.render.page import render_report_page
from tests.integration.browser import chromium_page
from tests.integration.harness import ARTIFACTS
from tests.report_samples import sample_report

pytestmark = pytest.mark.browser


@pytest.fixture
def page() -> Iterator[object]:
    with chromium_page(1280, 900) as opened:
        yield opened


def test_the_report_page_stands_alone_draws_its_charts_and_prints(page: object, tmp_path: Path) -> None:
    from playwright.sync_api import Page, Route

    assert isinstance(page, Page)
    report = sample_report(days=7, agents=6)
    team_before = sample_report(days=7, agents=5).totals.metrics
    previous = PreviousPeriod(from_="2026-10-25", to="2026-10-31", team=team_before)
    html = tmp_path / "report.html"
    html.write_text(render_report_page(report, previous), encoding="utf-8")
    url = html.as_uri()
    others: list[str] = []

    def only_the_page(route: Route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            others.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_page)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(200)  # anything the page would fetch late

    assert others == []
    boxes = page.eval_on_selector_all(
        "svg.chart",
        "svgs => svgs.map(s => ({id: s.id, width: s.getBoundingClientRect().width,"
        " height: s.getBoundingClientRect().height, paths: s.querySelectorAll('path').length}))",
    )
    assert [box["id"] for box in boxes] == [
        "chart-agents",
        "chart-daily",
        "chart-satisfaction",
        "chart-histogram",
    ]
    for box in boxes:
        assert box["width"] > 300 and box["height"] > 100 and box["paths"] > 20, box

    table = page.locator("#agents table").inner_text()
    assert "小美" in table and "客服销售额" in table and "团队合计" in table
    assert page.locator("h1").inner_text() == "旗舰店（s1） 周报"
    heading_width = page.evaluate(
        "() => { const r = document.createRange(); r.selectNodeContents(document.querySelector('h1'));"
        " return r.getBoundingClientRect().width; }"
    )
    assert heading_width > 100
    assert page.evaluate("() => document.fonts.check('16px \"Noto Sans CJK SC\"', '周报')")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert others == []
