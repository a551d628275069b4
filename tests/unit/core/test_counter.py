"""The cohort vector's layout: one definition names each counter, its slot and its Redis field."""

from __future__ import annotations

import pytest

from agents.core.projection import DAY_FIELDS, FIELD_NAMES, WIDTH, Counter, replied_within
from config.settings import MAX_RESPONSE_TARGETS


def test_the_redis_field_names_never_change() -> None:
    # Stored data: a renamed or moved field would read every existing bucket wrong.
    assert FIELD_NAMES == (
        "c", "r", "fs", "wn", "ws", "i", "o", "p", "y", "n", "sn", "sy",
        "rf", "a", "ay", "w0", "w1", "w2", "w3", "rt", "st", "dt", "sc",
    )  # fmt: skip
    assert DAY_FIELDS[:WIDTH] == FIELD_NAMES


def test_each_counter_indexes_its_own_field() -> None:
    assert WIDTH == len(Counter) == 23
    assert [FIELD_NAMES[counter] for counter in Counter] == [counter.field for counter in Counter]
    assert (Counter.PAID, Counter.PAID.field) == (7, "p")
    vector = [0] * WIDTH
    vector[Counter.SALES_FEN] = 1990
    assert dict(zip(FIELD_NAMES, vector, strict=True))["y"] == 1990


def test_there_is_one_replied_within_slot_per_allowed_response_target() -> None:
    slots = [replied_within(slot) for slot in range(MAX_RESPONSE_TARGETS)]
    assert [counter.field for counter in slots] == [f"w{slot}" for slot in range(MAX_RESPONSE_TARGETS)]
    assert [int(counter) for counter in slots] == list(range(slots[0], slots[0] + MAX_RESPONSE_TARGETS))
    assert slots[-1] + 1 == Counter.RATED


@pytest.mark.parametrize("slot", [-1, MAX_RESPONSE_TARGETS])
def test_a_slot_past_the_targets_is_no_counter(slot: int) -> None:
    with pytest.raises(IndexError):
        replied_within(slot)
