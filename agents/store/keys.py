"""The Redis key layout (see docs/redis-layout.md).

Every key carries a Redis Cluster hash tag (`{…}`) naming what must stay in one slot:

- partition-local keys (`{p<N>.<k>}`): the applied offsets of input partition N of both
  topics, the state of every buyer living on partition N, and the partition's outbox. One
  partition's commit is then one single-slot script.
- per-agent keys (`{<len>.<shop>|<agent>}`): an agent's buckets, histogram, waiting set and
  applied-outbox markers, so the window script and the outbox apply read one slot.

Ids are length-prefixed where two ids meet, so `a:b` + `c` never equals `a` + `b:c`.

Ids come from events and may hold `{` or `}`, which would end a tag early (`shop}0`, `x{y}`: every
agent of the shop in one slot). Such ids are escaped inside the tag (`_tag_ids`); ids without
braces keep the names they always had.
"""

from __future__ import annotations

import functools
import math
import re

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

PREFIX = "kp"

# A partition's tag aims at a slot range of this width (see `partition_tag`).
_TARGET_WIDTH = 64


# Inside a tag `%` is escaped too, so the escaped text never holds a brace and two ids
# never escape alike. Escaped tags start with `e` (a plain tag starts with the shop's length,
# a digit), so no escaped tag equals any plain one.
_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})
_ESCAPED_MARK = "e"


def _tag_ids(shop: str, *others: str) -> str:
    """`<len>.<shop>|<other>…`; with a brace in any id, `e<len>.<shop>|<other>…` escaped."""
    ids = (shop, *others)
    if not any("{" in text or "}" in text for text in ids):
        return f"{len(shop)}.{'|'.join(ids)}"
    escaped = [text.translate(_ESCAPES) for text in ids]
    return f"{_ESCAPED_MARK}{len(escaped[0])}.{'|'.join(escaped)}"


def agent_tag(shop: str, agent: str) -> str:
    return f"{PREFIX}:{{{_tag_ids(shop, agent)}}}"


def bucket_key(shop: str, agent: str, kind: str, ident: int) -> str:
    """kind: d (business day ordinal), m (minute since epoch), s (seconds of that minute)."""
    return f"{agent_tag(shop, agent)}:{kind}:{ident}"


def details_key(shop: str, agent: str, day: int) -> str:
    """One agent's drill-down rows of one business day (agents/core/details.py): a hash of
    buyer -> row; the shop-level agent ('') holds the day's silent orders, order id -> row."""
    return f"{agent_tag(shop, agent)}:x:{day}"


def histogram_key(shop: str, agent: str) -> str:
    return f"{agent_tag(shop, agent)}:h"


def waiting_key(shop: str, agent: str) -> str:
    return f"{agent_tag(shop, agent)}:w"


def waiting_trend_key(shop: str) -> str:
    """The shop's waiting buyers sampled once a minute (a ring of minute % WAITING_RING fields)."""
    return f"{agent_tag(shop, '')}:tw"


def status_points_key(shop: str, agent: str) -> str:
    """The agent's status change points (sorted set by event time), in the agent's slot."""
    return f"{agent_tag(shop, agent)}:st"


def status_ids_key(shop: str, agent: str) -> str:
    """The event ids of the agent's kept change points (hash: id -> the record that applied it)."""
    return f"{agent_tag(shop, agent)}:sid"


def applied_key(agent_key: str) -> str:
    """The agent's outbox markers (partition -> position applied), in the slot of `agent_key`."""
    return f"{agent_key[: agent_key.index('}') + 1]}:a"


def _van_der_corput(n: int) -> float:
    """n's binary digits mirrored behind the point: 0, .5, .25, .75, .125, …; any prefix of
    the sequence is spread evenly over [0, 1)."""
    value, weight = 0.0, 0.5
    while n:
        value += weight * (n & 1)
        n >>= 1
        weight /= 2
    return value


