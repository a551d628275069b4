"""The oldest moments any window still needs, for one shop at one `now`: a batch's verdicts.

A module of its own, never compiled (agents/core/compiled.py): a frozen dataclass that mypyc
compiled does not unpickle. `agents/core/engine.py` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.core.policy import ShopPolicy
from agents.core.windows import WINDOW_DAYS


@dataclass(frozen=True, slots=True)
class Horizon:
    """The oldest moments any window still needs, for one shop at one `now`."""

    today: int
    cutoff_day: int  # first business day still open to change: the `28d` window's, by default
    cutoff_ms: int  # its start
    order_horizon_ms: int  # orders this old can still make a consultation after-sale

    @classmethod
    def at(cls, policy: ShopPolicy, now_ms: int, days: int = WINDOW_DAYS) -> Horizon:
        today = policy.calendar.day(now_ms)
        cutoff_day = today - (days - 1)
        cutoff_ms = policy.calendar.day_start_ms(cutoff_day)
        return cls(today, cutoff_day, cutoff_ms, cutoff_ms - policy.after_sale_ms)
