"""One buyer's stored state: the msgspec structs that `buyer.py` folds events into.

A module of its own because the compiled core (agents/core/compiled.py) leaves it out: msgspec
builds a Struct class from its Python annotations and keywords (`array_like`, `tag`), which a
class compiled by mypyc does not keep, so the codec would decode its fields as plain dicts.
`agents/core/buyer.py` re-exports these names; import them from there.
"""

from __future__ import annotations

from msgspec import Struct


class Consultation(Struct, array_like=True):
    agent: str
    day: int
    start: int
    first_reply: int | None = None
    # Appended in v3: the buyer's rating (score 1..5) and its time; a later rating replaces it.
    rating: int | None = None
    rated_at: int | None = None
    # Appended later in v3: whether its agent was in the `aftersale` group when it started, so
    # a group changed live applies to consultations started after the change and every later
    # projection of this one reads it as it was booked. None: stored before this was kept (the
    # shop's groups now decide, as they did).
    aftersale_group: bool | None = None


class OrderState(Struct, array_like=True):
    order_id: str
    created: int | None = None
    paid: int | None = None
    cancelled: int | None = None
    amount_fen: int = 0
    # Appended in v2 (refunds): a state stored before them decodes with these defaults.
    refunded: int | None = None  # the latest refund's time, so the order outlives it
    refunded_fen: int = 0  # partial refunds, added up
    refunded_fully: bool = False  # a refund without an amount: the whole order

    @property
    def refund_fen(self) -> int:
        """What was refunded of the order so far: never past its amount (metrics.md v2)."""
        if self.refunded_fully:
            return self.amount_fen
        return min(self.refunded_fen, self.amount_fen)

    @property
    def created_at(self) -> int | None:
        """A `paid` order never seen `created` counts as created at the payment's time."""
        if self.created is None:
            return self.paid
        if self.paid is None:
            return self.created
        return min(self.created, self.paid)

    @property
    def is_paid(self) -> bool:
        """Cancelled before payment: stays ordered, never paid."""
        if self.paid is None:
            return False
        return self.cancelled is None or self.cancelled > self.paid


class WaitSample(Struct, array_like=True, frozen=True):
    """A wait that ended with a reply: one sample of the response metric."""

    agent: str
    start: int
    duration_ms: int


# The stored layout of a buyer's state (msgpack, agents/store/state_codec.py) is the order of
# the fields below and in the structs it holds: never reorder or remove a field. Append new
# fields with defaults, or bump STATE_LAYOUT and teach the codec to read the old layout.
STATE_LAYOUT = 1


class BuyerState(Struct, array_like=True, tag=STATE_LAYOUT):
    last_message_ts: int = 0
    consultations: list[Consultation] = []
    waits: dict[str, int] = {}
    orders: list[OrderState] = []
    # blake2b-64 digests of applied event ids → event ts (for pruning with the state).
    seen: dict[int, int] = {}

    def copy(self) -> BuyerState:
        return BuyerState(
            last_message_ts=self.last_message_ts,
            consultations=[
                Consultation(c.agent, c.day, c.start, c.first_reply, c.rating, c.rated_at, c.aftersale_group)
                for c in self.consultations
            ],
            waits=dict(self.waits),
            orders=[
                OrderState(
                    o.order_id,
                    o.created,
                    o.paid,
                    o.cancelled,
                    o.amount_fen,
                    o.refunded,
                    o.refunded_fen,
                    o.refunded_fully,
                )
                for o in self.orders
            ],
            seen=dict(self.seen),
        )
