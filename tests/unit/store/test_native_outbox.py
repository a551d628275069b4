"""The native outbox encoder (native/, agents/store/native.py) against its Python reference.

For the same write sets, `outbox.commit_entry` / `outbox.entry_calls` (Rust when the build is
active; `./test` requires it) must give the bytes of `encode(from_writes(...))` and the KEYS and
ARGV of `apply_calls(...)`, byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.core.compiled import interpreter_tag, sources_digest
from agents.store import keys, native, outbox
from agents.store.outbox import Entry
from agents.store.writes import WriteSet

ACTIVE, REASON = native.native_status()
needs_native = pytest.mark.skipif(not ACTIVE, reason=f"the native build is not active: {REASON}")

# Every boundary of msgpack's int forms (fixint, 8, 16, 32, 64 bits, signed and unsigned).
INT_EDGES = [
    *(0, 1, -1, 31, 32, -32, -33, 127, 128, -128, -129, 255, 256, -32768, -32769, 65535, 65536),
    *(2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63), 2**64 - 1),
]
ids = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)  # unicode, braces, '' included
amounts = st.one_of(st.sampled_from(INT_EDGES), st.integers(-(2**63), 2**64 - 1))
expiries = st.one_of(st.sampled_from([e for e in INT_EDGES if e > 0]), st.integers(1, 2**64 - 1))
rows = st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"", b"x" * 255, b"y" * 256]))


def calls_of(calls: Sequence[Any]) -> list[tuple[str, list[Any], list[Any]]]:
    return [(c.script.name, list(c.keys), list(c.args)) for c in calls]


def reference(batch: Sequence[tuple[int, int, WriteSet]]) -> tuple[list[bytes | None], list[Any]]:
    entries = [outbox.from_writes(p, at, w) for p, at, w in batch]
    blobs = [None if e is None else outbox.encode(e) for e in entries]
    return blobs, calls_of(outbox.apply_calls([e for e in entries if e is not None], 12_345))


def under_test(batch: Sequence[tuple[int, int, WriteSet]]) -> tuple[list[bytes | None], list[Any]]:
    entries = [outbox.commit_entry(p, at, w) for p, at, w in batch]
    blobs = [None if e is None else e.blob for e in entries]
    return blobs, calls_of(outbox.entry_calls([e for e in entries if e is not None], 12_345))


def assert_same(batch: Sequence[tuple[int, int, WriteSet]]) -> None:
    expected_blobs, expected_calls = reference(batch)
    blobs, calls = under_test(batch)
    assert blobs == expected_blobs
    assert calls == expected_calls


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[int, int, WriteSet]]:
    """A few partitions' write sets over a few shared agents (so one agent gets several entries)."""
    shops = draw(st.lists(ids, min_size=1, max_size=3))
    agents = draw(st.lists(ids, min_size=1, max_size=3))

    def pick() -> tuple[str, str]:
        return draw(st.sampled_from(shops)), draw(st.sampled_from(agents))

    batch = []
    for _ in range(draw(st.integers(1, 4))):
        writes = WriteSet()
        for _ in range(draw(st.integers(0, 8))):
            shop, agent = pick()
            key = keys.bucket_key(shop, agent, draw(st.sampled_from("dms")), draw(st.integers(0, 99)))
            writes.increment(key, draw(ids), draw(amounts), draw(expiries))
        for _ in range(draw(st.integers(0, 6))):
            shop, agent = pick()
            key, buyer = keys.waiting_key(shop, agent), draw(ids)
            writes.expire_at_ms[key] = draw(expiries)
            if draw(st.booleans()):  # as writes.add_buyer_delta does
                writes.waits_remove[key].discard(buyer)
                writes.waits_add[key][buyer] = draw(amounts)
            else:
                writes.waits_add[key].pop(buyer, None)
                writes.waits_remove[key].add(buyer)
        for _ in range(draw(st.integers(0, 4))):
            shop, agent = pick()
            key = keys.details_key(shop, agent, draw(st.integers(0, 3)))
            writes.details[key][draw(ids)] = draw(rows)
            writes.expire_at_ms[key] = draw(expiries)
        for _ in range(draw(st.integers(0, 3))):
            shop, agent = pick()
            writes.agents_seen[shop][agent] = draw(amounts)
        batch.append((draw(st.integers(0, 3)), draw(st.integers(0, 2**64 - 1)), writes))
    return batch