def _target_slot(partition: int) -> int:
    """Partition N aims at third N mod 3 of the slot space, and inside it at the van der Corput
    point of N div 3. `redis-cli --cluster create` gives each master an equal range, so on 3
    (or 6, 9, …) masters partitions spread evenly at any partition count."""
    rank, third = divmod(partition, 3)
    return math.ceil((third + _van_der_corput(rank)) / 3 * REDIS_CLUSTER_HASH_SLOTS)


@functools.cache
def partition_tag(partition: int) -> str:
    """The hash tag of input partition N: `p<N>.<k>`, k the smallest number that puts the tag's
    slot in [target, target + 64).

    Plain `p0`, `p1`, … hash to clustered slots (CRC16 is linear): 6 partitions would put 4
    on one of three masters, and with them most of the buyer state. A partition's tag never
    changes when partitions are added. Never change this function: it names stored keys.
    """
    low = _target_slot(partition)
    for k in range(1_000_000):
        tag = f"p{partition}.{k}"
        if low <= key_slot(tag.encode()) < low + _TARGET_WIDTH:
            return tag
    raise AssertionError(f"no tag found for partition {partition}")  # CRC16 is onto: unreachable


# Who leads, written by the leader every second with a short TTL (`kefu-pulse check` reads it).
LEADER_KEY = f"{PREFIX}:leader"


def partition_prefix(partition: int) -> str:
    return f"{PREFIX}:{{{partition_tag(partition)}}}"


def offset_key(topic: str, partition: int) -> str:
    return f"{partition_prefix(partition)}:off:{topic}"


# `rebuild`: each input partition's offset up to which the workers sent their dead letters,
# kept through its delete_state (redis_store.py), so that a rebuild sends only those of records
# no worker read (arrived while the workers were stopped). Field `<partition>|<topic>`.
LETTERED_KEY = f"{PREFIX}:rebuild:lettered"
_OFFSET_KEY = re.compile(r"^" + re.escape(PREFIX) + r":\{p(\d+)\.\d+\}:off:(.+)$")


def offset_key_parts(key: str) -> tuple[int, str] | None:
    """(partition, topic) of an offset key; None for any other key."""
    found = _OFFSET_KEY.match(key)
    return None if found is None else (int(found.group(1)), found.group(2))


def raise_log_key(topic: str, partition: int) -> str:
    """The last raises of a kefu.agents partition's offset (raise_offset.lua), in its slot; not
    under `:off:`, which only offsets may match (their readers GET every such key)."""
    return f"{partition_prefix(partition)}:raises:{topic}"


def buyer_key(partition: int, shop: str, buyer: str) -> str:
    """A buyer's state lives with the input partition its records arrive on."""
    return f"{partition_prefix(partition)}:b:{len(shop)}.{shop}|{buyer}"


def parse_buyer_key(key: str) -> tuple[int, str, str]:
    """(partition, shop, buyer) of a `buyer_key`."""
    tag, _, ids = key.partition("}:b:")
    length, _, rest = ids.partition(".")
    shop, buyer = rest[: int(length)], rest[int(length) + 1 :]
    return int(tag.split("{p", 1)[1].split(".", 1)[0]), shop, buyer


BUYER_KEY_PATTERN = f"{PREFIX}:{{p*}}:b:*"


def outbox_key(partition: int) -> str:
    return f"{partition_prefix(partition)}:outbox"


def commit_log_key(partition: int) -> str:
    """The partition's last commits' ids (commit_partition.lua), newest first."""
    return f"{partition_prefix(partition)}:commits"


def agents_index_key(shop: str) -> str:
    return f"{PREFIX}:agents:{{{_tag_ids(shop)}}}"


SHOPS_INDEX_KEY = f"{PREFIX}:shops"
# The leader's epoch, and the alerts firing now (alert\x1fshop\x1fagent -> episode start).
ALERTS_KEY = f"{PREFIX}:alerts"
