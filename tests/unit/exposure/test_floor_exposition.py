"""The fast floor text is byte for byte what prometheus_client writes for FloorCollector.

The snapshot holds what can go wrong in text: ids with quotes, backslashes, newlines and CJK,
absent ratios (no sample), an empty shop, the first-response histogram and the shops left out.
"""

from __future__ import annotations

import random
import time

import msgspec
from prometheus_client import CollectorRegistry, generate_latest

from agents.core.projection import FIRST_RESPONSE_BUCKETS, WIDTH
from agents.core.status import StatusTime
from agents.core.statuses import STATUSES
from agents.core.values import team_values, window_values
from agents.core.windows import WINDOWS
from agents.exposure.collector import OVERFLOW_AGENT, FloorCollector, FloorSnapshot
from agents.exposure.floor_exposition import FloorText, KeptText, floor_exposition
from agents.exposure.status_values import with_status
from streams.contract.floor import AgentRow, ShopFloor, Totals

TARGETS = (15, 30, 60)
HOSTILE_IDS = ('s1:"quoted"', "s1:back\\slash", "s1:new\nline", "s1:小美", "s1:plain")


def row(agent: str, rng: random.Random) -> AgentRow:
    def vector() -> list[int]:
        return [rng.choice((0, 0, 1, 7, 1234, 99_999)) for _ in range(WIDTH)]

    def status() -> StatusTime:
        return StatusTime(rng.choice((0, 1, 299_999, 86_400_000)), rng.choice((0, 1_500)), rng.randrange(3))

    sums = {w: tuple(vector()) for w in WINDOWS}  # as the leader's rows carry them
    return AgentRow(
        agent=agent,
        name=None,
        waiting_buyers=rng.randrange(4),
        oldest_wait_seconds=rng.choice((0.0, 3.25, 1e7, 16.0)),
        alert=False,
        oldest_waiting_buyer=None,
        agent_status=rng.choice(STATUSES),
        windows={w: with_status(window_values(sums[w], TARGETS), status()) for w in WINDOWS},
        sums=sums,
    )


def floor(shop: str, agents: list[str], rng: random.Random, open_now: bool = True) -> ShopFloor:
    zeros = [0] * WIDTH
    return ShopFloor(
        shop=shop,
        name=None,
        as_of=0,
        alert_threshold_seconds=15.0,
        in_service_hours=open_now,
        response_targets_seconds=list(TARGETS),
        agents=[row(agent, rng) for agent in agents],
        totals=Totals(
            waiting_buyers=0,
            oldest_wait_seconds=0.0,
            windows={w: team_values(zeros, [rng.randrange(9), *zeros[1:]], TARGETS) for w in WINDOWS},
        ),
    )


def snapshot(agents: int = 0, seed: int = 7) -> FloorSnapshot:
    rng = random.Random(seed)
    ids = [*HOSTILE_IDS, *(f"s1:a{i}" for i in range(agents)), OVERFLOW_AGENT]
    floors = [floor('s1"\\\n', ids, rng), floor("empty", [], rng, open_now=False)]
    histograms = {
        (floors[0].shop, agent): {str(i): rng.randrange(5) for i in range(len(FIRST_RESPONSE_BUCKETS) + 1)}
        | {"sum": rng.randrange(10**6)}
        for agent in ids
    }
    return FloorSnapshot(floors=floors, histograms=histograms, unexported_shops=3)


def reference(snap: FloorSnapshot) -> bytes:
    registry = CollectorRegistry()
    collector = FloorCollector()
    collector.snapshot = snap
    registry.register(collector)
    return generate_latest(registry)


def test_the_text_equals_prometheus_clients_byte_for_byte() -> None:
    snap = snapshot(agents=20)
    assert floor_exposition(snap).encode() == reference(snap)


