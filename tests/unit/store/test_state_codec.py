"""Stored buyer states across layouts: v1 (before refunds) and v2 (before ratings) decode."""

from __future__ import annotations

import msgspec

from agents.core.buyer import BuyerState, Consultation, OrderState
from agents.store.state_codec import decode_state, encode_state

# A v1 state as a v1 worker wrote it (layout tag 1); its orders were
# [order_id, created, paid, cancelled, amount_fen].
V1_ORDER = ["T1", 1_000, 2_000, None, 19_900]
V1_STATE = [1, 2_500, [["s1:a", 739_000, 900, 950]], {"s1:a": 2_400}, [V1_ORDER], {7: 2_000}]


def test_a_v1_state_decodes_with_no_refunds() -> None:
    state = decode_state(msgspec.msgpack.encode(V1_STATE))
    assert state.orders == [OrderState("T1", 1_000, 2_000, None, 19_900)]
    order = state.orders[0]
    assert (order.refunded, order.refunded_fen, order.refunded_fully, order.refund_fen) == (None, 0, False, 0)
    assert state.consultations == [Consultation("s1:a", 739_000, 900, 950)]


def test_an_untagged_v1_state_decodes_too() -> None:
    assert decode_state(msgspec.msgpack.encode(V1_STATE[1:])) == decode_state(
        msgspec.msgpack.encode(V1_STATE)
    )


def test_a_v2_state_keeps_its_refunds_through_the_store() -> None:
    state = BuyerState(orders=[OrderState("T1", 1, 2, None, 500, 9, 120, False)])
    assert decode_state(encode_state(state)) == state
    assert state.copy() == state and state.copy().orders[0] is not state.orders[0]


def test_a_v2_consultation_decodes_unrated_and_a_v3_rating_survives_the_store() -> None:
    old = decode_state(msgspec.msgpack.encode(V1_STATE))
    assert (old.consultations[0].rating, old.consultations[0].rated_at) == (None, None)
    state = BuyerState(consultations=[Consultation("s1:a", 739_000, 900, 950, 4, 1_200)])
    assert decode_state(encode_state(state)) == state
    copied = state.copy()
    assert copied == state and copied.consultations[0] is not state.consultations[0]
