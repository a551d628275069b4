"""The Redis key layout (see docs/redis-layout.md).

Every per-agent key carries the hash tag `{shop|agent}` so that all of one agent's
buckets live in one Redis Cluster slot and the window script reads them atomically.
Ids are length-prefixed where two ids meet, so `a:b` + `c` never equals `a` + `b:c`.
"""

from __future__ import annotations

PREFIX = "kp"


def agent_tag(shop: str, agent: str) -> str:
    return f"{PREFIX}:{{{len(shop)}.{shop}|{agent}}}"


def bucket_key(shop: str, agent: str, kind: str, ident: int) -> str:
    """kind: d (business day ordinal), m (minute since epoch), s (seconds of that minute)."""
    return f"{agent_tag(shop, agent)}:{kind}:{ident}"


def histogram_key(shop: str, agent: str) -> str:
    return f"{agent_tag(shop, agent)}:h"


def waiting_key(shop: str, agent: str) -> str:
    return f"{agent_tag(shop, agent)}:w"


def buyer_key(shop: str, buyer: str) -> str:
    return f"{PREFIX}:b:{{{len(shop)}.{shop}|{buyer}}}"


def offset_key(topic: str, partition: int) -> str:
    return f"{PREFIX}:off:{{{topic}|{partition}}}"


def agents_index_key(shop: str) -> str:
    return f"{PREFIX}:agents:{{{len(shop)}.{shop}}}"


SHOPS_INDEX_KEY = f"{PREFIX}:shops"
ALERTS_KEY = f"{PREFIX}:alerts"  # fields alert\x1fshop\x1fagent of the alerts firing now
