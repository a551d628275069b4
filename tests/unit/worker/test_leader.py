"""The leader's duties are fenced by an epoch in Redis: a leader that froze while another took
over writes nothing and sends nothing when it wakes, and nobody is left leading for long."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import TimeoutError as RedisTimeoutError

from agents.core.alerts import AlertEvent
from agents.core.clock import wall_clock_ms
from agents.core.projection import SHOP_LEVEL, WIDTH
from agents.exposure.floor import FloorReader
from agents.worker.runtime import Runtime
from config.settings import settings_from_yaml
from tests.fakes import FakeStore

NOW = 1_764_000_000_000
SETTINGS = settings_from_yaml("shops:\n  s1:\n    alert_threshold_seconds: 10\n")


def leader(store: FakeStore, sent: list[AlertEvent]) -> Runtime:
    async def sink(events: Sequence[AlertEvent]) -> None:
        sent.extend(events)

    runtime = Runtime.create(SETTINGS, sink, sink)  # type: ignore[arg-type]
    asyncio.run(runtime.store.close())  # the real client is never used here
    runtime.store = store  # type: ignore[assignment]
    runtime.reader = FloorReader(store, runtime.policies)
    return runtime


def a_buyer_waits(store: FakeStore, since_ms: int) -> None:
    store.vectors[("s1", "s1:a")] = [1] + [0] * (WIDTH - 1)
    store.vectors[("s1", SHOP_LEVEL)] = [0] * WIDTH
    store.waits[("s1", "s1:a")] = (1, since_ms, "tb_1")


def test_a_frozen_leader_that_wakes_after_a_takeover_repeats_nothing() -> None:
    store, sent_a, sent_b = FakeStore(), list[AlertEvent](), list[AlertEvent]()
    a_buyer_waits(store, NOW - 30_000)
    a, b = leader(store, sent_a), leader(store, sent_b)
    asyncio.run(a.lead(NOW))
    assert [(e.alert, e.state) for e in sent_a] == [("BuyerWaitingTooLong", "firing")]
    # A freezes; B is elected and leads. The wait ends meanwhile.
    store.waits[("s1", "s1:a")] = (0, None, None)
    asyncio.run(b.lead(NOW + 60_000))
    assert [(e.state, e.alert_id) for e in sent_b] == [("resolved", sent_a[0].alert_id)]
    # A wakes, still believing it leads, with a floor read before the reply: nothing is sent.
    store.waits[("s1", "s1:a")] = (1, NOW - 30_000, "tb_1")
    asyncio.run(a.lead(NOW + 61_000))
    assert len(sent_a) == 1 and a.deposed and a.collector.snapshot.floors == []
    assert b.collector.snapshot.floors, "the rightful leader keeps exporting"


def test_a_deposed_leader_leads_again_once_nobody_else_does() -> None:
    store, sent = FakeStore(), list[AlertEvent]()
    a_buyer_waits(store, NOW - 1_000)
    a, b = leader(store, sent), leader(store, sent)
    asyncio.run(a.lead(NOW))
    asyncio.run(b.lead(NOW + 1_000))
    asyncio.run(a.lead(NOW + 2_000))
    assert a.deposed
    store.leader_seen = None  # B stopped leading: its heartbeat ran out
    asyncio.run(a.lead(NOW + 8_000))
    assert not a.deposed and a.leader.epoch == 3 and a.collector.snapshot.floors


def test_following_forgets_the_epoch() -> None:
    store = FakeStore()
    a_buyer_waits(store, NOW)
    a = leader(store, [])
    asyncio.run(a.lead(NOW))
    assert a.leader.epoch == 1
    a.leader.follow()
    assert a.leader.epoch is None and not a.deposed and a.collector.snapshot.floors == []
    asyncio.run(a.lead(NOW + 1_000))
    assert a.leader.epoch == 2


def test_a_set_read_under_an_old_epoch_is_not_stored_under_a_newer_one() -> None:
    """A check sends its events (Kafka, slow in a rebalance) while this worker stops leading,
    another stores its set, and this worker is elected again: the check's set, read under the
    first epoch, must not land on the other leader's under the third (its difference would be
    applied to a set it was not computed from), and the new leadership goes on."""
    store, sent = FakeStore(), list[AlertEvent]()
    x, y = (("BuyerWaitingTooLong", "s1", f"s1:{agent}") for agent in "xy")
    z = ("BuyerWaitingTooLong", "s2", "s2:z")  # outside the check's scope
    released, sending = asyncio.Event(), asyncio.Event()

    async def slow_sink(events: Sequence[AlertEvent]) -> None:
        sent.extend(events)
        sending.set()
        await released.wait()

    runtime = leader(store, sent)
    runtime.alert_sink = slow_sink  # type: ignore[assignment]
    first = runtime.leader

    async def race() -> None:
        first.epoch = await store.take_leadership()
        store.alerts = {x: 1, z: 3}
        _, before = await store.firing_alerts()
        check = asyncio.create_task(first.publish_alerts([], before, NOW, {"s1"}))  # x vanished
        await sending.wait()
        first.follow()
        assert await store.store_firing_alerts(await store.take_leadership(), {y: 2, z: 3})
        first.epoch = await store.take_leadership()
        released.set()
        await check

    asyncio.run(race())
    assert [(e.agent_id, e.state) for e in sent] == [("s1:x", "resolved")]
    assert store.alerts == {y: 2, z: 3}, "the other leader's set was overwritten"
    assert not first.deposed and first.epoch == 3


BIG_SHOP_AGENTS = 1_500  # three times processing.max_agents_per_shop (500)


def many_buyers_wait(store: FakeStore, agents: int, since_ms: int) -> list[str]:
    names = [f"s1:a{i:05d}" for i in range(agents)]
    store.vectors[("s1", SHOP_LEVEL)] = [0] * WIDTH
    for index, agent in enumerate(names):
        store.vectors[("s1", agent)] = [1] + [0] * (WIDTH - 1)
        store.waits[("s1", agent)] = (1, since_ms, f"tb_{index}")
    return names


def test_every_agent_of_a_shop_past_the_label_cap_gets_its_own_alert_episode() -> None:
    """The `_other` fold bounds /metrics' labels; `kefu.alerts` carries every agent,
    one `firing` per episode however many rounds it lasts, and later its `resolved`."""
    store, sent = FakeStore(), list[AlertEvent]()
    agents = many_buyers_wait(store, BIG_SHOP_AGENTS, NOW - 30_000)
    runtime = leader(store, sent)
    for second in range(3):
        asyncio.run(runtime.lead(NOW + second * 1_000))
    firing = [e for e in sent if e.alert == "BuyerWaitingTooLong"]
    assert sorted(e.agent_id for e in firing) == agents, "one firing per agent, none as _other"
    assert all(e.state == "firing" for e in firing)
    assert len({e.alert_id for e in firing}) == BIG_SHOP_AGENTS
    # /metrics still folds: 499 agents of their own and `_other`.
    [floor] = runtime.collector.snapshot.floors
    assert len(floor.agents) == 500 and floor.agents[-1].agent == "_other"
    exposition = runtime.exposition().decode()
    assert 'kefu_waiting_buyers{agent="_other",shop="s1"} 1001.0' in exposition
    assert f'agent="{agents[-1]}"' not in exposition

    for agent in agents:
        store.waits[("s1", agent)] = (0, None, None)  # every wait answered
    sent.clear()
    asyncio.run(runtime.lead(NOW + 3_000))
    asyncio.run(runtime.lead(NOW + 4_000))
    assert sorted((e.state, e.alert_id) for e in sent) == sorted(("resolved", e.alert_id) for e in firing)


def shop_waits(store: FakeStore, shop: str, since_ms: int) -> None:
    store.vectors[(shop, f"{shop}:a")] = [1] + [0] * (WIDTH - 1)
    store.vectors[(shop, SHOP_LEVEL)] = [0] * WIDTH
    store.waits[(shop, f"{shop}:a")] = (1, since_ms, "tb_1")


def test_a_check_between_rounds_compares_its_shop_alone() -> None:
    """A crossing in s1 fires s1's alert; s2's, firing, is left alone though its floor was not read."""
    store, sent = FakeStore(), list[AlertEvent]()
    shop_waits(store, "s1", NOW - 30_000)
    runtime = leader(store, sent)
    asyncio.run(runtime.lead(NOW - 25_000))  # s1's wait is 5 s old: nothing fires
    store.alerts[("BuyerWaitingTooLong", "s2", "s2:a")] = NOW - 60_000  # fired by an earlier round
    asyncio.run(runtime.leader.check_crossings(["s1"], NOW))
    assert [(e.shop_id, e.state, e.ts) for e in sent] == [("s1", "firing", NOW)]
    assert set(store.alerts) == {("BuyerWaitingTooLong", "s1", "s1:a"), ("BuyerWaitingTooLong", "s2", "s2:a")}


def test_a_round_that_read_its_floors_before_a_check_leaves_the_checked_shop_to_it() -> None:
    """The round read s1's floor at NOW, before the wait crossed; a check fired it since. The
    round's older floor must not resolve it (nor the next round repeat it)."""
    store, sent = FakeStore(), list[AlertEvent]()
    a_buyer_waits(store, NOW - 9_500)  # threshold 10 s: crosses at NOW + 501
    runtime = leader(store, sent)
    asyncio.run(runtime.lead(NOW - 1_000))
    asyncio.run(runtime.leader.check_crossings(["s1"], NOW + 600))
    asyncio.run(runtime.lead(NOW))  # its floor is older than the check's
    asyncio.run(runtime.lead(NOW + 1_000))
    assert [(e.state, e.ts) for e in sent] == [("firing", NOW + 600)]


