"""Every bad-input case of events.md, and arbitrary bytes never escaping the decoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contract.events import Message, Order, Rating, Transfer
from streams.wire.decoding import EventDecoder, Reason, Rejection, amount_to_fen
from tests.builders import wire_message

NOW = 1_764_000_000_000
KEY = b"s1:b1"
decoder = EventDecoder(future_tolerance_ms=300_000)


def message(**changes: object) -> bytes:
    event = wire_message(ts=NOW) | changes
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def order(**changes: object) -> bytes:
    event = {
        "event_id": "o1",
        "type": "order",
        "shop_id": "s1",
        "buyer_id": "b1",
        "order_id": "T1",
        "status": "paid",
        "amount": "199.00",
        "ts": NOW,
    }
    event.update(changes)
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def test_valid_events_decode_to_their_types() -> None:
    assert decoder.decode(message(), KEY, NOW) == Message("m1", "s1", "b1", NOW, "s1:a", "buyer", False)
    assert decoder.decode(message(auto_reply=True, sender="agent"), KEY, NOW).auto_reply is True  # type: ignore[union-attr]
    transfer = json.dumps(
        {
            "event_id": "t1",
            "type": "transfer",
            "shop_id": "s1",
            "buyer_id": "b1",
            "from_agent": "s1:a",
            "to_agent": "s1:b",
            "ts": NOW,
        }
    ).encode()
    # Every field where it belongs: a swapped from_agent / to_agent would move waits backwards.
    assert decoder.decode(transfer, KEY, NOW) == Transfer("t1", "s1", "b1", NOW, "s1:a", "s1:b")
    assert decoder.decode(order(), KEY, NOW) == Order("o1", "s1", "b1", NOW, "T1", "paid", 19900)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe{", Reason.NOT_UTF8),
        # In a field msgspec skips (unknown), where it does not look: JSON text is UTF-8.
        (message().replace(b"}", b', "note": "\xff\xfe"}'), Reason.NOT_UTF8),
        (message().replace(b"}", b', "\xff": 1}'), Reason.NOT_UTF8),
        (b"{not json", Reason.INVALID_JSON),
        (b"", Reason.INVALID_JSON),
        (b"[1, 2]", Reason.WRONG_TYPE),
        (message(event_id=...), Reason.MISSING_FIELD),
        (message(agent_id=...), Reason.MISSING_FIELD),
        (message(ts=...), Reason.MISSING_FIELD),
        (message(type=...), Reason.MISSING_FIELD),
        (message(ts="1764000000000"), Reason.WRONG_TYPE),
        (message(ts=1.5), Reason.WRONG_TYPE),
        (message(ts=True), Reason.WRONG_TYPE),
        (message(auto_reply="yes", sender="agent"), Reason.WRONG_TYPE),
        (message(type=5), Reason.WRONG_TYPE),
        (message(type="chat"), Reason.UNKNOWN_TYPE),
        (message(sender="robot"), Reason.UNKNOWN_SENDER),
        (order(status="shipped"), Reason.UNKNOWN_STATUS),
        (message(event_id=""), Reason.INVALID_VALUE),
        (message(shop_id="x" * 65), Reason.INVALID_VALUE),
        (message(ts=-1), Reason.INVALID_VALUE),
        (order(amount="-1.00"), Reason.BAD_AMOUNT),
        (order(amount=-3), Reason.BAD_AMOUNT),
        (order(amount="12.345"), Reason.BAD_AMOUNT),
        (order(amount="1e3"), Reason.BAD_AMOUNT),
        (order(amount="abc"), Reason.BAD_AMOUNT),
        (order(amount=True), Reason.BAD_AMOUNT),
        (order(amount=...), Reason.MISSING_FIELD),
        (order(status="created", amount=...), Reason.MISSING_FIELD),
        (message(ts=NOW + 300_001), Reason.FUTURE_TS),
    ],
)
def test_bad_input_is_rejected_with_its_reason(value: bytes, reason: Reason) -> None:
    decoded = decoder.decode(value, KEY, NOW)
    assert isinstance(decoded, Rejection), decoded
    assert decoded.reason is reason, decoded.detail


def test_ts_at_the_future_tolerance_is_accepted() -> None:
    decoded = decoder.decode(message(ts=NOW + 300_000), KEY, NOW)
    assert isinstance(decoded, Message) and decoded.ts == NOW + 300_000
    late = decoder.decode(message(ts=NOW + 300_001), KEY, NOW)
    assert isinstance(late, Rejection) and late.reason is Reason.FUTURE_TS


@pytest.mark.parametrize("key", [None, b"s1:other", b"s1"])
def test_key_must_be_shop_colon_buyer(key: bytes | None) -> None:
    decoded = decoder.decode(message(), key, NOW)
    assert isinstance(decoded, Rejection) and decoded.reason is Reason.BAD_KEY


def test_amount_is_optional_for_cancel_and_refund() -> None:
    for status in ("cancelled", "refunded"):
        decoded = decoder.decode(order(status=status, amount=...), KEY, NOW)
        assert isinstance(decoded, Order) and decoded.amount_fen is None
    decoded = decoder.decode(order(status="cancelled", amount=None), KEY, NOW)
    assert isinstance(decoded, Order) and decoded.amount_fen is None


@pytest.mark.parametrize(
    ("raw", "fen"),
    [
        (b'"199.00"', 19900),
        (b'"0"', 0),
        (b'"0.5"', 50),
        (b"199.99", 19999),
        (b"1e2", 10000),
        (b"0.1", 10),
        (b"12", 1200),
        (b"199.990", 19999),
        (b'"1.5.1"', None),
        (b"1.001", None),
        (b'" 1"', None),
        # Past the decimal context's exponent range: a rejection, never an exception that
        # stops the worker on the same record at every restart.
        (b"1e400", None),
        (b"1e999999", None),
        (b"1e999999999", None),
        (b"1e-999999999", None),
        (b"1E+999999999999999999", None),
        # More than 2 places, past the default decimal context's 28 digits: never rounded in.
        (b"1.0000000000000000000000000001e2", None),
        (b"12345.000000000000000000000000001e-2", None),
        (b"1.2345e2", 12345),
        # Leading zeros, as the schema's pattern allows.
        (b'"0000000000000199.00"', 19900),
        (b'"00000000000000.50"', 50),
        (b"000199.5", 19950),
        # Under 100,000,000 yuan: the largest amount, and the first one refused, in every form.
        (b'"99999999.99"', 9_999_999_999),
        (b"99999999.99", 9_999_999_999),
        (b"9.999999999e7", 9_999_999_999),
        (b'"100000000"', None),
        (b"100000000.00", None),
        (b"1e8", None),
        (b'"9999999999999.99"', None),
    ],
)
def test_amount_to_fen_is_exact(raw: bytes, fen: int | None) -> None:
    assert amount_to_fen(raw) == fen


@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=20)))
def test_arbitrary_bytes_never_raise(value: bytes, key: bytes | None) -> None:
    assert isinstance(decoder.decode(value, key, NOW), (Message, Transfer, Order, Rejection))


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "event_id",
                "type",
                "shop_id",
                "buyer_id",
                "ts",
                "agent_id",
                "sender",
                "auto_reply",
                "order_id",
                "status",
                "amount",
                "from_agent",
                "to_agent",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=5),
            st.sampled_from(["message", "order", "transfer", "buyer", "paid"]),
        ),
    )
)
def test_arbitrary_objects_never_raise(event: dict[str, object]) -> None:
    value = json.dumps(event).encode()
    assert isinstance(decoder.decode(value, KEY, NOW), (Message, Transfer, Order, Rejection))


def rating(**changes: object) -> bytes:
    event = {"event_id": "r1", "type": "rating", "shop_id": "s1", "buyer_id": "b1", "agent_id": "s1:a"}
    event |= {"score": 5, "ts": NOW} | changes
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def test_a_rating_decodes_and_a_bad_one_is_rejected_with_its_reason() -> None:
    assert decoder.decode(rating(score=4), KEY, NOW) == Rating("r1", "s1", "b1", NOW, "s1:a", 4)
    for value, reason in (
        (rating(score=0), Reason.INVALID_VALUE),
        (rating(score=6), Reason.INVALID_VALUE),
        (rating(score="5"), Reason.WRONG_TYPE),
        (rating(score=4.5), Reason.WRONG_TYPE),
        (rating(score=...), Reason.MISSING_FIELD),
        (rating(agent_id=...), Reason.MISSING_FIELD),
        (rating(agent_id=""), Reason.INVALID_VALUE),
    ):
        decoded = decoder.decode(value, KEY, NOW)
        assert isinstance(decoded, Rejection) and decoded.reason is reason, (value, decoded)
    assert decoder.decode(rating(), b"s1:b2", NOW) == Rejection(
        Reason.BAD_KEY, "record key is not shop_id:buyer_id of its value"
    )
