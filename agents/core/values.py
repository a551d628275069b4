"""What a summed cohort vector says: the window values the floor, the metrics and the reports
show (interfaces.md `/api/v1/floor`). Pure: the readers sum the vectors, these divide them."""

from __future__ import annotations

import msgspec

from agents.core.projection import Counter, Vector, replied_within
from streams.contract.floor import TeamWindowValues, WindowValues


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


def _average(total: int, count: int, scale: int) -> float | None:
    return round(total / count / scale, 3) if count else None


def window_values(v: Vector, targets_seconds: tuple[int, ...]) -> WindowValues:
    """One window's metrics from its summed cohort vector; `targets_seconds` name its
    replied-within slots (the shop's response_targets_seconds)."""
    return WindowValues(
        consultations=v[Counter.CONSULTATIONS],
        replied_consultations=v[Counter.REPLIED],
        inquiries=v[Counter.INQUIRIES],
        ordered_inquiries=v[Counter.ORDERED],
        paid_inquiries=v[Counter.PAID],
        reply_ratio=_ratio(v[Counter.REPLIED], v[Counter.CONSULTATIONS]),
        first_response_avg_seconds=_average(v[Counter.FIRST_RESPONSE_MS], v[Counter.REPLIED], 1000),
        response_avg_seconds=_average(v[Counter.WAIT_MS], v[Counter.WAITS_ENDED], 1000),
        consult_order_ratio=_ratio(v[Counter.ORDERED], v[Counter.INQUIRIES]),
        consult_pay_ratio=_ratio(v[Counter.PAID], v[Counter.INQUIRIES]),
        order_pay_ratio=_ratio(v[Counter.PAID], v[Counter.ORDERED]),
        attributed_sales_yuan=_yuan(v[Counter.SALES_FEN]),
        average_order_value_yuan=(
            round(v[Counter.SALES_FEN] / v[Counter.PAID] / 100, 2) if v[Counter.PAID] else None
        ),
        replied_within_ratio={
            str(target): _ratio(v[replied_within(slot)], v[Counter.CONSULTATIONS])
            for slot, target in enumerate(targets_seconds)
        },
        refunded_sales_yuan=_yuan(v[Counter.REFUNDED_FEN]),
        assisted_paid=v[Counter.ASSISTED],
        assisted_sales_yuan=_yuan(v[Counter.ASSISTED_SALES_FEN]),
        rated_consultations=v[Counter.RATED],
        rating_ratio=_ratio(v[Counter.RATED], v[Counter.REPLIED]),
        satisfaction_ratio=_ratio(v[Counter.SATISFIED], v[Counter.RATED]),
        dissatisfied_consultations=v[Counter.DISSATISFIED],
        average_rating_score=_average(v[Counter.RATING_SCORE], v[Counter.RATED], 1),
    )


def team_values(agents: Vector, shop: Vector, targets_seconds: tuple[int, ...]) -> TeamWindowValues:
    """The team's window: the agents' summed vector, and the shop-level one for its orders."""
    return TeamWindowValues(
        **msgspec.structs.asdict(window_values(agents, targets_seconds)),
        orders=shop[Counter.ORDERS],
        silent_orders=shop[Counter.SILENT_ORDERS],
        silent_share=_ratio(shop[Counter.SILENT_ORDERS], shop[Counter.ORDERS]),
        silent_sales_yuan=_yuan(shop[Counter.SILENT_SALES_FEN]),
    )
