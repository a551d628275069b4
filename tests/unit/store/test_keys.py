"""The key layout: stable names, and partitions spread over the masters of a cluster."""

from __future__ import annotations

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from agents.store import keys
from agents.store.batches import offset_ttl_ms
from config.settings import settings_from_yaml
from streams.topics import input_retention_days, input_retention_ms, topic_plans
from tests.offset_keys import parse_offset_key


def test_partition_tags_never_change() -> None:
    """They name stored keys: a different tag would orphan every buyer state and offset."""
    assert [keys.partition_tag(n) for n in range(6)] == [
        "p0.239",
        "p1.43",
        "p2.5",
        "p3.176",
        "p4.36",
        "p5.776",
    ]


def test_offset_keys_round_trip() -> None:
    key = keys.offset_key("t.messages|x", 13)
    assert key.startswith("kp:{p13.") and parse_offset_key(key) == ("t.messages|x", 13)


def master_of(slot: int, masters: int) -> int:
    """The master holding `slot` when `redis-cli --cluster create` split the slots evenly."""
    return min(slot * masters // REDIS_CLUSTER_HASH_SLOTS, masters - 1)


@pytest.mark.parametrize(
    ("masters", "partitions"),
    [(masters, n) for masters in (3, 6) for n in (3, 6, 8, 12, 16, 24, 32, 64) if n >= masters],
)
def test_partitions_spread_evenly_over_three_or_six_masters(masters: int, partitions: int) -> None:
    held = [0] * masters
    for n in range(partitions):
        held[master_of(key_slot(keys.partition_tag(n).encode()), masters)] += 1
    assert max(held) - min(held) <= 1, held  # plain `p<N>` tags: up to 6 apart


def test_a_partitions_keys_share_its_slot_and_agents_keys_theirs() -> None:
    slot = key_slot(keys.partition_tag(5).encode())
    assert {
        key_slot(k.encode())
        for k in (
            keys.offset_key("a", 5),
            keys.offset_key("b", 5),
            keys.buyer_key(5, "s}", "{b"),
            keys.outbox_key(5),
        )
    } == {slot}
    agent = keys.bucket_key("s1", "s1:a", "d", 1)
    assert key_slot(keys.applied_key(agent).encode()) == key_slot(keys.waiting_key("s1", "s1:a").encode())


@pytest.mark.parametrize(
    "yaml_text",
    [
        "{}",
        "defaults: {retention_days: 28, after_sale_days: 0}",
        "shops: {s1: {retention_days: 366, after_sale_days: 30}}",
    ],
)
def test_offsets_outlive_the_input_topics_retention(yaml_text: str) -> None:
    """An idle partition's offsets fence records Kafka still holds: expiring first would make
    the next owner re-read the partition from the start of retention."""
    settings = settings_from_yaml(yaml_text)
    assert offset_ttl_ms(settings) > input_retention_ms(settings)
    plans = {p.name: p for p in topic_plans(settings)}
    names = settings.kafka.topics
    for topic in (names.messages, names.orders):
        assert int(plans[topic].config["retention.ms"]) < offset_ttl_ms(settings)


@pytest.mark.parametrize(
    ("yaml_text", "days"),
    [
        ("{}", 93 + 7 + 1),
        ("defaults: {retention_days: 28, after_sale_days: 0}", 29),
        ("shops: {s1: {retention_days: 120}, s2: {after_sale_days: 14}}", 120 + 14 + 1),
    ],
)
def test_input_topics_keep_what_rebuild_needs_for_every_report(yaml_text: str, days: int) -> None:
    """The longest retention of any shop, the after-sale look-back before it, a day for zones."""
    assert input_retention_days(settings_from_yaml(yaml_text)) == days