def test_every_agent_but_other_has_one_status_series_at_1_and_the_rest_at_0() -> None:
    snap = snapshot(agents=3)
    text = floor_exposition(snap)
    plain = [row for row in snap.floors[0].agents if not any(c in row.agent for c in '"\\\n')]
    assert len(plain) == 6  # s1:小美, s1:plain, three s1:aN and _other
    for agent in plain:
        labels = f'kefu_agent_status{{agent="{agent.agent}",'
        lines = [line for line in text.splitlines() if line.startswith(labels)]
        if agent.agent == OVERFLOW_AGENT:
            assert lines == []
            continue
        assert sorted(line.rsplit(" ", 1)[1] for line in lines) == ["0.0", "0.0", "0.0", "1.0"]
        assert any(f'status="{agent.agent_status}"}} 1.0' in line for line in lines)


def test_an_empty_snapshot_still_declares_every_family() -> None:
    assert floor_exposition(FloorSnapshot()).encode() == reference(FloorSnapshot())


def test_one_snapshot_is_rendered_once_and_a_new_one_again() -> None:
    text = FloorText()
    first, second = snapshot(seed=1), snapshot(seed=2)
    assert text.published(first) is None, "nobody scrapes yet: nothing is written ahead"
    assert text.of(first) is text.of(first)
    assert text.of(second) == reference(second)


def test_a_snapshot_published_while_scrapes_come_is_written_ahead() -> None:
    text = FloorText()
    first, second = snapshot(seed=1), snapshot(seed=2)
    text.of(first)
    ahead = text.published(second)
    assert ahead is not None
    written = ahead.result(timeout=10)
    assert written == reference(second) and text.of(second) is written


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_steady_scraper_has_its_snapshot_written_ahead_just_before_it_comes() -> None:
    """Scrapes every 15 s, snapshots every second: written ahead from 2.5 s before the next
    scrape is due, not fifteen times for the one read; that scrape finds its text written."""
    clock, snapshots = Clock(), [snapshot(seed=seed, agents=2) for seed in range(1, 5)]
    text = FloorText(clock)
    for scrape in range(3):
        text.of(snapshots[scrape % 2])
        clock.now += 15
    text.of(snapshots[2])
    written_at = []
    for second in range(1, 15):
        clock.now += 1
        if (ahead := text.published(snapshots[second % 2])) is not None:
            written_at.append(second)
            ahead.result(timeout=10)
    assert written_at == [13, 14]
    clock.now += 1
    ahead = text.published(snapshots[3])
    assert ahead is not None
    assert text.of(snapshots[3]) is ahead.result(timeout=10)
    clock.now += 1
    assert text.published(snapshots[0]) is None, "the next one is 15 s away again"


def test_a_late_scraper_gets_every_snapshot_written_ahead_until_it_comes() -> None:
    clock = Clock()
    text = FloorText(clock)
    for _ in range(2):
        text.of(snapshot(seed=1, agents=2))
        clock.now += 10
    clock.now += 20  # 30 s since the last: overdue
    ahead = text.published(snapshot(seed=2, agents=2))
    assert ahead is not None and ahead.result(timeout=10)
    clock.now += 31  # over a minute: nobody scrapes any more
    assert text.published(snapshot(seed=3, agents=2)) is None


def test_two_hundred_agents_render_faster_than_through_prometheus_client() -> None:
    """Not a timing assertion of its own: the ratio is printed, the bytes are compared."""
    snap = snapshot(agents=200)
    started = time.perf_counter()
    fast = floor_exposition(snap).encode()
    middle = time.perf_counter()
    slow = reference(snap)
    ended = time.perf_counter()
    fast_ms, slow_ms = 1000 * (middle - started), 1000 * (ended - middle)
    print(f"floor text at 200 agents: {fast_ms:.1f} ms, reference {slow_ms:.1f} ms")
    assert fast == slow


