"""Bounded Prometheus labels: agents past the cap become one `_other` series that still adds up.

The floor comes from the real FloorReader over an in-memory store, and the leader's real
refresh (Runtime.lead) feeds the real collector; only Redis is faked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from agents.core.policy import PolicyBook
from agents.core.projection import SHOP_LEVEL, WIDTH, Counter
from agents.core.values import window_values
from agents.core.windows import WINDOWS
from agents.exposure.collector import OVERFLOW_AGENT, FloorCollector, FloorSnapshot, cap_agents, cap_shops
from agents.exposure.floor import FloorReader
from agents.exposure.floor_exposition import floor_exposition
from agents.worker.runtime import Runtime
from config.settings import Settings, settings_from_yaml
from streams.contract.floor import ShopFloor
from tests.fakes import FakeStore

NOW = 1_764_000_000_000


def vector(**fields: int) -> list[int]:
    names = {
        "consultations": Counter.CONSULTATIONS,
        "replied": Counter.REPLIED,
        "first_response_ms": Counter.FIRST_RESPONSE_MS,
        "waits_ended": Counter.WAITS_ENDED,
        "wait_ms": Counter.WAIT_MS,
        "inquiries": Counter.INQUIRIES,
        "ordered": Counter.ORDERED,
        "paid": Counter.PAID,
        "sales_fen": Counter.SALES_FEN,
    }
    out = [0] * WIDTH
    for name, value in fields.items():
        out[names[name]] = value
    return out


def floor_of(store: FakeStore, shop: str, settings: Settings | None = None) -> ShopFloor:
    reader = FloorReader(store, PolicyBook(settings or Settings()))  # type: ignore[arg-type]
    return asyncio.run(reader.floor(shop, NOW, with_sums=True))


def test_the_overflow_series_carries_sums_and_exact_ratios() -> None:
    store = FakeStore()
    store.vectors[("s1", "s1:a")] = vector(consultations=9, replied=9, first_response_ms=9_000)
    store.vectors[("s1", "s1:b")] = vector(
        consultations=4,
        replied=2,
        first_response_ms=2_000,
        waits_ended=2,
        wait_ms=10_000,
        inquiries=2,
        ordered=2,
        paid=1,
        sales_fen=12_345,
    )
    store.vectors[("s1", "s1:c")] = vector(
        consultations=6,
        replied=3,
        first_response_ms=30_000,
        waits_ended=4,
        wait_ms=4_000,
        inquiries=3,
        ordered=1,
        paid=1,
        sales_fen=10,
    )
    store.waits[("s1", "s1:b")] = (2, NOW - 40_000, "tb_x")
    store.waits[("s1", "s1:c")] = (1, NOW - 5_000, "tb_y")
    capped = cap_agents(floor_of(store, "s1"), max_agents=2)
    rows = {row.agent: row for row in capped.agents}
    assert set(rows) == {"s1:a", OVERFLOW_AGENT}
    other = rows[OVERFLOW_AGENT]
    window = other.windows["28d"]
    assert window == window_values(
        targets_seconds=(15, 180),
        v=vector(
            consultations=10,
            replied=5,
            first_response_ms=32_000,
            waits_ended=6,
            wait_ms=14_000,
            inquiries=5,
            ordered=3,
            paid=2,
            sales_fen=12_355,
        ),
    )
    assert (window.consultations, window.replied_consultations, window.inquiries) == (10, 5, 5)
    assert (window.ordered_inquiries, window.paid_inquiries) == (3, 2)
    assert window.attributed_sales_yuan == 123.55
    assert window.reply_ratio == 0.5
    # From summed numerators and denominators: (2 s + 30 s) / 5 replies, not the mean of 1 s and 10 s.
    assert window.first_response_avg_seconds == 6.4
    assert window.response_avg_seconds == round(14 / 6, 3)
    assert window.consult_pay_ratio == 0.4 and window.order_pay_ratio == 2 / 3
    assert other.waiting_buyers == 3
    assert other.oldest_wait_seconds == 40.0 and other.alert is True
    assert other.oldest_waiting_buyer is None
    # Shop totals are untouched by the cap.
    assert capped.totals == floor_of(store, "s1").totals


def test_configured_agents_keep_their_series_whatever_their_ids() -> None:
    store = FakeStore()
    for index in range(50):
        store.vectors[("s1", f"aa_flood_{index:02}")] = vector(consultations=1)
    store.vectors[("s1", "zz_real")] = vector(consultations=3)
    capped = cap_agents(floor_of(store, "s1"), max_agents=5, preferred={"zz_real"})
    assert [row.agent for row in capped.agents][-1] == OVERFLOW_AGENT
    assert "zz_real" in {row.agent for row in capped.agents}
    assert len(capped.agents) == 5
    assert sum(row.windows["today"].consultations for row in capped.agents) == 53


def test_an_agent_whose_id_is_other_is_folded_into_other_never_beside_it() -> None:
    """events.md allows any agent id, `_other` too. Past the cap it was a second series with
    the fold's very labels (Prometheus drops a scrape with duplicate series), and its
    first-response counts were overwritten by the merged ones."""
    settings = settings_from_yaml("shops:\n  s1: {}\nprocessing: {max_agents_per_shop: 3}\n")

    async def sink(events: Sequence[Any]) -> None:
        return None

    async def lead() -> str:
        runtime = Runtime.create(settings, sink, sink)  # type: ignore[arg-type]
        await runtime.store.close()
        store = FakeStore()
        runtime.store, runtime.reader = store, FloorReader(store, runtime.policies)  # type: ignore[assignment]
        for agent, count in {OVERFLOW_AGENT: 5, "s1:a": 1, "s1:b": 1, "s1:c": 1, "s1:d": 1}.items():
            store.vectors[("s1", agent)] = vector(
                consultations=count, replied=count, first_response_ms=1000 * count
            )
            store.hist[("s1", agent)] = {"0": count, "sum": 1000 * count}
        store.vectors[("s1", SHOP_LEVEL)] = vector()
        await runtime.lead(NOW)
        return floor_exposition(runtime.collector.snapshot)

    text = asyncio.run(lead())
    today = [
        line
        for line in text.splitlines()
        if line.startswith("kefu_consultations{") and 'window="today"' in line
    ]
    assert sorted(line.split('agent="')[1].split('"')[0] for line in today) == [
        OVERFLOW_AGENT,
        "s1:a",
        "s1:b",
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in today) == 9
    counts = [line for line in text.splitlines() if line.startswith("kefu_first_response_seconds_count{")]
    assert len(counts) == 3 and sum(float(line.rsplit(" ", 1)[1]) for line in counts) == 9


def test_a_floor_without_sums_is_refused() -> None:
    store = FakeStore()
    for agent in ("a", "b", "c"):
        store.vectors[("s1", agent)] = vector(consultations=1)
    floor = floor_of(store, "s1")
    for row in floor.agents:
        row.sums = None
    with pytest.raises(ValueError, match="with_sums"):
        cap_agents(floor, max_agents=2)


def test_shop_cap_keeps_configured_shops_and_counts_the_rest() -> None:
    shops = [f"flood{index:05}" for index in range(10_000)] + ["zz_known"]
    kept, left_out = cap_shops(shops, {"zz_known"}, max_shops=200)
    assert len(kept) == 200 and "zz_known" in kept
    assert left_out == 10_001 - 200
    assert cap_shops(["a", "b"], set(), 200) == (["a", "b"], 0)


def series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [s.labels for metric in registry.collect() for s in metric.samples if s.name == name]


def test_ten_thousand_agent_ids_stay_a_bounded_number_of_series() -> None:
    settings = settings_from_yaml("shops:\n  s1:\n    agents: {'s1:zz_real': {name: 小美}}\n")
    settings = msgspec.structs.replace(
        settings, processing=msgspec.structs.replace(settings.processing, max_agents_per_shop=50, max_shops=3)
    )

    async def sink(events: Sequence[Any]) -> None:
        pass

    runtime = Runtime.create(settings, sink, sink)
    store, real = FakeStore(), runtime.store
    runtime.store = store  # type: ignore[assignment]
    runtime.reader = FloorReader(store, runtime.policies)  # type: ignore[arg-type]
    for index in range(10_000):
        store.vectors[("s1", f"s1:flood{index:05}")] = vector(
            consultations=1, replied=1, first_response_ms=2_000
        )
        store.hist[("s1", f"s1:flood{index:05}")] = {"1": 1, "sum": 2_000}
    store.vectors[("s1", "s1:zz_real")] = vector(consultations=7, replied=7, first_response_ms=7_000)
    store.vectors[("s1", SHOP_LEVEL)] = vector()
    for index in range(10):  # new shop ids flood too
        store.vectors[(f"x{index}", "x:a")] = vector(consultations=1)

    asyncio.run(runtime.lead(NOW))
    asyncio.run(real.close())

    registry = CollectorRegistry()
    registry.register(runtime.collector)  # the floor's families, as prometheus_client reads them
    consultations = series(registry, "kefu_consultations")
    agents = {labels["agent"] for labels in consultations if labels["shop"] == "s1"}
    assert len(agents) == 50 and OVERFLOW_AGENT in agents and "s1:zz_real" in agents
    assert {labels["shop"] for labels in consultations} == {"s1", "x0", "x1"}  # s1 configured + 2
    assert len(consultations) <= 3 * 50 * len(WINDOWS)
    assert registry.get_sample_value("kefu_unexported_shops") == 8
    # Nothing is lost: the exported series add up to all 10,007 consultations of s1.
    total = sum(
        registry.get_sample_value("kefu_consultations", {"shop": "s1", "agent": agent, "window": "today"})
        or 0
        for agent in agents
    )
    assert total == 10_007
    other = {"shop": "s1", "agent": OVERFLOW_AGENT}
    assert registry.get_sample_value("kefu_first_response_avg_seconds", other | {"window": "5m"}) == 2.0
    # 49 agents keep their series: s1:zz_real (configured) and 48 flood ids; 9,952 are folded.
    assert registry.get_sample_value("kefu_first_response_seconds_count", other) == 10_000 - 48
    assert registry.get_sample_value("kefu_first_response_seconds_sum", other) == (10_000 - 48) * 2.0
    assert len(series(registry, "kefu_first_response_seconds_count")) == 49  # s1:zz_real has none
    # Waits of agents folded into `_other` are still pruned.
    assert ("s1", "s1:flood09999") in store.pruned


def test_the_collector_exports_unexported_shops_even_when_empty() -> None:
    registry = CollectorRegistry()
    collector = FloorCollector()
    registry.register(collector)
    assert registry.get_sample_value("kefu_unexported_shops") == 0
    collector.snapshot = FloorSnapshot(unexported_shops=4)
    assert registry.get_sample_value("kefu_unexported_shops") == 4
