"""The core against a deliberately simple reference model, on random conversations.

The reference reads metrics.md literally: consultations by (agent, day) from the first
buyer message or transfer, first reply = earliest non-auto reply at or after the start,
waits by a plain scan. No projection, no diffs, no batching, no dedup machinery.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from config.calendar import calendar_for
from streams.contract.events import Event, Message, Transfer
from tests.builders import DAY0, Ledger

AGENTS = ["s1:a", "s1:b", "s1:c"]
BUYERS = ["b1", "b2"]
CAL = calendar_for("Asia/Shanghai")
WAIT_LIMIT = 24 * 3_600_000


@st.composite
def conversations(draw: st.DrawFn) -> list[Event]:
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["buyer", "agent", "auto", "transfer", "dup"]),
                st.sampled_from(BUYERS),
                st.sampled_from(AGENTS),
                st.sampled_from(AGENTS),
                st.integers(0, 4 * 3_600_000),
            ),
            min_size=1,
            max_size=40,
        )
    )
    ts = DAY0 + 20 * 3_600_000  # 20:00, so conversations cross midnight
    events: list[Event] = []
    for n, (kind, buyer, agent, other, gap) in enumerate(steps):
        ts += gap
        if kind == "dup" and events:
            events.append(events[draw(st.integers(0, len(events) - 1))])
        elif kind == "transfer":
            events.append(Transfer(f"e{n}", "s1", buyer, ts, agent, other))
        else:
            events.append(
                Message(
                    f"e{n}", "s1", buyer, ts, agent, "buyer" if kind == "buyer" else "agent", kind == "auto"
                )
            )
    return events


def reference(events: list[Event]) -> tuple[dict[tuple[str, int], list[int]], dict[tuple[str, str], int]]:
    """(agent, day) -> [consultations, replied, first_response_ms, waits_ended, wait_ms]; open waits."""
    seen: set[str] = set()
    unique = [e for e in events if not (e.event_id in seen or seen.add(e.event_id))]  # type: ignore[func-returns-value]
    # (buyer, agent, day) -> (start ts, position of the event that started it)
    starts: dict[tuple[str, str, int], tuple[int, int]] = {}
    for position, e in enumerate(unique):
        if isinstance(e, Message) and e.sender == "buyer":
            starts.setdefault((e.buyer_id, e.agent_id, CAL.day(e.ts)), (e.ts, position))
        elif isinstance(e, Transfer):
            starts.setdefault((e.buyer_id, e.to_agent, CAL.day(e.ts)), (e.ts, position))
    out: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * 5)
    for (buyer, agent, day), (start, started_at) in starts.items():
        row = out[(agent, day)]
        row[0] += 1
        # "At or after the start" in event time; in a tie to the millisecond, a reply that
        # arrived before the buyer's first message answered nothing (one buyer's messages are
        # in order, events.md), so it does not count.
        replies = [
            e.ts
            for e in unique[started_at + 1 :]
            if isinstance(e, Message)
            and e.buyer_id == buyer
            and e.agent_id == agent
            and e.sender == "agent"
            and not e.auto_reply
            and e.ts >= start
        ]
        if replies:
            row[1] += 1
            row[2] += min(replies) - start
    open_waits: dict[tuple[str, str], int] = {}
    for e in unique:
        for key in [k for k, s in open_waits.items() if k[0] == e.buyer_id and e.ts - s > WAIT_LIMIT]:
            del open_waits[key]
        if isinstance(e, Transfer):
            moved = open_waits.pop((e.buyer_id, e.from_agent), None)
            if moved is not None:
                target = (e.buyer_id, e.to_agent)
                open_waits[target] = min(moved, open_waits.get(target, moved))
        elif e.sender == "buyer":
            open_waits.setdefault((e.buyer_id, e.agent_id), e.ts)
        elif not e.auto_reply and (e.buyer_id, e.agent_id) in open_waits:
            start = open_waits.pop((e.buyer_id, e.agent_id))
            out[(e.agent_id, CAL.day(start))][3] += 1
            out[(e.agent_id, CAL.day(start))][4] += e.ts - start
    return {k: v for k, v in out.items() if any(v)}, open_waits


@given(conversations(), st.integers(1, 7))
def test_core_matches_the_reference_model(events: list[Event], batch: int) -> None:
    ledger = Ledger(now_ms=DAY0 + 4 * 86_400_000)
    for i in range(0, len(events), batch):
        ledger.apply_batch(events[i : i + batch])
    expected, expected_waits = reference(events)
    got = {(agent, day): v[:5] for (_, agent, day), v in ledger.by_day.items() if any(v[:5])}
    assert got == expected
    got_waits = {
        (buyer, agent): start for (_, agent), w in ledger.waits.items() for buyer, start in w.items()
    }
    assert got_waits == expected_waits
