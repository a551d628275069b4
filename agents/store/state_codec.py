"""A buyer's state as stored: msgpack of `BuyerState`, tagged with its layout version.

The layout is the structs' field order (agents/core/buyer.py). States written before the
layout was versioned carry no tag but have the same fields: they are read by adding it.
"""

from __future__ import annotations

import msgspec

from agents.core.buyer import STATE_LAYOUT, BuyerState

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(BuyerState)


def encode_state(state: BuyerState) -> bytes:
    return _encoder.encode(state)


def decode_state(blob: bytes | None) -> BuyerState:
    if blob is None:
        return BuyerState()
    try:
        return _decoder.decode(blob)
    except msgspec.ValidationError:
        untagged = msgspec.msgpack.decode(blob, type=list)
        return _decoder.decode(_encoder.encode([STATE_LAYOUT, *untagged]))
