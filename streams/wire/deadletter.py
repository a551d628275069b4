"""The dead-letter record of events.md: reason, topic, partition, offset, raw value."""

from __future__ import annotations

import msgspec

from streams.wire.decoding import Rejection

_encoder = msgspec.json.Encoder()
# A dead letter must fit in a Kafka record whatever it carries: `raw` keeps at most this much.
RAW_LIMIT_BYTES = 64 * 1024


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
        detail = rejection.detail
        if value is not None and len(value) > RAW_LIMIT_BYTES:
            detail = f"{detail}; raw holds its first {RAW_LIMIT_BYTES} of {len(value)} bytes"
            value = value[:RAW_LIMIT_BYTES]
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