@needs_native
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_native_equals_reference_on_generated_write_sets(batch: list[tuple[int, int, WriteSet]]) -> None:
    assert_same(batch)


@needs_native
def test_the_native_path_is_the_one_under_test() -> None:
    writes = WriteSet()
    writes.increment(keys.histogram_key("s", "a"), "1", 1, 10)
    entry = outbox.commit_entry(0, 1, writes)
    assert type(entry).__name__ == "NativeEntry"
    assert outbox.entry_calls([entry])  # type: ignore[list-item]


@needs_native
def test_an_empty_write_set_has_no_entry() -> None:
    assert under_test([(0, 1, WriteSet())]) == reference([(0, 1, WriteSet())]) == ([None], [])
    zeros = WriteSet()  # counters that cancelled out, waits that were added then removed
    zeros.increment(keys.histogram_key("s", "a"), "sum", 0, 10)
    assert outbox.commit_entry(0, 1, zeros) is None


@needs_native
@pytest.mark.parametrize("length", [31, 32, 255, 256, 65_535, 65_536])
def test_long_keys_and_rows_cross_every_length_form(length: int) -> None:
    """str: fixstr / str8 / str16 / str32; bin: bin8 / bin16 / bin32; arrays and maps past 15 and
    65,535 entries (array16, map16 and their 32-bit forms)."""
    writes = WriteSet()
    shop = "店" * (length // 3) + "s" * (length % 3)  # the key's byte length, not its characters
    key = keys.details_key(shop, "a", 1)
    writes.details[key]["r"] = b"\x00" * length
    writes.details[key]["gone"] = None
    writes.expire_at_ms[key] = 2**40
    counter = keys.histogram_key(shop, "a")
    for i in range(min(length, 70_000) // 3000 + 17):
        writes.increment(counter, f"f{i}", i - 8, 99)
    writes.agents_seen[shop]["a"] = -5
    assert_same([(1, 2, writes)])


@needs_native
def test_many_fields_use_the_16_and_32_bit_array_and_map_forms() -> None:
    writes = WriteSet()
    counter = keys.histogram_key("s", "a")
    for i in range(70_000):
        writes.increment(counter, str(i), i + 1, 99)
    assert_same([(0, 5, writes)])


@needs_native
def test_waits_added_and_removed_for_the_same_key_and_across_partitions() -> None:
    batch = []
    for partition in (2, 0, 2):  # the same agent in several entries, applied in (partition, position) order
        writes = WriteSet()
        key = keys.waiting_key("商店", "客服🙂")
        writes.expire_at_ms[key] = 2**63 - 1
        writes.waits_add[key]["买家"] = -(2**63)
        writes.waits_remove[key].update({"z", "a", "买家2"})
        writes.waits_remove[keys.waiting_key("商店", "b")].add("x")
        writes.expire_at_ms[keys.waiting_key("商店", "b")] = 1
        writes.agents_seen["商店"]["客服🙂"] = 2**32 + partition
        batch.append((partition, 100 - partition, writes))
    assert_same(batch)


@needs_native
def test_a_missing_expiry_fails_like_the_reference() -> None:
    writes = WriteSet()
    writes.increments[keys.histogram_key("s", "a")]["x"] = 1  # no expiry: a bug upstream
    with pytest.raises(KeyError):
        outbox.from_writes(0, 1, writes)
    with pytest.raises(KeyError):
        outbox.commit_entry(0, 1, writes)


def old_blob(partition: int, position: int) -> bytes:
    """An entry of a worker from before AgentShare had `details`: shares of two fields."""
    agent = keys.agent_tag("s", "a")
    share = [[[f"{agent}:h", 99, {"sum": 5}]], [[f"{agent}:w", 77, ["b"], {"c": 3}]]]
    return msgspec.msgpack.encode([partition, position, {agent: share}, [["kp:shops", {"s": 9}]]])


def test_old_two_field_entries_drain_through_the_reference() -> None:
    blob = old_blob(4, 7)
    entry = outbox.read_entry(blob)
    assert (entry.partition, entry.position) == (4, 7)
    assert calls_of(outbox.entry_calls([entry], 12_345)) == calls_of(
        outbox.apply_calls([outbox.decode(blob)], 12_345)
    )


def test_fresh_and_drained_entries_apply_together() -> None:
    writes = WriteSet()
    writes.increment(keys.histogram_key("s", "a"), "sum", 2, 99)
    fresh = outbox.commit_entry(0, 3, writes)
    assert fresh is not None
    mixed: list[Entry] = [fresh, outbox.read_entry(old_blob(0, 2))]
    expected = outbox.apply_calls([outbox.decode(e.blob) for e in mixed], 12_345)
    assert calls_of(outbox.entry_calls(mixed, 12_345)) == calls_of(expected)


@needs_native
def test_the_comparison_catches_one_wrong_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """The differential can fail: one byte changed in the native blob is seen."""
    writes = WriteSet()
    writes.increment(keys.histogram_key("s", "a"), "sum", 256, 99)  # uint16: 0xcd 0x01 0x00
    entry = outbox.commit_entry(0, 1, writes)
    assert entry is not None
    wrong = entry.blob.replace(b"\xcd\x01\x00", b"\xcc\xff")  # what a wrong uint8 branch would write
    assert wrong != entry.blob
    corrupted = outbox.ReferenceEntry(outbox.decode(wrong), wrong)
    monkeypatch.setattr(outbox, "commit_entry", lambda p, at, w: corrupted)
    with pytest.raises(AssertionError):
        assert_same([(0, 1, writes)])


def write_build(directory: Path, sources: Path) -> None:
    (sources / "src").mkdir(parents=True)
    (sources / "Cargo.toml").write_text("[package]\n")
    (sources / "Cargo.lock").write_text("version = 3\n")
    (sources / "src" / "lib.rs").write_text("// one\n")
    (sources / "target").mkdir()
    (sources / "target" / "junk").write_text("not a source")
    directory.mkdir()
    native.module_file(directory).write_bytes(b"")
    manifest = {
        "digest": sources_digest(native.build_sources(sources), sources),
        "interpreter": interpreter_tag(),
    }
    (directory / native.MANIFEST).write_text(json.dumps(manifest))


def test_a_build_is_used_only_while_native_sources_match_it(tmp_path: Path) -> None:
    directory, sources = tmp_path / "build", tmp_path / "native"
    write_build(directory, sources)
    assert native.build_sources(sources) == ["Cargo.lock", "Cargo.toml", "src/lib.rs"]
    assert native.check_build(directory, sources) is None
    (sources / "target" / "junk").write_text("cargo's output changes nothing")
    assert native.check_build(directory, sources) is None
    (sources / "Cargo.lock").write_text("version = 4\n")
    assert "stale" in str(native.check_build(directory, sources))
    (sources / "Cargo.lock").write_text("version = 3\n")
    (sources / "src" / "new.rs").write_text("// a file the build would read\n")
    assert "stale" in str(native.check_build(directory, sources))


def test_a_build_for_another_python_or_without_its_module_is_refused(tmp_path: Path) -> None:
    directory, sources = tmp_path / "build", tmp_path / "native"
    write_build(directory, sources)
    native.module_file(directory).unlink()
    assert "lacks" in str(native.check_build(directory, sources))
    (directory / native.MANIFEST).write_text(json.dumps({"interpreter": "cpython-399"}))
    assert "another Python" in str(native.check_build(directory, sources))
    assert "no native build" in str(native.check_build(tmp_path / "none", sources))


def test_require_refuses_a_build_that_does_not_load(tmp_path: Path) -> None:
    """A build whose manifest matches but whose module does not import is no build: `./test`'s
    `--require` must stop there, not let every native test skip."""
    directory, sources = tmp_path / "build", tmp_path / "native"
    write_build(directory, sources)  # an empty extension file, with a matching manifest
    assert native.check_build(directory, sources) is None
    env = dict(os.environ, **{native.DIR_ENV: str(directory), native.SOURCES_ENV: str(sources)})
    tool = Path(__file__).resolve().parents[3] / "tools" / "build_native.py"
    required = subprocess.run(
        [sys.executable, str(tool), "--require"], env=env, capture_output=True, text=True, timeout=60
    )
    assert required.returncode == 1
    assert "does not load" in required.stderr
