"""The dead-letter record of events.md: reason, topic, partition, offset, raw value."""

from __future__ import annotations

import msgspec

from streams.wire.decoding import Rejection

_encoder = msgspec.json.Encoder()
# A dead letter must fit in a Kafka record whatever it carries (the producer refuses one over
# 1,000,000 bytes, and a refused dead letter stops the worker on that record at every restart):
# `raw` keeps at most this much, which JSON-escapes to at most six times as many bytes (a
# control byte is `\u00XX`);
RAW_LIMIT_BYTES = 64 * 1024
# the key at most this much (a valid one is at most (64 + 1 + 128) characters of 4 bytes);
KEY_LIMIT_BYTES = 1024
# and the detail at most this many characters.
DETAIL_LIMIT = 2048


class DeadLetter(msgspec.Struct, frozen=True):
    reason: str
    topic: str
    partition: int
    offset: int
    raw: str
    detail: str
    key: bytes | None = None

    @classmethod
    def of(
        cls,
        rejection: Rejection,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
    ) -> DeadLetter:
        detail = rejection.detail[:DETAIL_LIMIT]
        if value is not None and len(value) > RAW_LIMIT_BYTES:
            detail = f"{detail}; raw holds its first {RAW_LIMIT_BYTES} of {len(value)} bytes"
            value = value[:RAW_LIMIT_BYTES]
        if key is not None and len(key) > KEY_LIMIT_BYTES:
            detail = f"{detail}; the key holds its first {KEY_LIMIT_BYTES} of {len(key)} bytes"
            key = key[:KEY_LIMIT_BYTES]
        raw = "" if value is None else value.decode("utf-8", "backslashreplace")
        return cls(rejection.reason.value, topic, partition, offset, raw, detail, key)

    def payload(self) -> bytes:
        """The JSON value written to the dead-letter topic (the key travels as the record key)."""
        return _encoder.encode(
            {
                "reason": self.reason,
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "raw": self.raw,
                "detail": self.detail,
            }
        )
