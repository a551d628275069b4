"""The floor display (大屏) in real headless Chromium, without a worker: Playwright answers the page's
requests (the page itself, the floor stream, the trend) from floors built here, so a team of any
size, any screen and any failure can be shown in seconds."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

from streams.contract.floor import AgentRow, ShopFloor, TeamWindowValues, Totals, WindowValues, floor_json
from tests.integration.browser import chromium_page
from tests.integration.harness import ARTIFACTS, ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

pytestmark = pytest.mark.browser

PAGE = (ROOT / "agents" / "exposure" / "static" / "floor.html").read_text(encoding="utf-8")
ORIGIN = "http://kefu.test"
THRESHOLD = 60.0
TARGETS = [15, 180]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭"
GIVEN = ["小美", "阿强", "丽娜", "静", "敏", "伟", "芳芳", "晓东", "思远", "可欣", "娜娜娜"]
GROUPS = ("presale", "aftersale", None)
# The login feed's statuses (v3), and None: a floor from a server without `agent_status`.
STATUSES = ("online", "online", "away", "offline", "unknown", "online", None)
STATUS_WORDS = {"online": "在线", "away": "挂起", "offline": "离线", "unknown": "未知", None: "未知"}


@dataclass
class Agent:
    agent: str
    index: int
    name: str | None
    group: str | None
    waiting: int = 0
    since_ms: int | None = None  # when the oldest waiting buyer started waiting
    status: str | None = "unknown"  # agent_status; None leaves the field out of the JSON


def team(shop: str, n: int, now_ms: int, *, alerts: int = 0) -> list[Agent]:
    """`n` agents: most named, some by id only, in three groups; every fifth waits (under the
    threshold), and the first `alerts` of them wait past it."""
    agents = []
    for i in range(n):
        name = None if i % 9 == 8 else SURNAMES[i % len(SURNAMES)] + GIVEN[i % len(GIVEN)]
        agent = Agent(f"{shop}:a{i:03d}", i, name, GROUPS[i % 3], status=STATUSES[i % len(STATUSES)])
        if i % 5 == 2:
            agent.waiting = 1 + i % 3
            agent.since_ms = now_ms - (5 + i % 40) * 1000
        agents.append(agent)
    for agent in [a for a in agents if a.waiting][:alerts]:
        agent.since_ms = now_ms - int((THRESHOLD + 30 + agent.index) * 1000)
    return agents


def ratings(i: int, replied: int) -> tuple[int, int]:
    """(rated, satisfied) of agent `i`: every fourth agent has no rating yet (satisfaction absent)."""
    rated = 0 if i % 4 == 3 else 1 + replied * (1 + i % 3) // 5
    return rated, rated * (2 + i % 3) // 4


def window(i: int) -> WindowValues:
    consultations = 20 + i * 7 % 60
    replied = consultations - i % 3
    paid = replied * (i % 7) // 20
    sales = round(paid * (88.5 + i * 13 % 300), 2)
    rated, satisfied = ratings(i, replied)
    return WindowValues(
        consultations=consultations,
        replied_consultations=replied,
        inquiries=replied,
        ordered_inquiries=paid,
        paid_inquiries=paid,
        reply_ratio=replied / consultations,
        first_response_avg_seconds=3.0 + i * 1.7 % 40,
        response_avg_seconds=8.0 + i % 20,
        consult_order_ratio=paid / replied,
        consult_pay_ratio=paid / replied,
        order_pay_ratio=1.0 if paid else None,
        attributed_sales_yuan=sales,
        average_order_value_yuan=sales / paid if paid else None,
        replied_within_ratio={"15": (i * 37 % 100) / 100, "180": 1.0},
        refunded_sales_yuan=0.0,
        assisted_paid=0,
        assisted_sales_yuan=0.0,
        rated_consultations=rated,
        rating_ratio=rated / replied,
        satisfaction_ratio=satisfied / rated if rated else None,
        dissatisfied_consultations=(rated - satisfied) // 2,
        average_rating_score=4.0 + satisfied / rated - (rated - satisfied) / rated if rated else None,
        online_seconds=3600.0 + i,
        away_seconds=300.0,
        logins=1,
    )


def wait_seconds(agent: Agent, as_of: int) -> float:
    return 0.0 if agent.since_ms is None else max(0.0, (as_of - agent.since_ms) / 1000)


def floor(shop: str, name: str, agents: list[Agent], as_of: int) -> dict[str, Any]:
    """The floor JSON of interfaces.md, made with the server's own types, plus `agents[].group`."""
    rows = [
        AgentRow(
            agent=a.agent,
            name=a.name,
            waiting_buyers=a.waiting,
            oldest_wait_seconds=round(wait_seconds(a, as_of), 3),
            alert=a.waiting > 0 and wait_seconds(a, as_of) > THRESHOLD,
            oldest_waiting_buyer="tb_***9" if a.waiting else None,
            agent_status=a.status or "unknown",
            windows={w: window(a.index) for w in ("5m", "1h", "today", "28d")},
        )
        for a in agents
    ]
    rows.sort(key=lambda r: (-r.oldest_wait_seconds, r.agent))
    team_window = TeamWindowValues(
        **msgspec.structs.asdict(msgspec.structs.replace(window(12), attributed_sales_yuan=123456.78)),
        orders=40,
        silent_orders=4,
        silent_share=0.1,
        silent_sales_yuan=300.0,
    )
    body = floor_json(
        ShopFloor(
            shop=shop,
            name=name,
            as_of=as_of,
            alert_threshold_seconds=THRESHOLD,
            in_service_hours=True,
            response_targets_seconds=TARGETS,
            agents=rows,
            totals=Totals(
                waiting_buyers=sum(a.waiting for a in agents),
                oldest_wait_seconds=max((r.oldest_wait_seconds for r in rows), default=0.0),
                windows={w: team_window for w in ("5m", "1h", "today", "28d")},
            ),
        )
    )
    groups = {a.agent: a.group for a in agents}
    unreported = {a.agent for a in agents if a.status is None}
    for row in body["agents"]:
        row["group"] = groups[row["agent"]]
        if row["agent"] in unreported:
            del row["agent_status"]
    return body


