"""Decode one Kafka record into an event, or into a rejection with a bounded reason.

Every reason here is a label value of `kefu_events_rejected_total{reason}`, so the set is
closed; the human-readable `detail` goes only to the dead-letter record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

import msgspec

from config.settings import ProcessingSettings
from streams.contract.events import Event, Message, Order, Transfer, WireEvent, WireOrder


class Reason(StrEnum):
    NOT_UTF8 = "not_utf8"
    INVALID_JSON = "invalid_json"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_SENDER = "unknown_sender"
    UNKNOWN_STATUS = "unknown_status"
    BAD_AMOUNT = "bad_amount"
    FUTURE_TS = "future_ts"
    BAD_KEY = "bad_key"
    TOO_LARGE = "too_large"


class Rejection(msgspec.Struct, frozen=True):
    reason: Reason
    detail: str


MAX_RECORD_BYTES = ProcessingSettings().max_record_bytes
T = TypeVar("T")

_AMOUNT_TEXT = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
_AMOUNT_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_ENUM_FIELD_REASONS = {
    "`$.type`": Reason.UNKNOWN_TYPE,
    "`$.sender`": Reason.UNKNOWN_SENDER,
    "`$.status`": Reason.UNKNOWN_STATUS,
}


def _classify(error: msgspec.ValidationError) -> Reason:
    """The closed reason for what msgspec refused (one label value of the rejected counter)."""
    text = str(error)
    if text.startswith("Object missing required field"):
        return Reason.MISSING_FIELD
    if text.startswith("Invalid enum value") or text.startswith("Invalid value"):
        for suffix, reason in _ENUM_FIELD_REASONS.items():
            if text.endswith(suffix):
                return reason
        return Reason.INVALID_VALUE
    if "got `" in text or text.startswith("Expected `str` - at `$.type`"):
        return Reason.WRONG_TYPE
    return Reason.INVALID_VALUE


# No order reaches 100,000,000 yuan (一亿); past it an amount is a producer's mistake. The cap
# also keeps every sum exact: Redis's Lua holds numbers as doubles (exact to 2**53 fen), and
# apply_agent.lua and the window reads add amounts there. At the cap, one agent's day takes
# 900,000 such orders to reach 2**53, and a batch's delta stays far below it. Amounts of 10**13
# yuan, accepted before, lost fen in a sum of ten, and a hundred in one batch stopped the worker.
MAX_AMOUNT_FEN = 10**10 - 1


def amount_to_fen(raw: bytes) -> int | None:
    """Exact yuan → fen for a JSON string or number; None when it breaks the contract (not a
    non-negative decimal of at most 2 places, or past MAX_AMOUNT_FEN)."""
    if raw.startswith(b'"'):
        text = raw[1:-1].decode("utf-8", "replace")
        if not _AMOUNT_TEXT.match(text):
            return None
        return _fen_from_plain_decimal(text)
    text = raw.decode("ascii", "replace")
    if not _AMOUNT_NUMBER.match(text):
        return None  # negative, null, a bool or anything else that is not a plain number
    if "e" in text or "E" in text:
        return _fen_from_exponent(text)
    return _fen_from_plain_decimal(text)


def _fen_from_exponent(text: str) -> int | None:
    from decimal import Context, Decimal, DecimalException

    try:
        amount = Decimal(text)  # exact: a Decimal made from text is never rounded
        # Far past any price, either way: 1e999999 * 100 overflows the decimal context, and
        # 1e-999999999 * 100 underflows to a silent 0.
        if amount and not -20 <= amount.adjusted() <= 20:
            return None
        # Exact too: the default context's 28 digits rounded 1.0000000000000000000000000001e2
        # to 10000 fen, an amount of more than 2 places taken as one of 2.
        cents = Context(prec=len(text) + 3).multiply(amount, 100)
    except DecimalException:
        return None
    if cents != cents.to_integral_value() or cents > MAX_AMOUNT_FEN:
        return None
    return int(cents)


def _fen_from_plain_decimal(text: str) -> int | None:
    whole, _, fraction = text.partition(".")
    whole = whole.lstrip("0")  # "0000199.00" is 199 yuan, as the schema's pattern allows
    fraction = fraction.rstrip("0") if len(fraction) > 2 else fraction
    if len(fraction) > 2 or len(whole) > len(str(MAX_AMOUNT_FEN)):
        return None
    fen = int(whole or "0") * 100 + int(fraction.ljust(2, "0") or "0")
    return fen if fen <= MAX_AMOUNT_FEN else None


def decode_value(value: bytes | None, max_record_bytes: int, decode: Callable[[bytes], T]) -> T | Rejection:
    """`decode(value)`, or what any input record is rejected for before its meaning is judged:
    no value, too large (not decoded), not UTF-8, invalid JSON, a field msgspec refused."""
    if value is None:
        return Rejection(Reason.INVALID_JSON, "record has no value (tombstone)")
    if len(value) > max_record_bytes:
        return Rejection(
            Reason.TOO_LARGE,
            f"{len(value)} bytes, more than processing.max_record_bytes = {max_record_bytes}",
        )
    # msgspec checks UTF-8 only in the strings it decodes, not in the fields it skips; JSON text
    # is UTF-8 (RFC 8259), so a value that is not is rejected whole. ASCII needs no look.
    if not value.isascii():
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return Rejection(Reason.NOT_UTF8, "value is not UTF-8")
    try:
        return decode(value)
    except msgspec.ValidationError as exc:
        return Rejection(_classify(exc), str(exc))
    except RecursionError:  # msgspec recurses into unknown fields it skips, too
        return Rejection(Reason.INVALID_JSON, "JSON nested too deeply")
    except msgspec.DecodeError as exc:
        return Rejection(Reason.INVALID_JSON, str(exc))


class EventDecoder:
    """Stateless apart from its msgspec decoder; one instance serves a whole worker."""

    def __init__(self, future_tolerance_ms: int = 300_000, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self._decoder: msgspec.json.Decoder[WireEvent] = msgspec.json.Decoder(WireEvent)
        self.future_tolerance_ms = future_tolerance_ms
        self.max_record_bytes = max_record_bytes

    def decode(self, value: bytes | None, key: bytes | None, now_ms: int) -> Event | Rejection:
        wire = decode_value(value, self.max_record_bytes, self._decoder.decode)
        if isinstance(wire, Rejection):
            return wire
        if wire.ts > now_ms + self.future_tolerance_ms:
            return Rejection(Reason.FUTURE_TS, f"ts {wire.ts} is more than the tolerance ahead of {now_ms}")
        if key is not None and key != f"{wire.shop_id}:{wire.buyer_id}".encode():
            return Rejection(Reason.BAD_KEY, "record key is not shop_id:buyer_id of its value")
        if key is None:
            return Rejection(Reason.BAD_KEY, "record has no key; expected shop_id:buyer_id")
        if type(wire) is WireOrder:
            return _order_from_wire(wire)
        return wire  # type: ignore[return-value]


def _order_from_wire(wire: WireOrder) -> Order | Rejection:
    amount_fen: int | None = None
    raw_amount = bytes(wire.amount)
    if raw_amount and raw_amount != b"null":
        amount_fen = amount_to_fen(raw_amount)
        if amount_fen is None:
            return Rejection(
                Reason.BAD_AMOUNT,
                "amount must be a non-negative decimal with at most 2 places, under 100,000,000 yuan",
            )
    elif wire.status in ("created", "paid"):
        return Rejection(
            Reason.MISSING_FIELD, f"Object missing required field `amount` (status {wire.status})"
        )
    return Order(
        event_id=wire.event_id,
        shop_id=wire.shop_id,
        buyer_id=wire.buyer_id,
        ts=wire.ts,
        order_id=wire.order_id,
        status=wire.status,
        amount_fen=amount_fen,
    )


__all__ = ["EventDecoder", "Message", "Reason", "Rejection", "Transfer"]
