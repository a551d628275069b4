from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.exposure.floor import mask_buyer


@pytest.mark.parametrize(
    ("buyer", "masked"),
    [
        ("a", "***"),
        ("ab", "***"),
        ("abc", "***c"),
        ("abcde", "***e"),  # was `abc***e`: four of five characters shown
        ("tb_9f2", "t***2"),
        ("abcdefghi", "ab***i"),
        ("tb_9f2c8a41d", "tb_***d"),  # the longest form events.md allows: `tb_***2`
    ],
)
def test_buyers_are_masked_to_at_most_a_third(buyer: str, masked: str) -> None:
    assert mask_buyer(buyer) == masked


@given(st.text(min_size=1, max_size=128))
def test_a_mask_shows_at_most_a_third_and_at_most_four_characters(buyer: str) -> None:
    shown = len(mask_buyer(buyer)) - len("***")
    assert shown <= min(4, len(buyer) // 3)
    assert mask_buyer(buyer).endswith(buyer[-1] if shown else "***")