DIRECTIONS = ("better", "worse", "same", None)


def trend(shop: str, agents: list[Agent], as_of: int) -> dict[str, Any]:
    """`/api/v1/floor/trend`: 60 points a series, oldest first, with gaps in first response."""
    first: list[float | None] = [None if 20 <= m < 24 else 8 + 4 * math.sin(m / 6) for m in range(60)]
    return {
        "shop": shop,
        "as_of": as_of,
        "minutes": 60,
        "points": {
            "consultations": [5 + m % 7 for m in range(60)],
            "first_response_avg_seconds": first,
            "consult_pay_ratio": [None if m < 3 else 0.1 + 0.05 * math.cos(m / 9) for m in range(60)],
            "waiting_buyers": [m * 3 % 11 for m in range(60)],
        },
        "agents": {
            a.agent: {
                "last_hour": 10.0 + a.index % 5,
                "hour_before": 12.0,
                "direction": DIRECTIONS[a.index % 4],
            }
            for a in agents
        },
    }


@dataclass
class MockWorker:
    """Answers the page's requests as a worker would, or as a failing one does."""

    teams: dict[str, list[Agent]]
    names: dict[str, str] = field(default_factory=lambda: {"s1": "旗舰店", "s2": "二号店"})
    stream: str = "ok"  # ok | frozen (repeats the last as_of) | abort (network down) | error (503)
    stream_errors: int = 0  # the first N stream requests get a 503
    trend_status: int = 200
    last_as_of: int = 0
    streams: list[str] = field(default_factory=list)
    trends: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        url = urlsplit(route.request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        shop = query.get("shop", "")
        if f"{url.scheme}://{url.netloc}" != ORIGIN:
            self.unexpected.append(route.request.url)
            route.abort()
        elif url.path == "/floor":
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=PAGE)
        elif url.path == "/api/v1/floor/stream" and shop in self.teams:
            self.streams.append(shop)
            if self.stream == "abort":
                route.abort()
            elif self.stream == "error" or len(self.streams) <= self.stream_errors:
                route.fulfill(status=503, content_type="text/plain", body="worker restarting")
            else:
                if self.stream == "ok":
                    self.last_as_of = time.time_ns() // 1_000_000
                body = floor(shop, self.names.get(shop, shop), self.teams[shop], self.last_as_of)
                # One event a connection: the page reconnects a second later, as after a drop.
                route.fulfill(
                    status=200,
                    headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
                    body=f"retry: 1000\ndata: {json.dumps(body, ensure_ascii=False)}\n\n",
                )
        elif url.path == "/api/v1/floor/trend" and shop in self.teams:
            self.trends.append(shop)
            if self.trend_status != 200:
                route.fulfill(
                    status=self.trend_status, content_type="application/json", body='{"error": "no"}'
                )
            else:
                now = time.time_ns() // 1_000_000
                route.fulfill(
                    status=200,
                    content_type="application/json",
                    body=json.dumps(trend(shop, self.teams[shop], now)),
                )
        else:
            self.unexpected.append(route.request.url)
            route.abort()


