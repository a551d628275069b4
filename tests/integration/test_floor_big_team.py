"""The floor for real teams, in real Chromium on a real worker fed through Kafka: 60 agents on a
1920×1080 wall screen and 30 on 1366×768 without scrolling, rotation past what fits, a new red
agent moving to the top with a label that needs no colour, and the group and shops filters.

One deployment for every check: a worker and 222 agents take a while to start, CI's time counts."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.browser import chromium_page
from tests.integration.harness import ARTIFACTS, Deployment, chat_message

pytestmark = pytest.mark.browser
TEAMS = {"big": 60, "mid": 30, "huge": 120, "east": 6, "west": 6}


def team_yaml() -> str:
    """Each shop's agents named 客服NN; the even ones in group `presale`, the odd ones `night`."""
    lines = ["shops:"]
    for shop, size in TEAMS.items():
        lines += [f"  {shop}:", "    alert_threshold_seconds: 3", "    agents:"]
        for i in range(size):
            group = "presale" if i % 2 == 0 else "night"
            lines.append(f"      '{shop}:a{i:03d}': {{name: 客服{i:02d}, group: {group}}}")
    return "\n".join(lines) + "\n"


def agents_of(shop: str, group: str | None = None) -> set[str]:
    wanted = {None: (0, 1), "presale": (0,), "night": (1,)}[group]
    return {f"{shop}:a{i:03d}" for i in range(TEAMS[shop]) if i % 2 in wanted}


def answered_buyers() -> list[dict[str, Any]]:
    """One buyer per agent, answered a minute ago: every agent has today's numbers."""
    now = time.time_ns() // 1_000_000
    events = []
    for shop, size in TEAMS.items():
        for i in range(size):
            agent, buyer = f"{shop}:a{i:03d}", f"tb_{shop}_{i}"
            events.append(chat_message(f"{shop}q{i}", buyer, "buyer", now - 60_000, agent=agent, shop=shop))
            events.append(chat_message(f"{shop}r{i}", buyer, "agent", now - 55_000, agent=agent, shop=shop))
    return events


def cards(page: Any) -> list[dict[str, Any]]:
    """The agent cards shown, in reading order (top to bottom, left to right), with their boxes."""
    found = page.evaluate(
        """() => [...document.querySelectorAll('.tile')].map(el => {
             const r = el.getBoundingClientRect();
             return {agent: el.dataset.agent, alert: el.dataset.alert === 'true',
                     label: !!el.querySelector('.alert-label'), left: r.left, top: r.top,
                     right: r.right, bottom: r.bottom, shown: r.width > 0 && r.height > 0};
           }).filter(c => c.shown)"""
    )
    return sorted(found, key=lambda c: (round(c["top"]), c["left"]))


def inside(card: dict[str, Any], width: int, height: int) -> bool:
    return (
        card["left"] >= 0
        and card["top"] >= 0
        and card["right"] <= width + 0.5
        and card["bottom"] <= height + 0.5
    )


def wait_for_cards(page: Any, count: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('.tile').length >= {count}", timeout=30_000)


def test_big_teams_on_one_screen_rotation_red_on_top_and_filters(deployment: Deployment) -> None:
    deployment.config.write_text(deployment.config.read_text() + team_yaml())
    deployment.create_topics()
    last = deployment.produce(answered_buyers())
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    floor = f"http://127.0.0.1:{port}/floor"

    for shop, width, height in (("big", 1920, 1080), ("mid", 1366, 768)):
        with chromium_page(width, height) as page:
            page.goto(f"{floor}?shop={shop}")  # type: ignore[attr-defined]
            wait_for_cards(page, TEAMS[shop])
            page.wait_for_timeout(500)  # one more render at the final layout
            shown = cards(page)
            page.screenshot(path=str(ARTIFACTS / f"floor-{TEAMS[shop]}-agents-{width}x{height}.png"))  # type: ignore[attr-defined]
            assert {c["agent"] for c in shown} == agents_of(shop)
            assert [c["agent"] for c in shown if not inside(c, width, height)] == []
            assert not page.evaluate("() => document.documentElement.scrollHeight > innerHeight + 1")  # type: ignore[attr-defined]

            if shop == "mid":  # the last agent in id order gets a buyer who waits past 3 s
                late = "mid:a029"
                deployment.produce([chat_message("late-q", "tb_late", "buyer", agent=late, shop="mid")])
                page.wait_for_function(  # type: ignore[attr-defined]
                    f"() => document.querySelector('.tile[data-agent=\"{late}\"]')?.dataset.alert === 'true'",
                    timeout=30_000,
                )
                page.wait_for_timeout(500)
                first = cards(page)[0]
                assert (first["agent"], first["alert"], first["label"]) == (late, True, True)
                text = page.inner_text(f'.tile[data-agent="{late}"] .alert-label')  # type: ignore[attr-defined]
                assert "等待过久" in text and "waiting too long" in text
                page.screenshot(path=str(ARTIFACTS / "floor-red-agent-on-top.png"))  # type: ignore[attr-defined]

    with chromium_page(1920, 1080) as page:  # 120 agents: pages that rotate, every agent seen
        page.goto(f"{floor}?shop=huge&rotate=1")  # type: ignore[attr-defined]
        wait_for_cards(page, 1)
        pages = int(page.get_attribute("#pager", "data-pages") or "0")  # type: ignore[attr-defined]
        assert pages >= 2
        seen: set[str] = set()
        deadline = time.monotonic() + 2 * pages * 1.0 + 3
        while time.monotonic() < deadline and seen != agents_of("huge"):
            seen |= {c["agent"] for c in cards(page) if inside(c, 1920, 1080)}
            page.wait_for_timeout(200)  # type: ignore[attr-defined]
        assert seen == agents_of("huge")
        assert "/" in page.inner_text("#pager")  # type: ignore[attr-defined]

    with chromium_page(1920, 1080) as page:  # one group, then two shops side by side
        page.goto(f"{floor}?shop=big&group=presale")  # type: ignore[attr-defined]
        wait_for_cards(page, 30)
        page.wait_for_timeout(500)  # type: ignore[attr-defined]
        assert {c["agent"] for c in cards(page)} == agents_of("big", "presale")
        page.goto(f"{floor}?shops=east,west")  # type: ignore[attr-defined]
        wait_for_cards(page, 12)
        page.wait_for_timeout(500)  # type: ignore[attr-defined]
        assert {c["agent"] for c in cards(page)} == agents_of("east") | agents_of("west")
        page.screenshot(path=str(ARTIFACTS / "floor-two-shops.png"))  # type: ignore[attr-defined]
