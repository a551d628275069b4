"""A DetailsStore over a dict, and rows to fill it with, for the drill-down lists' tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from agents.core.details import ConsultationDetail, Flag, OrderRef, SilentOrderDetail
from agents.store.keys import details_key

_encode = msgspec.msgpack.encode


@dataclass
class FakeDetails:
    """`details`, `agents_since` and `shops_since` over plain dicts; records each `details` call."""

    hashes: dict[str, dict[str, bytes]] = field(default_factory=dict)
    seen: dict[str, list[str]] = field(default_factory=dict)
    calls: list[int] = field(default_factory=list)  # the number of keys of each `details` call

    def put(self, shop: str, agent: str, day: int, buyer: str, row: ConsultationDetail) -> None:
        self.hashes.setdefault(details_key(shop, agent, day), {})[buyer] = _encode(row)
        if agent and agent not in self.seen.setdefault(shop, []):
            self.seen[shop].append(agent)

    def put_silent(self, shop: str, day: int, order_id: str, row: SilentOrderDetail) -> None:
        self.hashes.setdefault(details_key(shop, "", day), {})[order_id] = _encode(row)

    async def details(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        self.calls.append(len(keys))
        return [dict(self.hashes.get(key, {})) for key in keys]

    async def agents_since(self, shop: str, since_ms: int) -> list[str]:
        return list(self.seen.get(shop, []))

    async def shops_since(self, since_ms: int) -> list[str]:
        return sorted(self.seen)

    async def day_vectors(
        self, pairs: Sequence[tuple[str, str]], days: Sequence[int]
    ) -> list[list[list[int]]]:
        raise AssertionError("a list reads no day buckets")


def consultation(
    start: int,
    *,
    flags: Flag = Flag(0),  # noqa: B008  (an enum member, immutable)
    response_ms: int | None = None,
    rating: int | None = None,
    orders: Sequence[OrderRef] = (),
    refund_fen: int = 0,
) -> ConsultationDetail:
    replied = bool(flags & Flag.REPLIED)
    return ConsultationDetail(
        start=start,
        first_reply=start + (response_ms or 0) if replied else None,
        response_ms=response_ms if replied else None,
        flags=int(flags),
        rating=rating,
        sales_fen=sum(o.amount_fen for o in orders if o.paid is not None and not o.assisted),
        refund_fen=refund_fen,
        assisted_sales_fen=sum(o.amount_fen for o in orders if o.assisted),
        orders=list(orders),
    )
