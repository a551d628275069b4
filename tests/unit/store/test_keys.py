"""The key layout: stable names, and partitions spread over the masters of a cluster."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from agents.store import keys
from agents.store.batches import offset_ttl_ms
from config.retention import input_retention_ms
from config.settings import settings_from_yaml
from streams.wire.topics import topic_plans
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


def test_ids_without_braces_keep_their_keys() -> None:
    """Existing deployments' data: a plain id's tag is what it always was."""
    assert keys.agent_tag("s1", "s1:a") == "kp:{2.s1|s1:a}"
    assert keys.bucket_key("shop 7", "a%b|c", "d", 20000) == "kp:{6.shop 7|a%b|c}:d:20000"
    assert keys.waiting_trend_key("s1") == "kp:{2.s1|}:tw"
    assert keys.agents_index_key("s1") == "kp:agents:{2.s1}"


@pytest.mark.parametrize(
    ("shop", "agent", "tag"),
    [
        ("shop}0", "a", "e8.shop%7D0|a"),
        ("x{y}", "a", "e8.x%7By%7D|a"),
        ("s1", "a}b", "e2.s1|a%7Db"),
        ("5%", "{", "e4.5%25|%7B"),
    ],
)
def test_braces_in_ids_are_escaped_inside_the_tag(shop: str, agent: str, tag: str) -> None:
    key = keys.bucket_key(shop, agent, "d", 1)
    assert key == f"kp:{{{tag}}}:d:1"  # the only braces: the whole tag is the hash tag
    assert key_slot(key.encode()) == key_slot(tag.encode())
    index = keys.agents_index_key(shop)
    assert index.count("{") == index.count("}") == 1


ids_with_braces = st.text(alphabet="ab{}%|.1", min_size=1, max_size=8)


@given(ids_with_braces, ids_with_braces, ids_with_braces, ids_with_braces)
def test_agent_tags_stay_injective(shop_a: str, agent_a: str, shop_b: str, agent_b: str) -> None:
    if (shop_a, agent_a) != (shop_b, agent_b):
        assert keys.agent_tag(shop_a, agent_a) != keys.agent_tag(shop_b, agent_b)
    if shop_a != shop_b:
        assert keys.agents_index_key(shop_a) != keys.agents_index_key(shop_b)


@given(
    st.text(min_size=1, max_size=64).filter(lambda s: "\x00" not in s) | st.sampled_from(["shop}0", "x{y}"])
)
@example("yvuxvoxurd")  # the least: 100 slots
def test_200_agents_of_any_shop_spread_over_slots(shop: str) -> None:
    """One hash tag per (shop, agent): a shop's agents must not share one Redis Cluster slot.

    Not all 200 slots: CRC16 is linear, so for about one shop name in 300 the ids agent10..99
    land group-wise on the slots of agent110..199 (one XOR of two prefix shifts). Ids of one
    length differ alike under any prefix, so the 100 three-digit ones keep 100 slots: the least
    any shop gets (60,000 random names: least 100, 0.3% under 150, which failed this test now
    and then)."""
    slots = {key_slot(keys.waiting_key(shop, f"{shop}:agent{n}").encode()) for n in range(200)}
    assert len(slots) >= 100, (shop, len(slots))
