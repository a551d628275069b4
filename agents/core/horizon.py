"""The oldest moments any window still needs, for one shop at one `now`: a batch's verdicts.

A module of its own, never compiled (agents/core/compiled.py): a frozen dataclass that mypyc
compiled does not unpickle. `agents/core/engine.py` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.core.buyer import unpaid_from_ms
from agents.core.policy import ShopPolicy
from agents.core.windows import WINDOW_DAYS
from config.calendar import MS_PER_DAY, MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class Horizon:
    """The oldest moments any window still needs, for one shop at one `now`."""

    today: int
    cutoff_day: int  # first business day still open to change: the `28d` window's, by default
    cutoff_ms: int  # its start
    order_horizon_ms: int  # orders this old can still make a consultation after-sale
    # Never-paid orders created this long ago are kept: an order event stamped at the order
    # horizon, the oldest not late, may still find them (unpaid_cut_ms).
    unpaid_from_ms: int
    # Consultations started this long ago are kept: an order judged from the cutoff on (one
    # that arrives late, say) may still find them in its attribution window. Pruned with the
    # `28d` window alone, a younger inquiry took the credit, or the order went silent.
    inquiries_from_ms: int

    @classmethod
    def at(cls, policy: ShopPolicy, now_ms: int, days: int = WINDOW_DAYS) -> Horizon:
        calendar = policy.calendar
        today = calendar.day(now_ms)
        cutoff_day = today - (days - 1)
        cutoff_ms = calendar.day_start_ms(cutoff_day)
        order_horizon_ms = cutoff_ms - policy.after_sale_ms
        # No event is stamped before 1970 (the decoder: ts >= 0): an after-sale look-back of "forever"
        # (999999 days) must not take the calendar before year 1.
        oldest_event_ms = max(order_horizon_ms, 0)
        # The oldest judging moment a visible cohort can come from: the cutoff, but under
        # `created_first` an order created before it (not yet late) may find no inquiry at its
        # creation and be judged at its payment instead, inside the window.
        oldest_moment_ms = oldest_event_ms if policy.judge == "created_first" else cutoff_ms
        window = policy.attribution_window
        if window == "same_day":
            inquiries_from_ms = calendar.day_start_ms(calendar.day(oldest_moment_ms))
        elif window == "next_day":
            inquiries_from_ms = calendar.day_start_ms(calendar.day(oldest_moment_ms) - 1)
        else:
            inquiries_from_ms = oldest_moment_ms - window
        return cls(
            today,
            cutoff_day,
            cutoff_ms,
            order_horizon_ms,
            unpaid_cut_ms(policy, oldest_event_ms),
            inquiries_from_ms,
        )


def unpaid_cut_ms(policy: ShopPolicy, event_ms: int) -> int:
    """The oldest creation of a never-paid order an order event stamped `event_ms` still finds:
    UNPAID_KEPT_DAYS before its own day's `28d` window (buyer.unpaid_from_ms). By the event's
    day, so that `rebuild`, whose state keeps more, cuts as live does; pruning keeps what the
    oldest event not `late` finds (Horizon.unpaid_from_ms)."""
    calendar = policy.calendar
    return unpaid_from_ms(calendar.day_start_ms(calendar.day(event_ms) - (WINDOW_DAYS - 1)))


def attribution_reach_ms(policy: ShopPolicy) -> int:
    """How long before an order's judging moment its attribution window can reach, at most:
    the idle buyer's state is kept that much longer (Horizon.inquiries_from_ms keeps its
    consultations). A day and a clock change's hour for `next_day`."""
    window = policy.attribution_window
    if window == "same_day":
        return 0
    if window == "next_day":
        return MS_PER_DAY + MS_PER_HOUR
    return window
