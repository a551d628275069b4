"""The drill-down rows against their numbers, on random event sequences (hypothesis): after every
step, the rows the engine's changes leave (applied like a details hash) equal the rows written
from scratch for the state, and per agent and day each kind's row count is `explained_count` of
the summed counter vectors. Across attribution rules, judging moments, refund deduction, windows,
an after-sale agent, transfers, ratings, cancels, refunds, and `now` jumping past the cutoff."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.core.buyer import BuyerState
from agents.core.details import (
    DetailKind,
    RowKey,
    decode_consultation,
    explained_count,
    matches,
    row_changes,
)
from agents.core.engine import Horizon, apply_buyer_events
from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import SHOP_LEVEL, WIDTH, Projection, project
from streams.contract.events import Event, Message, Order, Rating, Transfer
from tests.builders import DAY0
from tests.builders import settings as settings_from

H = 3_600_000
AGENTS = ["s1:a", "s1:b", "s1:c"]  # s1:c is aftersale in some configs
ORDER_IDS = ["T1", "T2", "T3"]
OrderStatus = Literal["created", "paid", "cancelled", "refunded"]
STATUSES: tuple[OrderStatus, ...] = ("created", "paid", "cancelled", "refunded")


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[int, list[Event]]]:
    n = draw(st.integers(1, 20))
    out: list[tuple[int, list[Event]]] = []
    base = DAY0 + 9 * H
    now = base + 40 * H
    for i in range(n):
        batch: list[Event] = []
        for j in range(draw(st.integers(1, 3))):
            ts = base + draw(st.integers(0, 72)) * H // 12
            kind = draw(st.sampled_from(["buyer", "agent", "transfer", "rating", "order"]))
            agent = draw(st.sampled_from(AGENTS))
            eid = f"e{i}-{j}"
            if kind == "buyer":
                batch.append(Message(eid, "s1", "b1", ts, agent, "buyer"))
            elif kind == "agent":
                batch.append(Message(eid, "s1", "b1", ts, agent, "agent"))
            elif kind == "transfer":
                batch.append(Transfer(eid, "s1", "b1", ts, agent, draw(st.sampled_from(AGENTS))))
            elif kind == "rating":
                batch.append(Rating(eid, "s1", "b1", ts, agent, draw(st.integers(1, 5))))
            else:
                status: OrderStatus = draw(st.sampled_from(STATUSES))
                amount = draw(st.sampled_from([None, 1000, 2500]))
                if status != "refunded" and amount is None:
                    amount = 1000
                batch.append(Order(eid, "s1", "b1", ts, draw(st.sampled_from(ORDER_IDS)), status, amount))
        if draw(st.integers(0, 5)) == 0:
            now += draw(st.sampled_from([H, 24 * H, 26 * 24 * H, 27 * 24 * H]))
        out.append((now, batch))
    return out


CONFIGS = [
    f"defaults: {{after_sale_days: 1, attribution: {{rule: {rule}, window: {window}, judge: {judge}, "
    f"deduct_refunds: {deduct}}}}}\nshops: {{s1: {{agents: {{'s1:c': {{group: aftersale}}}}}}}}"
    for rule in ("first", "last", "all")
    for judge in ("created", "paid", "created_first")
    for deduct in ("true", "false")
    for window in ("same_day", "24h")
]


def full_rows(state: BuyerState, policy: ShopPolicy, horizon: Horizon) -> dict[RowKey, bytes]:
    after = project(state, policy, horizon.cutoff_day, horizon.cutoff_ms)
    rows = row_changes(
        "b1", state, Projection({}, {}, set()), after, list(after.cohorts), policy, horizon.cutoff_ms
    )
    return {k: v for k, v in rows.items() if v is not None}


KINDS = [k for k in DetailKind if k not in (DetailKind.REFUNDED,)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=st.sampled_from(CONFIGS), plan=steps())
def test_rows_follow_the_state_and_count_what_they_explain(
    config: str, plan: list[tuple[int, list[Event]]]
) -> None:
    policy = PolicyBook(settings_from(config))("s1")
    cal = policy.calendar
    target0 = policy.response_targets_ms[0]
    state = BuyerState()
    stored: dict[RowKey, bytes] = {}
    sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * WIDTH)
    for step, (now, batch) in enumerate(plan):
        horizon = Horizon.at(policy, now)
        delta = apply_buyer_events(state, batch, policy, horizon)
        for key, row in delta.rows.items():
            if row is None:
                stored.pop(key, None)
            else:
                stored[key] = row
        for (agent, start), vec in delta.cohorts.items():
            s = sums[(agent, cal.day(start))]
            for i in range(WIDTH):
                s[i] += vec[i]
        # 1) rows in the open window equal rows from scratch
        expected = full_rows(state.copy(), policy, horizon)
        live = {k: v for k, v in stored.items() if k.day >= horizon.cutoff_day}
        if live != expected:
            diff = {
                k: (
                    live.get(k) and (decode_consultation(live[k]) if k.agent else live[k]),
                    expected.get(k) and (decode_consultation(expected[k]) if k.agent else expected[k]),
                )
                for k in live.keys() | expected.keys()
                if live.get(k) != expected.get(k)
            }
            raise AssertionError(f"step {step}: rows differ from scratch: {diff}")
        # 2) per agent/day: each kind's row count = explained_count of the summed vector
        for (agent, day), vec in sums.items():
            if agent == SHOP_LEVEL:
                n = sum(1 for k in stored if k.agent == SHOP_LEVEL and k.day == day)
                assert n == explained_count(DetailKind.SILENT_ORDERS, vec), (step, day, n, vec)
                continue
            rows = [decode_consultation(v) for k, v in stored.items() if k.agent == agent and k.day == day]
            for kind in KINDS:
                if kind is DetailKind.SILENT_ORDERS:
                    continue
                got = sum(1 for r in rows if matches(kind, r, target0))
                want = explained_count(kind, vec, 0)
                assert got == want, (step, agent, day, kind, got, want, vec, rows)