@contextmanager
def floor_page(
    worker: MockWorker, query: str, width: int, height: int, *, init_script: str | None = None
) -> Iterator[Page]:
    """The page at `ORIGIN/floor?query`, every request answered by `worker`, no script errors;
    `init_script` runs before the page's own."""
    from playwright.sync_api import Page

    with chromium_page(width, height) as opened:
        assert isinstance(opened, Page)
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.route("**/*", worker.handle)
        if init_script:
            opened.add_init_script(init_script)
        opened.goto(f"{ORIGIN}/floor?{query}")
        yield opened
        assert errors == []
        assert worker.unexpected == []


def urgency(agents: list[Agent], now_ms: int) -> list[str]:
    """The page's order: waiting first, the oldest wait on top, then the agent id."""
    return [
        a.agent for a in sorted(agents, key=lambda a: (a.waiting == 0, -wait_seconds(a, now_ms), a.agent))
    ]


CARDS = """els => els.map(e => {
  const r = e.getBoundingClientRect();
  return {agent: e.dataset.agent, left: r.left, top: r.top, right: r.right, bottom: r.bottom,
          clipped: e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1};
})"""
SMALLEST_TEXT = """() => {
  let smallest = Infinity;
  for (const e of document.querySelectorAll('article.tile *')) {
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (own && e.checkVisibility()) smallest = Math.min(smallest, parseFloat(getComputedStyle(e).fontSize));
  }
  return smallest;
}"""


def visible_cards(page: Page) -> list[dict[str, Any]]:
    """Every card on screen, each checked to lie inside the viewport with nothing cut off."""
    cards: list[dict[str, Any]] = page.eval_on_selector_all("article.tile", CARDS)
    width, height = page.evaluate("() => [innerWidth, innerHeight]")
    for card in cards:
        assert card["left"] >= 0 and card["top"] >= 0, card
        assert card["right"] <= width and card["bottom"] <= height, card
        assert not card["clipped"], card
    return cards


def page_one_cards(page: Page) -> list[dict[str, Any]]:
    """The cards of page 1, read between two looks at the pager that both say page 1: at one
    second a page, a loaded machine can otherwise read the cards just after the page turned."""
    pager = page.locator("#pager")
    for _ in range(100):  # page 1 comes round again within `pages` seconds
        before = pager.get_attribute("data-page")
        cards = visible_cards(page)
        if before == "1" and pager.get_attribute("data-page") == "1":
            return cards
        page.wait_for_timeout(100)
    raise AssertionError("the pager never stayed on page 1 long enough to read its cards")


def assert_no_scroll(page: Page) -> None:
    sizes = page.evaluate(
        "() => { const d = document.documentElement;"
        " return [d.scrollHeight, innerHeight, d.scrollWidth, innerWidth]; }"
    )
    assert sizes[0] <= sizes[1] and sizes[2] <= sizes[3], sizes