def test_a_deposed_leaders_check_sends_nothing() -> None:
    store, sent_a, sent_b = FakeStore(), list[AlertEvent](), list[AlertEvent]()
    a_buyer_waits(store, NOW - 9_500)
    a, b = leader(store, sent_a), leader(store, sent_b)
    asyncio.run(a.lead(NOW - 1_000))
    asyncio.run(b.lead(NOW))  # B took over while A froze
    asyncio.run(a.leader.check_crossings(["s1"], NOW + 600))
    assert sent_a == [] and a.deposed


async def until_sent(sent: list[AlertEvent], count: int) -> None:
    for _ in range(500):  # a bound for a stuck test, not a timing: the check runs long before
        if len(sent) >= count:
            return
        await asyncio.sleep(0.01)


def test_a_live_round_plans_a_check_at_the_crossing_that_fires_there_and_not_before() -> None:
    store, sent = FakeStore(), list[AlertEvent]()
    started = wall_clock_ms() - 9_700  # threshold 10 s: crosses in about 0.3 s
    a_buyer_waits(store, started)
    runtime = leader(store, sent)

    async def live() -> None:
        await runtime.lead()  # no round after this one: only the planned check can fire
        assert sent == [] and runtime.leader.crossings == {"s1": started + 10_001}
        await until_sent(sent, 1)

    asyncio.run(live())
    [fired] = sent
    assert fired.state == "firing" and fired.ts >= started + 10_001
    assert runtime.leader.crossings == {}, "nothing more to plan while it fires"


