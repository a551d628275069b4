"""What a summed cohort vector says: the window values the floor, the metrics and the reports
show (interfaces.md `/api/v1/floor`). Pure: the readers sum the vectors, these divide them.

Compiled by mypyc (agents/core/compiled.py). Its int / int converts both to double and divides,
as CPython does up to 2**53; past that CPython rounds once and mypyc twice. The counters are
counts and sums of ms or fen: 2**53 ms is ~285,000 years, 2**53 fen ~90 trillion yuan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from agents.core.projection import Counter, replied_within
from streams.contract.floor import TeamWindowValues, WindowValues


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


def _average(total: int, count: int, scale: int) -> float | None:
    return round(total / count / scale, 3) if count else None


# Plain ints, as projection.py indexes: `v[Counter.PAID]` costs ~85 ns on CPython 3.11 against
# ~13 ns, and the leader makes four of these per agent it reads, each round. `Final`: compiled
# (agents/core/compiled.py), they are C constants instead of a module-dict look-up per index.
_CONSULTATIONS: Final = int(Counter.CONSULTATIONS)
_REPLIED: Final = int(Counter.REPLIED)
_INQUIRIES: Final = int(Counter.INQUIRIES)
_ORDERED: Final = int(Counter.ORDERED)
_PAID: Final = int(Counter.PAID)
_FIRST_RESPONSE_MS: Final = int(Counter.FIRST_RESPONSE_MS)
_WAIT_MS: Final = int(Counter.WAIT_MS)
_WAITS_ENDED: Final = int(Counter.WAITS_ENDED)
_SALES_FEN: Final = int(Counter.SALES_FEN)
_REFUNDED_FEN: Final = int(Counter.REFUNDED_FEN)
_ASSISTED: Final = int(Counter.ASSISTED)
_ASSISTED_SALES_FEN: Final = int(Counter.ASSISTED_SALES_FEN)
_RATED: Final = int(Counter.RATED)
_SATISFIED: Final = int(Counter.SATISFIED)
_DISSATISFIED: Final = int(Counter.DISSATISFIED)
_RATING_SCORE: Final = int(Counter.RATING_SCORE)
_ORDERS: Final = int(Counter.ORDERS)
_SILENT_ORDERS: Final = int(Counter.SILENT_ORDERS)
_SILENT_SALES_FEN: Final = int(Counter.SILENT_SALES_FEN)
# Slot i is at this + i; settings allow MAX_RESPONSE_TARGETS targets, the slots there are.
_REPLIED_WITHIN_0: Final = int(replied_within(0))


def window_values(v: Sequence[int], targets_seconds: tuple[int, ...]) -> WindowValues:
    """One window's metrics from its summed cohort vector; `targets_seconds` name its
    replied-within slots (the shop's response_targets_seconds)."""
    consultations, replied, inquiries = v[_CONSULTATIONS], v[_REPLIED], v[_INQUIRIES]
    ordered, paid, sales, rated = v[_ORDERED], v[_PAID], v[_SALES_FEN], v[_RATED]
    return WindowValues(
        consultations=consultations,
        replied_consultations=replied,
        inquiries=inquiries,
        ordered_inquiries=ordered,
        paid_inquiries=paid,
        reply_ratio=_ratio(replied, consultations),
        first_response_avg_seconds=_average(v[_FIRST_RESPONSE_MS], replied, 1000),
        response_avg_seconds=_average(v[_WAIT_MS], v[_WAITS_ENDED], 1000),
        consult_order_ratio=_ratio(ordered, inquiries),
        consult_pay_ratio=_ratio(paid, inquiries),
        order_pay_ratio=_ratio(paid, ordered),
        attributed_sales_yuan=_yuan(sales),
        average_order_value_yuan=round(sales / paid / 100, 2) if paid else None,
        replied_within_ratio={
            str(target): _ratio(v[_REPLIED_WITHIN_0 + slot], consultations)
            for slot, target in enumerate(targets_seconds)
        },
        refunded_sales_yuan=_yuan(v[_REFUNDED_FEN]),
        assisted_paid=v[_ASSISTED],
        assisted_sales_yuan=_yuan(v[_ASSISTED_SALES_FEN]),
        rated_consultations=rated,
        rating_ratio=_ratio(rated, replied),
        satisfaction_ratio=_ratio(v[_SATISFIED], rated),
        dissatisfied_consultations=v[_DISSATISFIED],
        average_rating_score=_average(v[_RATING_SCORE], rated, 1),
    )


def team_values(
    agents: Sequence[int], shop: Sequence[int], targets_seconds: tuple[int, ...]
) -> TeamWindowValues:
    """The team's window: the agents' summed vector, and the shop-level one for its orders."""
    return TeamWindowValues(
        **msgspec.structs.asdict(window_values(agents, targets_seconds)),
        orders=shop[_ORDERS],
        silent_orders=shop[_SILENT_ORDERS],
        silent_share=_ratio(shop[_SILENT_ORDERS], shop[_ORDERS]),
        silent_sales_yuan=_yuan(shop[_SILENT_SALES_FEN]),
    )