@pytest.mark.parametrize(("n", "width", "height"), [(60, 1920, 1080), (30, 1366, 768)])
def test_the_whole_team_fits_one_screen_readably(n: int, width: int, height: int) -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", n, now, alerts=2)
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1", width, height) as page:
        expect(page.locator("article.tile")).to_have_count(n)
        expect(page.locator('[data-agent="s1:a000"] .trend')).not_to_be_empty()  # the trend arrived
        page.wait_for_timeout(300)
        cards = visible_cards(page)
        assert sorted(card["agent"] for card in cards) == sorted(a.agent for a in agents)
        assert_no_scroll(page)
        expect(page.locator("#pager")).to_be_hidden()
        assert page.locator(".tile.compact").count() == n
        assert page.evaluate(SMALLEST_TEXT) >= 14
        # Each card tells who, the wait, today's first response and replied-within-15 s.
        card = page.locator('[data-agent="s1:a007"]')
        expect(card).to_contain_text(str(agents[7].name))
        expect(card.locator(".first .value")).to_have_text("14.9s")
        expect(card.locator(".within .value")).to_have_text("59%")
        expect(card.locator(".waiting .value")).to_have_text("2")
        expect(page.locator('[data-agent="s1:a008"] .nm')).to_have_text("s1:a008")  # no name: the id
        expect(page.locator(".flash")).to_have_count(0)  # red ones blink when first seen
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"floor-{n}-{width}.png"))


def test_a_small_team_keeps_the_big_tiles() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 8, now, alerts=1)
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1", 1920, 1080) as page:
        expect(page.locator("article.tile")).to_have_count(8)
        page.wait_for_timeout(300)
        assert page.locator("article.tile.compact").count() == 0
        visible_cards(page)
        assert_no_scroll(page)
        assert page.evaluate(SMALLEST_TEXT) >= 14
        expect(page.locator('[data-agent="s1:a007"] .within .value')).to_have_text("59.0%")
        expect(page.locator(".flash")).to_have_count(0)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "floor-8-1920.png"))


def test_a_team_too_big_for_one_screen_rotates_through_pages() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 120, now)
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1&rotate=1", 1920, 1080) as page:
        pager = page.locator("#pager")
        expect(pager).to_be_visible()
        pages = int(pager.get_attribute("data-pages") or 0)
        assert pages >= 2
        expect(pager).to_have_text(f"1/{pages}")
        first_page = [card["agent"] for card in page_one_cards(page)]
        assert first_page == urgency(agents, now)[: len(first_page)]  # the most urgent on page 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "floor-120-1920-page1.png"))
        seen: set[str] = set()
        deadline = time.monotonic() + 2 * pages * 1.0 + 1.5
        while time.monotonic() < deadline and len(seen) < len(agents):
            cards = visible_cards(page)
            assert len(cards) <= len(first_page)
            seen.update(card["agent"] for card in cards)
            assert_no_scroll(page)
            page.wait_for_timeout(150)
        assert seen == {a.agent for a in agents}


# Every read of the page's clock is a millisecond later than the last: a render that read it per
# card would give equal waits unequal ages, and order them by when each card was drawn.
TICKING_CLOCK = "{ const real = Date.now; let ticks = 0; Date.now = () => real() + ++ticks; }"


def test_equal_waits_keep_the_agent_id_order_however_long_a_render_takes() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 12, now)
    for agent in agents:
        agent.waiting, agent.since_ms = 1, now - 7_000
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1", 1920, 1080, init_script=TICKING_CLOCK) as page:
        expect(page.locator("article.tile")).to_have_count(len(agents))
        for _ in range(3):  # several renders, each with its own clock
            assert [card["agent"] for card in visible_cards(page)] == sorted(a.agent for a in agents)
            page.wait_for_timeout(400)


