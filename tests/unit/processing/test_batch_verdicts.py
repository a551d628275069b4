"""A batch's verdicts are made once and its records counted once, whatever its retries meet
on the in-memory store. The same scenarios run on real Redis in
tests/integration/test_retry_edges.py."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import TimeoutError as RedisTimeoutError

from agents.core.engine import Horizon
from agents.core.policy import PolicyBook
from agents.store.memory import MemoryPartitionStore
from config.settings import Settings, settings_from_yaml
from streams.wire.deadletter import DeadLetter
from streams.wire.records import Record
from tests.kafka_records import simulated
from tests.retry_faults import RETRY_GAP_MS, Fault, FaultyCommits, SteppedClock, counted, message, processor

NOW = 1_764_000_000_000
TOPICS = ("c.messages", "c.orders")
MESSAGES = TOPICS[0]
MALFORMED = Record(MESSAGES, 0, 10_000, b"s1:tb_x", b"{not json")
RECORDS = [*simulated(1500, NOW, 4, TOPICS), MALFORMED]


def run(records: list[Record], now_ms: int, faults: list[Fault]) -> tuple[Any, ...]:
    """`records` as one batch through process_until_done: report, counters, letters, store."""
    clock, letters, memory = SteppedClock(now_ms), list[DeadLetter](), MemoryPartitionStore()
    store = FaultyCommits(memory, clock, faults)
    worker = processor(store, clock, TOPICS, letters)
    report = asyncio.run(worker.process_until_done(records))
    assert not store.faults, "every fault was met"
    return report, counted(worker), letters, memory, worker.metrics.redis_errors._value.get()


def test_a_future_ts_record_stays_rejected_when_the_retry_comes_10_s_later() -> None:
    """305 s ahead: rejected at the first attempt's clock (tolerance 300 s), acceptable at the
    retry's. It was dead-lettered, so applying it too would count it twice."""
    future = message(MESSAGES, 0, 0, "tb_future", NOW + 305_000)
    present = message(MESSAGES, 0, 1, "tb_now", NOW - 1_000)
    report, counts, letters, memory, errors = run([future, present], NOW, [Fault.NOT_SENT])
    assert errors == 1 and report.outcomes == {(MESSAGES, "rejected"): 1, (MESSAGES, "applied"): 1}
    assert counts == {
        ("kefu_events_total", "rejected", MESSAGES): 1,
        ("kefu_events_total", "applied", MESSAGES): 1,
        ("kefu_events_rejected_total", "future_ts"): 1,
    }
    assert {(letter.offset, letter.reason) for letter in letters} == {(0, "future_ts")}
    assert not [key for key in memory.buyer_states if "tb_future" in key], "the rejected event was applied"


def test_an_event_on_the_horizon_keeps_its_verdict_when_the_retry_crosses_midnight() -> None:
    """The batch's `now` is 5 s before local midnight; the retry's is after it, where the 28d
    window has moved on a day and the event would be `late`."""
    policy = PolicyBook(Settings())("s1")
    midnight = policy.calendar.day_start_ms(policy.calendar.day(NOW) + 1)
    now = midnight - 5_000
    oldest_open_ms = Horizon.at(policy, now).cutoff_ms
    assert Horizon.at(policy, now + RETRY_GAP_MS).cutoff_ms > oldest_open_ms + 60_000
    event = message(MESSAGES, 0, 0, "tb_old", oldest_open_ms + 60_000)
    report, counts, _, memory, _ = run([event], now, [Fault.NOT_SENT])
    assert report.outcomes == {(MESSAGES, "applied"): 1}
    assert counts == {("kefu_events_total", "applied", MESSAGES): 1}
    assert [key for key in memory.buyer_states if "tb_old" in key]


def reference() -> tuple[Any, ...]:
    return run(RECORDS, NOW, [])


def test_a_commit_whose_reply_is_lost_is_counted_once() -> None:
    ref_report, ref_counts, ref_letters, ref_store, _ = reference()
    assert ref_counts[("kefu_events_rejected_total", "invalid_json")] >= 1 and len(ref_counts) > 2
    report, counts, letters, memory, errors = run(RECORDS, NOW, [Fault.LOST_REPLY])
    assert errors == 1
    assert counts == ref_counts
    assert report.outcomes == ref_report.outcomes and report.rejected == ref_report.rejected
    assert report.skipped_already_applied == 0
    assert letters == ref_letters, "the retry skips what landed: no dead letter again"
    assert (memory.offsets, memory.buyer_states) == (ref_store.offsets, ref_store.buyer_states)


