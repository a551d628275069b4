"""Move buyer states to their new partition after partitions were added to the input topics.

A buyer's state lives under the tag of the partition its records arrive on, and producers
pick that partition as Kafka's default partitioner does: murmur2(`shop:buyer`) mod the
partition count. Adding partitions moves most buyers; their next records arrive on another
partition, whose worker would find no state and start the buyer afresh (docs/operations.md).
This moves each state to where the new count puts it. Run it with the workers stopped and
the topics drained; offsets stay as they are (each still describes its own partition).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.store import keys
from agents.store.batches import RedisPartitionStore
from agents.store.connect import RedisClient
from streams.wire.partitioning import home_partition


def buyer_home(shop: str, buyer: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the buyer's key `shop:buyer`."""
    return home_partition(f"{shop}:{buyer}".encode(), partitions)


@dataclass(slots=True)
class Moves:
    scanned: int = 0
    moved: int = 0
    # States whose new place already held one: left in place, reported (workers ran on the
    # new partitions before this was run, so the buyer's history is split).
    conflicts: int = 0


async def move_buyers(client: RedisClient, partitions: int, dry_run: bool = False) -> Moves:
    """Re-home every buyer state for `partitions` partitions. Idempotent: a rerun after a crash
    finishes the job (a state copied but not yet deleted is copied again, unchanged)."""
    outboxes = RedisPartitionStore(client)
    await outboxes.drain(range(partitions))  # agents must have every commit before states move
    moves = Moves()
    async for raw in client.scan_iter(match=keys.BUYER_KEY_PATTERN, count=1000):  # cluster: every master
        key = raw.decode()
        moves.scanned += 1
        partition, shop, buyer = keys.parse_buyer_key(key)
        home = buyer_home(shop, buyer, partitions)
        if home == partition:
            continue
        target = keys.buyer_key(home, shop, buyer)
        blob, ttl = await client.get(key), await client.pttl(key)
        if blob is None or ttl == -2:
            continue  # expired meanwhile (between the two reads: copied, it would never expire)
        existing = await client.get(target)
        if existing is not None and existing != blob:
            moves.conflicts += 1
            continue
        moves.moved += 1
        if not dry_run:
            await client.set(target, blob, px=ttl if ttl > 0 else None)
            await client.unlink(key)
    return moves