def test_a_red_agent_comes_first_with_a_label_and_page_one_is_red_when_many_are() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 40, now, alerts=1)
    red = next(a for a in agents if a.waiting)
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1", 1920, 1080) as page:
        first = page.locator("article.tile").first
        expect(first).to_have_attribute("data-agent", red.agent)
        expect(first).to_have_attribute("data-alert", "true")
        expect(first).to_have_class(re.compile(r"\balert\b"))
        expect(first.locator(".alert-label")).to_be_visible()
        expect(first.locator(".alert-label")).to_have_text("⚠ 等待过久 · waiting too long")
        assert page.locator('[data-alert="true"]').count() == 1
        expect(page.locator(".alert-label:visible")).to_have_count(1)
        order = [card["agent"] for card in visible_cards(page)]
        assert order == urgency(agents, now)

    # More red agents than one page holds: page 1 is all red.
    agents = team("s1", 130, now)
    for a in agents[:50]:
        a.waiting, a.since_ms = 1, now - int((THRESHOLD + 10 + a.index) * 1000)
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1&rotate=600", 1366, 768) as page:
        expect(page.locator("#pager")).to_have_attribute("data-page", "1")
        cards = visible_cards(page)
        assert 0 < len(cards) < 50
        assert all(
            page.locator(f'[data-agent="{c["agent"]}"]').get_attribute("data-alert") == "true" for c in cards
        )


def test_turning_red_flashes_and_beeps_once_per_new_alert() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 20, now)
    soon, later, last = [a for a in agents if a.waiting][:3]
    for agent in (soon, later, last):
        agent.since_ms = now  # far from the threshold until the page is up (a loaded CI is slow)
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1&sound=1", 1920, 1080) as page:
        mute = page.locator("#mute")
        expect(mute).to_be_visible()
        card = page.locator(f'[data-agent="{soon.agent}"]')
        expect(card).to_have_attribute("data-alert", "false")
        # The mock reads these on every push: three agents cross the threshold 3, 11, 19 s from now.
        start = time.time_ns() // 1_000_000
        soon.since_ms = start - int((THRESHOLD - 3) * 1000)
        later.since_ms = start - int((THRESHOLD - 11) * 1000)
        last.since_ms = start - int((THRESHOLD - 19) * 1000)
        expect(card).to_have_attribute("data-alert", "true", timeout=10_000)
        expect(card).to_have_class(re.compile(r"\bflash\b"), timeout=1500)
        expect(page.locator("article.tile").first).to_have_attribute("data-agent", soon.agent)
        expect(mute).to_have_attribute("data-beeps", "1")
        expect(card).not_to_have_class(re.compile(r"\bflash\b"), timeout=3000)  # brief
        expect(card).to_have_class(re.compile(r"\balert\b"))
        expect(mute).to_have_attribute("data-beeps", "1")  # once, not every second

        expect(page.locator(f'[data-agent="{later.agent}"]')).to_have_attribute(
            "data-alert", "true", timeout=20_000
        )
        expect(mute).to_have_attribute("data-beeps", "2")
        mute.click()
        expect(mute).to_have_attribute("aria-pressed", "true")
        expect(page.locator(f'[data-agent="{last.agent}"]')).to_have_attribute(
            "data-alert", "true", timeout=20_000
        )
        page.wait_for_timeout(500)
        expect(mute).to_have_attribute("data-beeps", "2")  # muted


def test_a_group_shows_only_its_agents() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 30, now)
    presale = [a for a in agents if a.group == "presale"]
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1&group=presale", 1920, 1080) as page:
        expect(page.locator("article.tile")).to_have_count(len(presale))
        page.wait_for_timeout(300)
        assert sorted(card["agent"] for card in visible_cards(page)) == sorted(a.agent for a in presale)
        expect(page.locator("#group")).to_contain_text("presale")
        # The headline adds up the group, not the shop.
        waiting = page.locator('.stat[data-stat="waiting"] .value')
        expect(waiting).to_have_text(str(sum(a.waiting for a in presale)))