def test_the_watch_resolves_a_firing_wait_that_a_reply_ended() -> None:
    store, sent = FakeStore(), list[AlertEvent]()
    a_buyer_waits(store, wall_clock_ms() - 30_000)
    runtime = leader(store, sent)

    async def live() -> None:
        await runtime.lead()
        await runtime.leader.watch_waits()  # still waiting: nothing to do
        assert [e.state for e in sent] == ["firing"]
        store.waits[("s1", "s1:a")] = (0, None, None)  # answered
        await runtime.leader.watch_waits()

    asyncio.run(live())
    assert [(e.state, e.alert_id) for e in sent] == [
        ("firing", sent[0].alert_id),
        ("resolved", sent[0].alert_id),
    ]


class FailingSink:
    """An alert sink (Kafka) that fails its first `failures` sends, and records the others."""

    def __init__(self, failures: int) -> None:
        self.failures, self.sent = failures, list[AlertEvent]()

    async def __call__(self, events: Sequence[AlertEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Kafka went away")
        self.sent.extend(events)


def first_send_fails(store: FakeStore) -> tuple[Runtime, FailingSink]:
    """A leader whose first round stores a new episode (a buyer waiting 30 s) and whose send of
    it fails (Kafka away)."""
    sink = FailingSink(failures=1)
    a_buyer_waits(store, NOW - 30_000)
    runtime = leader(store, [])
    runtime.alert_sink = sink  # type: ignore[assignment]
    with contextlib.suppress(ConnectionError):
        asyncio.run(runtime.lead(NOW))
    return runtime, sink


def test_an_episode_whose_send_failed_is_sent_again_under_its_own_id_and_resolves_under_it() -> None:
    """metrics.md: the firing and the resolved event of one episode share `alert_id`. A send that
    fails after the set was stored is sent again by the next round, not fired anew."""
    store = FakeStore()
    runtime, sink = first_send_fails(store)
    asyncio.run(runtime.lead(NOW + 1_000))
    asyncio.run(runtime.lead(NOW + 2_000))
    store.waits[("s1", "s1:a")] = (0, None, None)  # answered
    asyncio.run(runtime.lead(NOW + 3_000))
    episode = f"BuyerWaitingTooLong/s1/s1:a/{NOW}"
    assert [(e.state, e.alert_id) for e in sink.sent] == [("firing", episode), ("resolved", episode)]
    assert store.unsent == [] and store.alerts == {}


def test_a_new_leader_sends_what_the_old_one_stored_and_never_sent_under_the_same_id() -> None:
    """Leader A stores a new episode and stops before its event leaves (a crash, a slow Kafka
    in a rebalance): B, elected next, sends it under A's id and does not fire the episode again."""
    store, sent_b = FakeStore(), list[AlertEvent]()
    a, sink_a = first_send_fails(store)
    b = leader(store, sent_b)
    a.leader.follow()
    asyncio.run(b.lead(NOW + 500))
    asyncio.run(b.lead(NOW + 1_500))
    assert [(e.state, e.alert_id) for e in sent_b] == [("firing", f"BuyerWaitingTooLong/s1/s1:a/{NOW}")]
    assert sink_a.sent == []


def test_a_leader_whose_alerts_redis_lost_stores_them_again_and_resolves_each_episode_once() -> None:
    """Redis loses `kp:alerts` (FLUSHALL, a restart without persistence): the leader's episodes
    still resolve under their ids, and one still firing does not fire a second time."""
    store, sent = FakeStore(), list[AlertEvent]()
    a_buyer_waits(store, NOW - 30_000)
    store.vectors[("s1", "s1:b")] = [1] + [0] * (WIDTH - 1)
    store.waits[("s1", "s1:b")] = (1, NOW - 20_000, "tb_2")
    runtime = leader(store, sent)
    asyncio.run(runtime.lead(NOW))
    assert sorted(e.agent_id for e in sent if e.state == "firing") == ["s1:a", "s1:b"]
    store.alerts, store.epoch = {}, 0  # lost
    store.waits[("s1", "s1:b")] = (0, None, None)  # b's buyer is answered
    asyncio.run(runtime.lead(NOW + 1_000))
    asyncio.run(runtime.lead(NOW + 2_000))
    assert [(e.agent_id, e.state, e.alert_id) for e in sent[2:]] == [
        ("s1:b", "resolved", f"BuyerWaitingTooLong/s1/s1:b/{NOW}")
    ]
    assert not runtime.leader.deposed and runtime.collector.snapshot.floors
    assert store.alerts == {("BuyerWaitingTooLong", "s1", "s1:a"): NOW}


class FailingStores(FakeStore):
    """Redis times out on the next `failures` stores of the firing set."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def store_firing_alerts(self, *args: Any, **kwargs: Any) -> bool:
        if self.failures:
            self.failures -= 1
            raise RedisTimeoutError("Timeout reading from redis")
        return await super().store_firing_alerts(*args, **kwargs)


def test_a_restore_whose_store_fails_is_tried_again_the_next_round() -> None:
    """Taking the new epoch and storing the set are two calls: a store that failed left the hash
    with this leader's epoch and no alerts, which then read as the set (b never resolved, and a
    fired again under a new id)."""
    store, sent = FailingStores(), list[AlertEvent]()
    a_buyer_waits(store, NOW - 30_000)
    store.vectors[("s1", "s1:b")] = [1] + [0] * (WIDTH - 1)
    store.waits[("s1", "s1:b")] = (1, NOW - 20_000, "tb_2")
    runtime = leader(store, sent)
    asyncio.run(runtime.lead(NOW))
    store.alerts, store.epoch, store.failures = {}, 0, 1  # lost; the restore's store times out
    store.waits[("s1", "s1:b")] = (0, None, None)
    with contextlib.suppress(RedisTimeoutError):
        asyncio.run(runtime.lead(NOW + 1_000))
    asyncio.run(runtime.lead(NOW + 2_000))
    asyncio.run(runtime.lead(NOW + 3_000))
    assert [(e.agent_id, e.state, e.alert_id) for e in sent[2:]] == [
        ("s1:b", "resolved", f"BuyerWaitingTooLong/s1/s1:b/{NOW}")
    ]


def test_events_stored_and_never_sent_survive_redis_losing_the_set() -> None:
    """A send failed after the set was stored with its events, then Redis lost the set: the
    leader stores its own unsent events again with it, and the next round sends them."""
    store = FakeStore()
    runtime, sink = first_send_fails(store)
    store.alerts, store.epoch, store.unsent = {}, 0, []  # lost
    asyncio.run(runtime.lead(NOW + 1_000))
    asyncio.run(runtime.lead(NOW + 2_000))
    assert [(e.state, e.alert_id) for e in sink.sent] == [("firing", f"BuyerWaitingTooLong/s1/s1:a/{NOW}")]
