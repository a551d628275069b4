"""Decode one `kefu.agents` record into an AgentStatus, or a Rejection with a bounded reason.

The same reasons and checks as the buyer topics (decoding.py): too large, not UTF-8, invalid
JSON, a missing field or a wrong type, an unknown `status` (`unknown_status`), a `ts` too far
ahead, and a key that is not `shop_id:agent_id` of its value (`bad_key`).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from streams.contract.events import AgentStatus
from streams.wire.decoding import MAX_RECORD_BYTES, Reason, Rejection, decode_value


class _Kind(msgspec.Struct):
    """The `type` field alone: a tagged struct decoded on its own would accept a record without it."""

    type: Literal["agent_status"]


class StatusDecoder:
    """Stateless apart from its msgspec decoder; one instance serves a whole worker."""

    def __init__(self, future_tolerance_ms: int = 300_000, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self._decoder = msgspec.json.Decoder(AgentStatus)
        self._kind = msgspec.json.Decoder(_Kind)
        self.future_tolerance_ms = future_tolerance_ms
        self.max_record_bytes = max_record_bytes

    def _status(self, value: bytes) -> AgentStatus:
        self._kind.decode(value)  # `type` first: a record without it is refused
        return self._decoder.decode(value)

    def decode(self, value: bytes | None, key: bytes | None, now_ms: int) -> AgentStatus | Rejection:
        event = decode_value(value, self.max_record_bytes, self._status)
        if isinstance(event, Rejection):
            return event
        if event.ts > now_ms + self.future_tolerance_ms:
            return Rejection(Reason.FUTURE_TS, f"ts {event.ts} is more than the tolerance ahead of {now_ms}")
        if key is None:
            return Rejection(Reason.BAD_KEY, "record has no key; expected shop_id:agent_id")
        if key != f"{event.shop_id}:{event.agent_id}".encode():
            return Rejection(Reason.BAD_KEY, "record key is not shop_id:agent_id of its value")
        return event
