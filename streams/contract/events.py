"""Input events (events.md v3) as typed, immutable structs.

Decoding and validation happen in one msgspec pass; `amount` stays raw JSON so that the
exact decimal text can be checked against the contract (a `Decimal` field would also
accept `"1e3"`), and money becomes integer fen, never a binary float.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

Id = Annotated[str, Meta(min_length=1, max_length=128)]
ShopId = Annotated[str, Meta(min_length=1, max_length=64)]
OrderId = Annotated[str, Meta(min_length=1, max_length=64)]
EventTime = Annotated[int, Meta(ge=0)]

OrderStatus = Literal["created", "paid", "cancelled", "refunded"]
Score = Annotated[int, Meta(ge=1, le=5)]  # 5 很满意, 4 满意, 3 一般, 2 不满意, 1 很不满意
AgentStatusName = Literal["online", "away", "offline"]


class Message(Struct, frozen=True, tag="message", tag_field="type"):
    event_id: Id
    shop_id: ShopId
    buyer_id: Id
    ts: EventTime
    agent_id: Id
    sender: Literal["buyer", "agent"]
    auto_reply: bool = False


class Transfer(Struct, frozen=True, tag="transfer", tag_field="type"):
    event_id: Id
    shop_id: ShopId
    buyer_id: Id
    ts: EventTime
    from_agent: Id
    to_agent: Id


class Rating(Struct, frozen=True, tag="rating", tag_field="type"):
    """A buyer's rating of an agent (客服评价, v3): it rates the buyer's latest consultation with
    that agent that started at or before it, within `rating_days`."""

    event_id: Id
    shop_id: ShopId
    buyer_id: Id
    ts: EventTime
    agent_id: Id
    score: Score


class AgentStatus(Struct, frozen=True, tag="agent_status", tag_field="type"):
    """One change of an agent's status from the login feed (`kefu.agents`, keyed by agent, v3)."""

    event_id: Id
    shop_id: ShopId
    agent_id: Id
    ts: EventTime
    status: AgentStatusName


class WireOrder(Struct, frozen=True, tag="order", tag_field="type"):
    event_id: Id
    shop_id: ShopId
    buyer_id: Id
    ts: EventTime
    order_id: OrderId
    status: OrderStatus
    # Empty when absent; JSON null is treated as absent (a cancellation often carries it).
    amount: msgspec.Raw = msgspec.Raw(b"")


class Order(Struct, frozen=True):
    """An order event after validation; `amount_fen` is None when the event carried none."""

    event_id: str
    shop_id: str
    buyer_id: str
    ts: int
    order_id: str
    status: OrderStatus
    amount_fen: int | None


WireEvent = Message | Transfer | Rating | WireOrder
Event = Message | Transfer | Rating | Order