def test_a_second_timeout_after_the_landed_commit_was_recognised_still_counts_it_once() -> None:
    """The retry sees the lost commit landed and has nothing left to commit, and its own (empty)
    commit times out as well: the third attempt must count the first one's records, once."""
    _, ref_counts, _, _, _ = reference()
    _, counts, _, _, errors = run(RECORDS, NOW, [Fault.LOST_REPLY, Fault.LOST_REPLY])
    assert errors == 2 and counts == ref_counts


def test_a_commit_that_never_reached_the_store_is_counted_once() -> None:
    ref_report, ref_counts, _, ref_store, _ = reference()
    report, counts, _, memory, errors = run(RECORDS, NOW, [Fault.NOT_SENT, Fault.NOT_SENT])
    assert errors == 2 and counts == ref_counts and report.outcomes == ref_report.outcomes
    assert (memory.offsets, memory.buyer_states) == (ref_store.offsets, ref_store.buyer_states)


class _OtherWorkerFirst:
    """The memory store, where another worker commits `rival`'s records before this worker's
    first commit (so this worker's share of that partition conflicts), and this worker's commits
    numbered in `timeouts` (1 = the first) time out before they reach the store."""

    def __init__(self, rival: list[Record], timeouts: set[int]) -> None:
        self.memory, self.rival, self.timeouts, self.commits = MemoryPartitionStore(), rival, timeouts, 0
        self.clock = SteppedClock(NOW)
        self.other = processor(self.memory, self.clock, TOPICS, [])

    async def load(self, buyers: Any, topics: Any) -> Any:
        return await self.memory.load(buyers, topics)

    async def catch_up(self, snapshots: Any) -> None:
        await self.memory.catch_up(snapshots)

    async def drain(self, partitions: Any) -> int:
        return await self.memory.drain(partitions)

    async def landed(self, partition: int, commit_id: str) -> bool:
        return await self.memory.landed(partition, commit_id)

    async def commit(self, commits: Any) -> set[int]:
        self.commits += 1
        if self.commits == 1:
            await self.other.process(self.rival)
        if self.commits in self.timeouts:
            raise RedisTimeoutError("Timeout reading from socket")
        return await self.memory.commit(commits)


def _two_partitions() -> list[Record]:
    return [message(MESSAGES, p, i, f"tb_{p}_{i}", NOW - 5_000 + i) for p in (0, 1) for i in range(3)]


def test_a_partition_committed_before_a_failed_retry_is_counted_once() -> None:
    """Partition 0 commits in the first attempt; partition 1 conflicts (another worker applied
    its first record), and its second attempt times out. The batch's retry leaves partition 0
    alone: its records are counted as applied once, not lost as `skipped`."""
    records = _two_partitions()
    store = _OtherWorkerFirst([records[3]], timeouts={2})
    worker = processor(store, store.clock, TOPICS, [])
    report = asyncio.run(worker.process_until_done(records))
    assert report.outcomes == {(MESSAGES, "applied"): 5} and report.skipped_already_applied == 1
    assert counted(worker) == {("kefu_events_total", "applied", MESSAGES): 5}
    assert counted(store.other) == {("kefu_events_total", "applied", MESSAGES): 1}
    assert {p: store.memory.offsets[(MESSAGES, p)] for p in (0, 1)} == {0: 2, 1: 2}


def test_a_batch_that_gives_up_on_conflicts_counts_its_committed_partitions_once() -> None:
    """The conflict retries run out (CommitConflict, retried as the whole batch): the partition
    that committed in the first attempt is counted once, by the attempt that ends the batch."""
    records = _two_partitions()
    store = _OtherWorkerFirst([records[3]], timeouts=set())
    worker = processor(store, store.clock, TOPICS, [])
    worker.max_conflict_retries = 1  # the first attempt's conflict on partition 1 gives up
    report = asyncio.run(worker.process_until_done(records))
    assert report.outcomes == {(MESSAGES, "applied"): 5}
    assert counted(worker) == {("kefu_events_total", "applied", MESSAGES): 5}
    assert worker.metrics.redis_errors._value.get() == 1


class _RivalAtFirstCommit(MemoryPartitionStore):
    """This worker's first commit meets another worker that took the partition over (a
    rebalance during the retry's backoff): `landed` first, then the rival runs, then the reply
    is lost either way."""

    def __init__(self, land_first: bool, rival_records: list[Record]) -> None:
        super().__init__()
        self.land_first, self.rival_records, self.commits = land_first, rival_records, 0
        self.rival = processor(self, SteppedClock(NOW), TOPICS, [])

    async def commit(self, commits: Any) -> set[int]:
        self.commits += 1
        if self.commits == 1:
            if self.land_first:
                await super().commit(commits)
            await self.rival.process(self.rival_records)
            raise RedisTimeoutError("Timeout reading from socket")
        return await super().commit(commits)


