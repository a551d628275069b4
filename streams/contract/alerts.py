"""Alert events as they travel on `kefu.alerts` (metrics.md), typed for their readers.

The writer is agents/core/alerts.py (`AlertEvent.as_json`); `notify` reads them back here. One
msgspec pass decodes and validates; a record that is not an alert event is a `BadAlert` with the
reason, never a half-filled event.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from config.errors import KefuError

AlertState = Literal["firing", "resolved"]
WAITING = "BuyerWaitingTooLong"
FIRST_RESPONSE = "FirstResponseSlow"


class BadAlert(KefuError, ValueError):
    """A record on the alerts topic that is not an alert event; the message says why."""


class AlertEvent(Struct, frozen=True, kw_only=True):
    alert: Annotated[str, Meta(min_length=1)]
    state: AlertState
    shop_id: Annotated[str, Meta(min_length=1)]
    agent_id: Annotated[str, Meta(min_length=1)]
    value: float  # seconds: the oldest wait, or the 5-minute first-response average
    threshold: float  # seconds
    ts: Annotated[int, Meta(ge=0)]  # ms since the epoch
    alert_id: Annotated[str, Meta(min_length=1)]


_decoder = msgspec.json.Decoder(AlertEvent)


def decode_alert(data: bytes) -> AlertEvent:
    """One `kefu.alerts` record's value as an `AlertEvent`, or `BadAlert` with the reason."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise BadAlert(f"not an alert event: {exc}") from None