def test_rows_kept_from_the_last_snapshot_write_the_same_text_as_new_ones() -> None:
    """The leader keeps an unchanged agent's `windows` across rounds and its lines with them;
    a row with new windows (same agent) must not get the old lines."""
    first, second = snapshot(agents=20, seed=7), snapshot(agents=20, seed=8)
    kept = KeptText()
    floor_exposition(first, kept)
    rows = [
        msgspec.structs.replace(old, waiting_buyers=old.waiting_buyers + 1) if i % 2 else new
        for i, (old, new) in enumerate(zip(first.floors[0].agents, second.floors[0].agents, strict=True))
    ]
    mixed = FloorSnapshot(
        [msgspec.structs.replace(second.floors[0], agents=rows), second.floors[1]], second.histograms, 3
    )
    assert floor_exposition(mixed, kept).encode() == reference(mixed)
    assert floor_exposition(mixed, kept) == floor_exposition(mixed)  # kept twice over


def test_a_row_whose_status_time_one_window_or_targets_moved_gets_new_lines_for_them() -> None:
    """A window's lines but its status time's are kept while its summed vector and the shop's
    targets are equal (the leader's row of an online agent is new every second): each row that
    moved must write what a new one writes."""
    first = snapshot(agents=30, seed=7)
    kept = KeptText()
    floor_exposition(first, kept)
    rng, rows = random.Random(9), []
    for i, old in enumerate(first.floors[0].agents):
        if i % 3 == 0:  # only the clock moved: new status time, the same sums
            windows = {
                w: with_status(v, StatusTime(rng.randrange(10**8), 1_500, 1)) for w, v in old.windows.items()
            }
            rows.append(msgspec.structs.replace(old, windows=windows))
        elif i % 3 == 1 and old.sums is not None:  # a cohort left the 5m window alone
            five = tuple(rng.choice((0, 3, 4_321)) for _ in range(WIDTH))
            windows = old.windows | {"5m": with_status(window_values(five, TARGETS), StatusTime())}
            rows.append(msgspec.structs.replace(old, windows=windows, sums=old.sums | {"5m": five}))
        else:
            rows.append(old)
    moved = FloorSnapshot([msgspec.structs.replace(first.floors[0], agents=rows), first.floors[1]], {}, 0)
    assert floor_exposition(moved, kept).encode() == reference(moved)
    # The shop's targets change and no sum does: every `within` line and ratio is new.
    other = (10, 45)
    retargeted = [
        msgspec.structs.replace(
            row, windows={w: with_status(window_values(row.sums[w], other), StatusTime()) for w in WINDOWS}
        )
        for row in rows
        if row.sums is not None
    ]
    floor_two = msgspec.structs.replace(
        first.floors[0], agents=retargeted, response_targets_seconds=list(other)
    )
    again = FloorSnapshot([floor_two], {}, 0)
    assert floor_exposition(again, kept).encode() == reference(again)


def test_rows_and_counts_handed_over_again_keep_their_lines_and_new_ones_get_new_lines() -> None:
    """The leader hands over an unchanged agent's row and first-response counts as the very
    objects of the last round: their lines are kept. An agent whose counts were read again (a
    new object, other counts), or whose row only aged (a new row, the same windows), must
    write what a new text writes."""
    first = snapshot(agents=30, seed=7)
    kept = KeptText()
    floor_exposition(first, kept)
    rng = random.Random(11)
    rows = [
        msgspec.structs.replace(old, oldest_wait_seconds=old.oldest_wait_seconds + 1.0, agent_status="away")
        if i % 2
        else old
        for i, old in enumerate(first.floors[0].agents)
    ]
    histograms = {
        key: (
            {str(b): rng.randrange(50) for b in range(len(FIRST_RESPONSE_BUCKETS) + 1)} | {"sum": 7}
            if i % 3
            else counts
        )
        for i, (key, counts) in enumerate(first.histograms.items())
    }
    second = FloorSnapshot(
        [msgspec.structs.replace(first.floors[0], agents=rows), first.floors[1]], histograms, 3
    )
    assert floor_exposition(second, kept).encode() == reference(second)
    assert set(kept.rows) == {(first.floors[0].shop, row.agent) for row in rows}
    assert all(kept.histograms[key][0] is counts for key, counts in histograms.items())
