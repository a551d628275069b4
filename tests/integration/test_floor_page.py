"""The floor display (大屏) in real headless Chromium against a real worker fed through Kafka."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.browser import chromium_page
from tests.integration.harness import ARTIFACTS, Deployment, chat_message

SHOPS = (
    "shops:\n  s1:\n    name: 旗舰店\n    alert_threshold_seconds: 3\n"
    "    agents:\n      's1:a': {name: 小美}\n      's1:b': {name: 阿强}\n"
)
pytestmark = pytest.mark.browser


@pytest.fixture
def page() -> Iterator[object]:
    with chromium_page(1920, 1080) as opened:
        yield opened


def test_floor_tiles_alert_recover_and_survive_a_worker_restart(deployment: Deployment, page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    deployment.config.write_text(deployment.config.read_text() + SHOPS)
    deployment.create_topics()
    _, port = deployment.start_worker()
    now = time.time_ns() // 1_000_000
    deployment.wait_applied(
        deployment.produce(
            [
                chat_message("a1", "tb_9f2", "buyer", now - 60_000, agent="s1:a"),
                chat_message("a2", "tb_9f2", "agent", now - 55_000, agent="s1:a"),
                chat_message("b1", "tb_7c1", "buyer", now - 1_000, agent="s1:b"),
            ]
        )
    )

    page.goto(f"http://127.0.0.1:{port}/floor?shop=s1")
    tile_a = page.locator('[data-agent="s1:a"]')
    tile_b = page.locator('[data-agent="s1:b"]')
    expect(tile_a).to_contain_text("小美")
    expect(tile_a).to_contain_text("5.0s")  # first response today
    expect(tile_a).to_contain_text("100.0%")  # reply ratio
    expect(tile_a.locator(".within .value")).to_have_text("100.0%")  # replied within 15 s (5 s)
    expect(page.locator("#hours")).to_be_hidden()  # no service hours: open all day
    expect(tile_a).to_have_attribute("data-alert", "false")
    expect(page.locator("#status")).to_have_class("live")

    # Left waiting past the shop's 3 s threshold: red without a reload, first in the urgency order.
    expect(tile_b).to_have_attribute("data-alert", "true", timeout=10_000)
    assert page.locator("article.tile").first.get_attribute("data-agent") == "s1:b"
    assert "tb_7c1" not in page.content()  # buyers are never shown in full
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "floor.png"), full_page=True)

    deployment.produce([chat_message("b2", "tb_7c1", "agent", time.time_ns() // 1_000_000, agent="s1:b")])
    expect(tile_b).to_have_attribute("data-alert", "false", timeout=10_000)
    expect(tile_b).to_have_attribute("data-waiting", "0")

    deployment.stop_workers(signal.SIGKILL)
    expect(page.locator("#status")).to_have_class("down", timeout=10_000)
    deployment.start_worker(web_port=port)
    deployment.produce([chat_message("c1", "tb_0aa", "buyer", time.time_ns() // 1_000_000, agent="s1:a")])
    expect(page.locator("#status")).to_have_class("live", timeout=60_000)
    expect(tile_a).to_have_attribute("data-waiting", "1", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "floor-after-restart.png"), full_page=True)


def closed_hours(now_ms: int) -> str:
    """Service hours (Asia/Shanghai) that exclude `now_ms` by at least half an hour."""
    local_minute = ((now_ms // 60_000) + 8 * 60) % (24 * 60)
    if local_minute >= 90:
        end = local_minute - 30
        return f"00:00-{end // 60:02d}:{end % 60:02d}"
    start = local_minute + 60
    return f"{start // 60:02d}:{start % 60:02d}-24:00"


def test_outside_service_hours_nothing_turns_red(deployment: Deployment, page: object) -> None:
    """metrics.md v2: outside service hours no wait grows and no alert fires, on the page too."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    now = time.time_ns() // 1_000_000
    deployment.config.write_text(
        deployment.config.read_text()
        + SHOPS.replace("    agents:", f"    service_hours: '{closed_hours(now)}'\n    agents:")
    )
    deployment.create_topics()
    _, port = deployment.start_worker()
    deployment.wait_applied(
        deployment.produce([chat_message("z1", "tb_5e1", "buyer", now - 1_000, agent="s1:b")])
    )
    page.goto(f"http://127.0.0.1:{port}/floor?shop=s1")
    tile_b = page.locator('[data-agent="s1:b"]')
    expect(tile_b).to_have_attribute("data-waiting", "1", timeout=10_000)
    expect(page.locator("#hours")).to_be_visible()
    time.sleep(5)  # past the shop's 3 s threshold on the wall clock, not on the service clock
    expect(tile_b).to_have_attribute("data-alert", "false")
    assert tile_b.locator(".wait .value").inner_text() == "0s"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "floor-outside-service-hours.png"), full_page=True)
