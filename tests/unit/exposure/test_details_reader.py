"""The drill-down lists through DetailsReader over a fake store: kinds, paging, masking, errors."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
from dataclasses import replace
from datetime import date

import pytest

from agents.core.details import DetailKind, Flag, OrderRef, SilentOrderDetail
from agents.core.policy import PolicyBook
from agents.core.report_range import RangeError
from agents.exposure.details import DetailsQuery, DetailsReader, Position, encode_cursor
from config.calendar import calendar_for
from config.settings import settings_from_yaml
from streams.contract.details import (
    ConsultationRow,
    Details,
    DetailsRequestError,
    SilentOrderRow,
    mask_buyer,
)
from tests.details_samples import FakeDetails, consultation

CAL = calendar_for("Asia/Shanghai")
TODAY = date(2026, 11, 20).toordinal()
NOW = CAL.day_start_ms(TODAY) + 12 * 3_600_000
CONFIG = "shops:\n  s1:\n    alert_threshold_seconds: 20\n    agents: {'s1:A': {name: 小美}, 's1:B': {}}\n"
R, Q, ORD, P, AS, RT, D = (
    Flag.REPLIED,
    Flag.INQUIRY,
    Flag.ORDERED,
    Flag.PAID,
    Flag.ASSISTED,
    Flag.RATED,
    Flag.DISSATISFIED,
)
FROM, TO = "2026-11-15", "2026-11-19"


def at(day: int, seconds: int) -> int:
    return CAL.day_start_ms(day) + seconds * 1000


def reader(store: FakeDetails, config: str = CONFIG) -> DetailsReader:
    return DetailsReader(store, PolicyBook(settings_from_yaml(config)))


def ask(store: FakeDetails, kind: str, **asked: object) -> Details:
    query = DetailsQuery(shop="s1", kind=kind, **{"first": FROM, "last": TO, **asked})  # type: ignore[arg-type]
    return asyncio.run(reader(store).everything(query, NOW))


def paid_order(order_id: str, created: int, fen: int, refund: int = 0, assisted: bool = False) -> OrderRef:
    return OrderRef(order_id, created, created + 60_000, fen, refund, assisted)


def one_of_each() -> FakeDetails:
    """On 2026-11-17, one buyer per situation, A and B alternating; the expected lists below."""
    store, day = FakeDetails(), TODAY - 3
    rows = {
        "unreplied": consultation(at(day, 100)),
        "quick": consultation(at(day, 200), flags=R | Q, response_ms=5_000),
        "slow30": consultation(at(day, 300), flags=R | Q, response_ms=30_000),
        "slow20": consultation(at(day, 400), flags=R, response_ms=20_000),  # not over 20: not slow
        "ordered": consultation(
            at(day, 500),
            flags=R | Q | ORD,
            response_ms=1_000,
            orders=[OrderRef("o1", at(day, 600), None, 900, 0)],
        ),
        "paid": consultation(
            at(day, 700),
            flags=R | Q | ORD | P,
            response_ms=1_000,
            orders=[paid_order("o2", at(day, 800), 5_000)],
        ),
        "refunded": consultation(
            at(day, 900),
            flags=R | Q | ORD | P,
            response_ms=1_000,
            orders=[paid_order("o3", at(day, 950), 7_000, 2_000)],
            refund_fen=2_000,
        ),
        "assisting": consultation(
            at(day, 1000),
            flags=R | Q | AS,
            response_ms=1_000,
            orders=[paid_order("o2", at(day, 800), 5_000, 0, True)],
        ),
        "angry": consultation(at(day, 1100), flags=R | RT | D, response_ms=2_000, rating=1),
    }
    for index, (buyer, row) in enumerate(rows.items()):
        store.put("s1", "s1:A" if index % 2 == 0 else "s1:B", day, f"tb_{buyer}", row)
    store.put_silent("s1", day, "o9", SilentOrderDetail("tb_silent", at(day, 1200), None, 3_000))
    return store


EXPECTED = {
    "unreplied": ["tb_unreplied"],
    "slow": ["tb_slow30"],  # over the shop's 20 s, strictly
    "lost": ["tb_assisting", "tb_slow30", "tb_quick"],  # inquiries with no order, newest first
    "ordered_unpaid": ["tb_ordered"],
    "paid": ["tb_refunded", "tb_paid"],
    "assisted": ["tb_assisting"],
    "refunded": ["tb_refunded"],
    "dissatisfied": ["tb_angry"],
    "silent_orders": ["tb_silent"],
}


@pytest.mark.parametrize("kind", list(DetailKind))
def test_each_kind_lists_exactly_its_rows_newest_first(kind: DetailKind) -> None:
    details = ask(one_of_each(), kind.value, reveal_buyers=True)
    assert [row.buyer for row in details.rows] == EXPECTED[kind.value]
    assert details.kind == kind.value and details.from_ == FROM and details.to == TO


def test_slow_takes_its_threshold_from_over_and_says_it() -> None:
    assert ask(one_of_each(), "slow").slow_over_seconds == 20
    over_ten = ask(one_of_each(), "slow", over_seconds=10.0, reveal_buyers=True)
    assert [row.buyer for row in over_ten.rows] == ["tb_slow20", "tb_slow30"]
    assert over_ten.slow_over_seconds == 10.0
    assert ask(one_of_each(), "lost").slow_over_seconds is None


def test_one_agent_and_the_silent_orders_row() -> None:
    only_b = ask(one_of_each(), "lost", agent="s1:B", reveal_buyers=True)
    assert [row.buyer for row in only_b.rows] == ["tb_assisting", "tb_quick"]
    silent = ask(one_of_each(), "silent_orders", reveal_buyers=True).rows[0]
    assert isinstance(silent, SilentOrderRow)
    assert (silent.order_id, silent.amount_yuan, silent.paid) == ("o9", 30.0, None)
    assert silent.created == "2026-11-17T00:20:00.000+08:00"


def test_a_row_carries_its_times_wait_orders_and_flags_in_words() -> None:
    row = ask(one_of_each(), "refunded", reveal_buyers=True).rows[0]
    assert isinstance(row, ConsultationRow)
    assert row.agent == "s1:A" and row.agent_name == "小美"
    assert row.start == "2026-11-17T00:15:00.000+08:00" and row.start_ms == at(TODAY - 3, 900)
    assert row.first_reply_ms == row.start_ms + 1_000 and row.wait_seconds == 1.0
    assert row.flags == ["replied", "inquiry", "ordered", "paid"]
    assert (row.sales_yuan, row.refund_yuan) == (70.0, 20.0)
    assert [(o.order_id, o.amount_yuan, o.refund_yuan, o.assisted) for o in row.orders] == [
        ("o3", 70.0, 20.0, False)
    ]
    assisting = ask(one_of_each(), "assisted").rows[0]
    assert isinstance(assisting, ConsultationRow)
    assert [o.order_id for o in assisting.shown_orders("assisted")] == ["o2"]
    assert assisting.shown_orders("paid") == []


def test_buyers_are_masked_unless_revealed_and_no_id_can_be_read_back() -> None:
    masked = ask(one_of_each(), "unreplied").rows[0]
    assert masked.buyer == "tb***ed" and "unrepli" not in masked.buyer
    assert ask(one_of_each(), "silent_orders").rows[0].buyer == "tb***nt"
    assert mask_buyer("tb1234567890") == "tb***90"
    assert mask_buyer("abcde") == "a***e"  # at most a quarter of an id at each end
    assert mask_buyer("abc") == "***"
    for buyer in ("a" * n for n in range(1, 40)):
        shown = mask_buyer(buyer).replace("***", "")
        assert len(shown) * 2 <= len(buyer)


def many(count: int) -> FakeDetails:
    """`count` unreplied consultations over five days with many exact ties of start and agent."""
    store = FakeDetails()
    agents = itertools.cycle(["s1:A", "s1:B", "s1:C"])
    for index in range(count):
        day = TODAY - 1 - index % 5
        store.put("s1", next(agents), day, f"tb_buyer{index:04d}", consultation(at(day, index % 7)))
    return store


@pytest.mark.parametrize("limit", [1, 7, 100, 1000])
def test_pages_give_every_row_once_newest_first(limit: int) -> None:
    store = many(230)
    details_reader = reader(store)
    query = DetailsQuery(shop="s1", kind="unreplied", first=FROM, last=TO, limit=limit, reveal_buyers=True)
    seen: list[tuple[int, str, str]] = []
    cursor: str | None = None
    for _ in range(300):
        page = asyncio.run(details_reader.page(dataclasses.replace(query, cursor=cursor), NOW))
        assert len(page.rows) <= limit
        seen += [
            (-row.start_ms, row.agent, row.buyer) for row in page.rows if isinstance(row, ConsultationRow)
        ]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 230 and len(set(seen)) == 230
    assert seen == sorted(seen)  # newest first, ties by agent then buyer


def test_a_tie_that_leaves_the_list_between_two_pages_takes_no_other_row_with_it() -> None:
    """Buyers of one agent starting in the same millisecond (whole-second sources) sort by
    buyer, which no cursor carries. A page that ended inside such a group resumed by a count:
    once a buyer of it was answered (leaving `unreplied`), the next page skipped one that
    stayed. A page now ends before the group it would cut."""
    store = FakeDetails()
    day = TODAY - 1
    tied = at(day, 3600)
    store.put("s1", "s1:A", day, "tb_newer", consultation(tied + 1000))
    for buyer in ("tb_buyer_1", "tb_buyer_2", "tb_buyer_3"):
        store.put("s1", "s1:A", day, buyer, consultation(tied))
    store.put("s1", "s1:A", day, "tb_buyer_0", consultation(tied - 1000))
    query = DetailsQuery(shop="s1", kind="unreplied", first=FROM, last=TO, limit=3, reveal_buyers=True)
    first = asyncio.run(reader(store).page(query, NOW))
    assert [row.buyer for row in first.rows] == ["tb_newer"]
    store.put("s1", "s1:A", day, "tb_buyer_1", consultation(tied, flags=Flag.REPLIED, response_ms=5000))
    second = asyncio.run(reader(store).page(replace(query, cursor=first.next_cursor), NOW))
    assert [row.buyer for row in second.rows] == ["tb_buyer_2", "tb_buyer_3", "tb_buyer_0"]
    assert second.next_cursor is None


def test_the_cursor_is_opaque_and_never_carries_a_buyer() -> None:
    page = asyncio.run(reader(many(20)).page(DetailsQuery("s1", "unreplied", FROM, TO, limit=3), NOW))
    assert page.next_cursor is not None
    decoded = base64.urlsafe_b64decode(page.next_cursor + "==")
    assert b"buyer" not in decoded and b"tb_" not in decoded


@pytest.mark.parametrize(
    ("asked", "sentence"),
    [
        ({"kind": "late"}, "kind 'late' is not a list: choose one of unreplied, slow, lost"),
        ({"limit": 0}, "limit 0 is not a page size: give 1 to 1000 rows"),
        ({"limit": 1001}, "limit 1001 is not a page size"),
        ({"cursor": "not-a-cursor"}, "the cursor is not one this list gave"),
        ({"cursor": base64.urlsafe_b64encode(b"\x93\x01\xa1A\xff").decode()}, "the cursor is not one"),
        # A start no row has: its business day is past the years a date holds (was a 500).
        ({"cursor": encode_cursor(Position(-(2**62), "s1:A", 1))}, "the cursor is not one"),
        ({"cursor": encode_cursor(Position(2**62, "s1:A", 1))}, "the cursor is not one"),
        ({"over_seconds": 5.0}, "over applies to the slow list only, not to unreplied"),
        ({"kind": "slow", "over_seconds": -1.0}, "over -1 is not a wait"),
        ({"kind": "silent_orders", "agent": "s1:A"}, "silent orders belong to the shop"),
        ({"first": "2026-10-19"}, "lists go back 31 business days (details_days), to 2026-10-21"),
        ({"first": "2026-11-21"}, "from 2026-11-21 is in the future"),
        ({"first": "2026-11-1"}, "from '2026-11-1' is not a date"),
    ],
)
def test_bad_requests_are_one_sentence(asked: dict[str, object], sentence: str) -> None:
    query = DetailsQuery(**{"shop": "s1", "kind": "unreplied", "first": FROM, "last": TO, **asked})  # type: ignore[arg-type]
    with pytest.raises((DetailsRequestError, RangeError)) as raised:
        asyncio.run(reader(one_of_each()).page(query, NOW))
    assert sentence in str(raised.value)


def test_details_days_is_the_lists_horizon_not_the_reports() -> None:
    config = CONFIG.replace("alert_threshold_seconds: 20", "details_days: 3")
    kept = DetailsQuery("s1", "unreplied", "2026-11-18", TO)  # 11-18..20 kept
    assert asyncio.run(reader(one_of_each(), config).page(kept, NOW)).rows == []
    with pytest.raises(RangeError, match="lists go back 3 business days"):
        asyncio.run(
            reader(one_of_each(), config).page(DetailsQuery("s1", "unreplied", "2026-11-17", TO), NOW)
        )


def test_a_page_reads_the_newest_days_until_it_is_full() -> None:
    """A month with a handful of rows: read newest first, 1, 2, 4, 8 then the 16 days left,
    each day once; the whole list (the CSV) in one read."""
    store = one_of_each()
    query = DetailsQuery("s1", "unreplied", "2026-10-21", "2026-11-20", agent="s1:A")
    asyncio.run(reader(store).page(query, NOW))
    assert store.calls == [1, 2, 4, 8, 16]
    store.calls.clear()
    asyncio.run(reader(store).everything(query, NOW))
    assert store.calls == [31]


def test_a_big_teams_first_page_reads_only_the_days_it_shows() -> None:
    """The page is full from the newest day: no older hash is read (a team's month cost
    seconds of the worker's loop when every page read and decoded all of it)."""
    store = FakeDetails()
    for agent in ("s1:A", "s1:B"):
        for day in range(TODAY - 30, TODAY):
            for index in range(60):
                store.put("s1", agent, day, f"{agent}-{day}-{index}", consultation(at(day, 100 + index)))
    query = DetailsQuery("s1", "unreplied", "2026-10-21", "2026-11-19", limit=100)
    page = asyncio.run(reader(store).page(query, NOW))
    assert len(page.rows) == 100 and page.next_cursor is not None
    assert store.calls == [2]  # one day of both agents: 120 rows
    seen: list[tuple[str, int]] = []
    while True:  # and paged to the end, across the days read in chunks: each row once, in order
        seen += [(row.agent, row.start_ms) for row in page.rows]
        if page.next_cursor is None:
            break
        page = asyncio.run(reader(store).page(replace(query, cursor=page.next_cursor), NOW))
    assert len(seen) == len(set(seen)) == 2 * 30 * 60
    assert [start for _, start in seen] == sorted((start for _, start in seen), reverse=True)
