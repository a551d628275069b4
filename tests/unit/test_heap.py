"""The worker's use of the garbage collector (agents/worker/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agents.worker import heap


@pytest.fixture
def collector() -> Iterator[None]:
    """Leave the test process's collector as it was found."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_full_collections_come_ten_times_less_often(collector: None) -> None:
    young, middle, _ = gc.get_threshold()
    heap.configure()
    assert gc.get_threshold() == (young, middle, heap.FULL_COLLECTION_EVERY)
    assert heap.FULL_COLLECTION_EVERY == 10 * 10  # CPython's default is 10


def test_what_lives_at_start_up_leaves_the_collectors_walk(collector: None) -> None:
    kept = [[n] for n in range(1000)]  # containers the collector would walk
    assert gc.is_tracked(kept[0])
    frozen = heap.settle()
    assert frozen >= len(kept) == 1000
    assert gc.get_freeze_count() == frozen
    # A full collection now walks only what came after: none of these.
    tracked_after = {id(o) for o in gc.get_objects()}
    assert not any(id(item) in tracked_after for item in kept)


def test_a_worker_process_settles_once_at_its_first_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.worker.runtime import Runtime

    calls: list[str] = []

    def settle() -> int:
        calls.append("settled")
        return 0

    monkeypatch.setattr(heap, "settle", settle)
    runtime = object.__new__(Runtime)  # only the flag matters here
    runtime.settle_heap = True
    runtime._settle_heap()
    runtime._settle_heap()
    assert calls == ["settled"] and runtime.settle_heap is False
