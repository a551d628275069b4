"""The cohort vector's slots (`Counter`), re-exported by agents/core/projection.py.

A module of its own because the compiled core (agents/core/compiled.py) leaves it out: mypyc
cannot compile an IntEnum whose members carry a field through a custom `__new__`, and the
enum is no hot path (projection.py indexes with plain-int copies of its members).
"""

from __future__ import annotations

from enum import CONTINUOUS, UNIQUE, IntEnum, verify


@verify(UNIQUE, CONTINUOUS)
class Counter(IntEnum):
    """The cohort vector's slots in their order, each with its field in the Redis hashes.

    A vector is a plain `list[int]` of WIDTH counters: `vector[Counter.PAID]` (the hot path
    below indexes with plain-int copies). Shop-level vectors (agent SHOP_LEVEL) share the layout
    and count the shop's orders: ORDERS, SILENT_ORDERS, SILENT_SALES_FEN."""

    _value_: int
    field: str  # the hash field name: stored data, so it never changes

    def __new__(cls, index: int, field: str) -> Counter:
        member = int.__new__(cls, index)
        member._value_ = index
        member.field = field
        return member

    CONSULTATIONS = 0, "c"
    REPLIED = 1, "r"
    FIRST_RESPONSE_MS = 2, "fs"
    WAITS_ENDED = 3, "wn"
    WAIT_MS = 4, "ws"
    INQUIRIES = 5, "i"
    ORDERED = 6, "o"
    PAID = 7, "p"
    SALES_FEN = 8, "y"
    ORDERS = 9, "n"
    SILENT_ORDERS = 10, "sn"
    SILENT_SALES_FEN = 11, "sy"
    # v2
    REFUNDED_FEN = 12, "rf"
    ASSISTED = 13, "a"
    ASSISTED_SALES_FEN = 14, "ay"
    # Replied within the shop's i-th response target (response_targets_seconds, in its order):
    # one slot per target the settings allow (MAX_RESPONSE_TARGETS), read as `replied_within(i)`.
    REPLIED_WITHIN_0 = 15, "w0"
    REPLIED_WITHIN_1 = 16, "w1"
    REPLIED_WITHIN_2 = 17, "w2"
    REPLIED_WITHIN_3 = 18, "w3"
    # v3 satisfaction: rated consultations, those rated 4-5 and 1-2, and the scores' sum.
    RATED = 19, "rt"
    SATISFIED = 20, "st"
    DISSATISFIED = 21, "dt"
    RATING_SCORE = 22, "sc"