def _race(land_first: bool, mine: list[Record], rivals: list[Record]) -> tuple[float, float]:
    """Applied events as this worker and the rival count them."""
    store = _RivalAtFirstCommit(land_first, rivals)
    worker = processor(store, SteppedClock(NOW), TOPICS, [])
    asyncio.run(worker.process_until_done(mine))
    applied = ("kefu_events_total", "applied", MESSAGES)
    return counted(worker).get(applied, 0), counted(store.rival).get(applied, 0)


def test_a_landed_commit_is_counted_when_another_worker_committed_after_it() -> None:
    """Offsets 0-2 land but the reply is lost; the partition's new owner applies 3-5. The
    offsets (5) are not what this commit wrote (2), yet it landed: this worker counts 0-2."""
    records = [message(MESSAGES, 0, i, f"tb_{i}", NOW - 5_000 + i) for i in range(6)]
    assert _race(True, records[:3], records[3:]) == (3, 3)


def test_a_commit_that_never_landed_is_not_counted_when_another_worker_wrote_the_same_offsets() -> None:
    """This worker's commit of 0-4 never reaches the store; the new owner commits 0-4 itself.
    The offsets are what this commit would have written, but the rival's commit counted them."""
    records = [message(MESSAGES, 0, i, f"tb_{i}", NOW - 5_000 + i) for i in range(5)]
    assert _race(False, records, records) == (0, 5)


class _LostReplyThenFailedCheck(MemoryPartitionStore):
    """The first commit lands on both partitions and its reply is lost; the retry's second
    `landed` question (partition 1's) times out, after partition 0's was answered."""

    def __init__(self) -> None:
        super().__init__()
        self.commits, self.questions = 0, 0

    async def commit(self, commits: Any) -> set[int]:
        self.commits += 1
        moved = await super().commit(commits)
        if self.commits == 1:
            raise RedisTimeoutError("Timeout reading from socket")
        return moved

    async def landed(self, partition: int, commit_id: str) -> bool:
        self.questions += 1
        if self.questions == 2:
            raise RedisTimeoutError("Timeout reading from socket")
        return await super().landed(partition, commit_id)


def test_a_landed_commit_is_counted_once_when_checking_the_next_one_fails() -> None:
    """Partition 0's commit is settled as landed, then the check of partition 1's fails: the
    next attempt asks about partition 1 only, so partition 0's records count once."""
    records = _two_partitions()
    store = _LostReplyThenFailedCheck()
    worker = processor(store, SteppedClock(NOW), TOPICS, [])
    report = asyncio.run(worker.process_until_done(records))
    assert report.outcomes == {(MESSAGES, "applied"): 6} and report.skipped_already_applied == 0
    assert counted(worker) == {("kefu_events_total", "applied", MESSAGES): 6}


def test_a_buyer_is_kept_an_attribution_window_longer_for_a_late_order() -> None:
    """Pruning keeps consultations an attribution window before the cutoff (horizon.py), so a
    late order still finds them; the state itself expired first, and the order went silent
    where rebuild credited the inquiry (found reviewing c4fab1b)."""
    from agents.core.buyer import BuyerState
    from config.calendar import MS_PER_DAY

    worker = processor(MemoryPartitionStore(), SteppedClock(NOW), TOPICS, [])
    yaml = "defaults: {attribution: {window: 26d}}"
    policy = PolicyBook(settings_from_yaml(yaml))("s1")
    assert worker._buyer_ttl_ms(BuyerState(), policy, NOW) == (29 + 7 + 26) * MS_PER_DAY


def test_a_buyer_with_an_order_never_paid_is_kept_until_it_can_no_longer_be_paid() -> None:
    """The state's TTL (29 days and the after-sale look-back from the buyer's last write) ran out
    before an unpaid order's payment could come (a presale's balance, weeks later), and the
    payment then counted as a new order. It now lasts as long as pruning keeps the order."""
    from agents.core.buyer import UNPAID_KEPT_DAYS, BuyerState, OrderState
    from config.calendar import MS_PER_DAY

    worker = processor(MemoryPartitionStore(), SteppedClock(NOW), TOPICS, [])
    policy = PolicyBook(Settings())("s1")
    quiet = BuyerState(orders=[OrderState("T1", created=NOW - MS_PER_DAY, paid=NOW - MS_PER_DAY)])
    waiting = BuyerState(orders=[OrderState("T1", created=NOW - MS_PER_DAY)])
    assert worker._buyer_ttl_ms(quiet, policy, NOW) == (29 + 7) * MS_PER_DAY
    # From its creation: 60 days, then as long as a payment stamped by then may still arrive
    # (the 28d window and the after-sale look-back), and a day to spare.
    assert worker._buyer_ttl_ms(waiting, policy, NOW) == (UNPAID_KEPT_DAYS + 28 + 7) * MS_PER_DAY