def test_several_shops_side_by_side() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    teams = {"s1": team("s1", 16, now, alerts=1), "s2": team("s2", 20, now)}
    worker = MockWorker(teams)
    with floor_page(worker, "shops=s1,s2", 1920, 1080) as page:
        for shop, agents in teams.items():
            column = page.locator(f'.shop[data-shop="{shop}"]')
            expect(column.locator("article.tile")).to_have_count(len(agents))
            expect(column.locator("h2")).to_have_text(worker.names[shop])
            expect(column.locator(".stat").first).to_be_visible()
            ids = column.locator("article.tile").evaluate_all("els => els.map(e => e.dataset.agent)")
            assert sorted(ids) == sorted(a.agent for a in agents)
        page.wait_for_timeout(1200)
        visible_cards(page)
        assert_no_scroll(page)
        assert page.evaluate(SMALLEST_TEXT) >= 14
        left = page.locator('.shop[data-shop="s1"]').bounding_box()
        right = page.locator('.shop[data-shop="s2"]').bounding_box()
        assert left and right and left["x"] + left["width"] <= right["x"]
        assert {"s1", "s2"} <= set(worker.streams) and sorted(set(worker.trends)) == ["s1", "s2"]
        expect(page.locator(".flash")).to_have_count(0)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "floor-2shops-1920.png"))


def test_sparklines_and_agent_trends_come_from_one_trend_request_per_shop() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 40, now)
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1", 1920, 1080) as page:
        first = page.locator('.stat[data-stat="first"] svg.spark polyline')
        expect(first).to_have_count(2)  # a gap in the minutes without a first response
        expect(page.locator('.stat[data-stat="waiting"] svg.spark polyline')).to_have_count(1)
        expect(page.locator('.stat[data-stat="pay"] svg.spark polyline')).to_have_count(1)
        points = (first.first.get_attribute("points") or "").split()
        assert len(points) == 20  # minutes 0-19, before the gap
        better = page.locator('[data-agent="s1:a000"] .trend')
        expect(better).to_have_text("▼ 变快")
        expect(better).to_have_attribute("title", re.compile("10.0s"))
        expect(page.locator('[data-agent="s1:a001"] .trend')).to_have_text("▲ 变慢")
        expect(page.locator('[data-agent="s1:a002"] .trend')).to_have_text("＝ 持平")
        expect(page.locator('[data-agent="s1:a003"] .trend')).to_have_text("")
        page.wait_for_timeout(1500)
        assert worker.trends == ["s1"]  # at start, then once a minute: never one per agent


def test_without_trends_the_floor_still_works() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    worker = MockWorker({"s1": team("s1", 20, now)}, trend_status=500)
    with floor_page(worker, "shop=s1", 1366, 768) as page:
        expect(page.locator("article.tile")).to_have_count(20)
        expect(page.locator("#status")).to_have_class("live")
        page.wait_for_timeout(500)
        assert page.locator("svg.spark polyline").count() == 0
        assert worker.trends == ["s1"]


def test_stale_data_is_shown_and_cleared() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    worker = MockWorker({"s1": team("s1", 20, now)})
    with floor_page(worker, "shop=s1&stale=2", 1366, 768) as page:
        banner = page.locator("#stale")
        expect(page.locator("article.tile")).to_have_count(20)
        expect(banner).to_be_hidden()

        worker.stream = "frozen"  # the server keeps sending the same old as_of
        expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"), timeout=5000)
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(re.compile(r"data is \d+ s old"))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "floor-stale-1366.png"))
        worker.stream = "ok"
        expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"), timeout=5000)
        expect(banner).to_be_hidden()

        worker.stream = "abort"  # the network is gone
        expect(page.locator("#status")).to_have_class("down", timeout=5000)
        expect(banner).to_be_visible(timeout=5000)
        worker.stream = "ok"
        expect(page.locator("#status")).to_have_class("live", timeout=10_000)
        expect(banner).to_be_hidden()


def test_the_page_recovers_from_http_errors_that_close_the_event_source() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    worker = MockWorker({"s1": team("s1", 5, now)}, stream_errors=2)
    with floor_page(worker, "shop=s1", 1366, 768) as page:
        expect(page.locator("#status")).to_have_class("down")
        expect(page.locator("#status")).to_have_class("live", timeout=10_000)
        expect(page.locator("article.tile")).to_have_count(5)


