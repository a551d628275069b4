"""The misrouting check's key hash: the native murmur2 (native/src/lib.rs) is Kafka's, and the
worker uses it when the native build runs."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2

from agents.store import native
from agents.worker import runtime
from streams.wire.partitioning import KeyHash, home_partition

ACTIVE, REASON = native.native_status()
needs_native = pytest.mark.skipif(not ACTIVE, reason=f"the native build is not active: {REASON}")

# Kafka's own (clients' UtilsTest.testMurmur2), signed as Java gives them.
KAFKA_CASES = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def native_hash() -> KeyHash:
    found = native.native_murmur2()
    assert found is not None
    return found


@needs_native
@pytest.mark.parametrize(("key", "expected"), KAFKA_CASES.items())
def test_the_native_murmur2_gives_kafkas_values(key: bytes, expected: int) -> None:
    assert native_hash()(key) == expected & 0xFFFFFFFF == murmur2(key)


@needs_native
@given(st.binary(max_size=64))
@example(b"")  # no block, no tail: the seed and the length mixed alone
def test_the_native_murmur2_equals_kafka_pythons_for_any_key(key: bytes) -> None:
    assert native_hash()(key) == murmur2(key)
    assert home_partition(key, 7, native_hash()) == home_partition(key, 7)


@needs_native
def test_the_worker_checks_partitions_with_the_native_murmur2() -> None:
    partitioner = runtime.worker_partitioner(8)
    assert partitioner.key_hash is native.native_murmur2()
    assert partitioner.home(b"shop0:tb_1") == home_partition(b"shop0:tb_1", 8)


def test_without_the_native_build_the_worker_uses_kafka_pythons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "native_murmur2", lambda: None)
    assert runtime.worker_partitioner(8).key_hash is murmur2