def test_help_lists_the_parameters() -> None:
    from playwright.sync_api import expect

    worker = MockWorker({"s1": team("s1", 3, time.time_ns() // 1_000_000)})
    with floor_page(worker, "shop=s1", 1366, 768) as page:
        help_ = page.locator("#help")
        expect(help_).to_be_hidden()
        page.locator("#helpButton").click()
        expect(help_).to_be_visible()
        for word in ("shop=", "shops=", "group=", "rotate=", "sound=", "等待过久", "变快", "变慢", "持平"):
            expect(help_).to_contain_text(word)
        page.keyboard.press("Escape")
        expect(help_).to_be_hidden()
        page.keyboard.press("?")
        expect(help_).to_be_visible()


def percent(ratio: float | None, digits: int = 1) -> str:
    return "—" if ratio is None else f"{ratio * 100:.{digits}f}%"


def satisfaction(agents: list[Agent]) -> float | None:
    """The team's 满意度 from the agents' counts: satisfied / rated, never a mean of ratios."""
    rated = satisfied = 0
    for a in agents:
        today = window(a.index)
        rated += today.rated_consultations
        satisfied += round((today.satisfaction_ratio or 0) * today.rated_consultations)
    return satisfied / rated if rated else None


@pytest.mark.parametrize(
    ("n", "width", "height", "mode"), [(8, 1920, 1080, "big"), (30, 1366, 768, "compact")]
)
def test_every_card_shows_the_agents_status_and_big_tiles_their_satisfaction(
    n: int, width: int, height: int, mode: str
) -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", n, now)
    agents[1].status = "dozing"  # a status this page does not know yet reads as unknown
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1", width, height) as page:
        expect(page.locator(f"article.tile.{mode}")).to_have_count(n)
        for a in agents:
            known = a.status if a.status in STATUS_WORDS else None
            card = page.locator(f'[data-agent="{a.agent}"]')
            status = card.locator(".status")
            expect(status).to_have_attribute("data-status", known or "unknown")
            expect(status).to_have_text(STATUS_WORDS[known])
            expect(status.locator(".dot")).to_be_visible()
            if mode == "big":
                expected = percent(window(a.index).satisfaction_ratio)
                expect(card.locator(".satisfaction .value")).to_have_text(expected)
        # Green, amber and grey: the colour says it at a glance, the word says it to everyone.
        colours = {
            status: page.locator(f'.status[data-status="{status}"]').first.evaluate(
                "e => getComputedStyle(e.querySelector('.dot')).backgroundColor"
            )
            for status in ("online", "away", "offline")
        }
        assert len(set(colours.values())) == 3, colours
        if mode == "big":
            expect(page.locator('[data-agent="s1:a003"] .satisfaction .value')).to_have_text("—")
        headline = page.locator('.stat[data-stat="satisfaction"]')
        expect(headline.locator(".label")).to_contain_text("满意度")
        expect(headline.locator(".value")).to_have_text(percent(window(12).satisfaction_ratio))
        page.wait_for_timeout(300)
        visible_cards(page)
        assert_no_scroll(page)
        assert page.evaluate(SMALLEST_TEXT) >= 14
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"floor-status-{n}-{width}.png"))


def test_a_groups_satisfaction_comes_from_its_rated_counts() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = team("s1", 24, now)
    presale = [a for a in agents if a.group == "presale"]
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1&group=presale", 1920, 1080) as page:
        expect(page.locator("article.tile")).to_have_count(len(presale))
        value = page.locator('.stat[data-stat="satisfaction"] .value')
        expect(value).to_have_text(percent(satisfaction(presale)))


def test_a_team_without_ratings_shows_a_dash_for_satisfaction() -> None:
    from playwright.sync_api import expect

    now = time.time_ns() // 1_000_000
    agents = [a for a in team("s1", 16, now) if a.index % 4 == 3]  # nobody rated
    worker = MockWorker({"s1": agents})
    with floor_page(worker, "shop=s1&group=presale", 1920, 1080) as page:
        expect(page.locator("article.tile")).not_to_have_count(0)
        expect(page.locator('.stat[data-stat="satisfaction"] .value')).to_have_text("—")
        expect(page.locator(".tile .satisfaction .value").first).to_have_text("—")
