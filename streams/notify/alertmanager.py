"""Alertmanager's webhook (payload version 4) into alert events for the dispatcher.

Prometheus rule alerts reach the same group robots as the worker's `kefu.alerts` events:
Alertmanager posts to `notify`'s `POST /alertmanager`, each alert of the payload becomes a
`RuleAlert`, and the dispatcher claims, folds, holds and retries it like any record.

- `alert_id` is `am|{fingerprint}|{startsAt}`: Alertmanager repeats a firing alert every
  `repeat_interval` with the same fingerprint and start, so the ledger drops the repeats;
  the next episode starts at another time and is news again.
- An alert without a `shop` label (worker health) goes to shop "": the `defaults` channels.
- The rules' copies of the worker's own alerts (`BuyerWaitingTooLong`, `FirstResponseSlow`)
  are left out: notify has each of their episodes from `kefu.alerts` already, at the crossing
  itself, and a rule's `alert_id` can never match the worker's, so the ledger would let the
  group have both (two notices per episode, and two 已恢复 at different times).
- Our rules put no number in labels or annotations; `value` and `threshold` are read from
  them when present (a label or annotation of that name), else 0, and the notice words the
  annotation `summary` instead (notices.rule_notice).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware
from msgspec import Struct, field

from config.access import is_loopback, secret_matches
from config.errors import KefuError
from config.secret import Secret
from config.settings import ConfigError, WebSettings
from streams.contract.alerts import FIRST_RESPONSE, WAITING, AlertEvent

# The worker's own alerts: notify has them from kefu.alerts (see above).
log = logging.getLogger("kefu.notify")
FROM_KEFU_ALERTS = frozenset((WAITING, FIRST_RESPONSE))
MAX_BODY_BYTES = 1024 * 1024  # Alertmanager's payloads are a few KiB; a MiB is a mistake
NO_SHOP = ""  # routes.py: the defaults' channels


class BadPayload(KefuError, ValueError):
    """A body that is not Alertmanager's webhook payload; the message says why, in one sentence."""


class RuleAlert(AlertEvent, frozen=True, kw_only=True):
    """An alert of a Prometheus rule, as Alertmanager sent it: the event and its summary."""

    summary: str = ""


class _Alert(Struct, frozen=True):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    starts_at: str = field(name="startsAt")
    annotations: dict[str, str] = {}
    ends_at: str = field(default="", name="endsAt")
    fingerprint: str = ""


class _Payload(Struct, frozen=True):
    alerts: list[msgspec.Raw]  # each decoded on its own: one bad alert refuses only itself
    version: str = "4"


_decoder = msgspec.json.Decoder(_Payload)
_alert_decoder = msgspec.json.Decoder(_Alert)
# RFC 3339 as Go writes it: up to nine digits of fraction, `Z` or an offset.
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def decode_webhook(body: bytes) -> list[RuleAlert]:
    """Every alert of one webhook body as a `RuleAlert`, or `BadPayload` with the reason."""
    alerts, problems = decode_alerts(body)
    if problems:
        raise BadPayload("; ".join(problems))
    return alerts


def decode_alerts(body: bytes) -> tuple[list[RuleAlert], list[str]]:
    """The alerts of one webhook body that can be read, and a sentence for each that cannot;
    `BadPayload` for a body that is no payload at all."""
    try:
        payload = _decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise BadPayload(f"not an Alertmanager webhook payload: {exc}") from None
    if payload.version != "4":
        raise BadPayload(f"Alertmanager webhook payload version {payload.version!r}; notify reads version 4")
    alerts: list[RuleAlert] = []
    problems: list[str] = []
    for number, raw in enumerate(payload.alerts, start=1):
        try:
            alerts.append(rule_alert(_alert_decoder.decode(raw)))
        except msgspec.DecodeError as exc:
            problems.append(f"not an Alertmanager webhook payload: alert {number}: {exc}")
        except BadPayload as exc:
            problems.append(f"alert {number}: {exc}")
    return alerts, problems


def rule_alert(alert: _Alert) -> RuleAlert:
    name = alert.labels.get("alertname", "")
    if not name:
        raise BadPayload("an alert of the payload has no `alertname` label")
    starts = epoch_ms(alert.starts_at, "startsAt")
    ts = starts
    if alert.status == "resolved" and alert.ends_at:
        ts = max(starts, epoch_ms(alert.ends_at, "endsAt"))
    fingerprint = alert.fingerprint or labels_fingerprint(alert.labels)
    return RuleAlert(
        alert=name,
        state=alert.status,
        shop_id=alert.labels.get("shop", NO_SHOP),
        agent_id=alert.labels.get("agent", ""),
        value=number(alert, "value"),
        threshold=number(alert, "threshold"),
        ts=ts,
        alert_id=f"am|{fingerprint}|{alert.starts_at}",
        summary=alert.annotations.get("summary") or alert.annotations.get("description", ""),
    )


def epoch_ms(text: str, what: str) -> int:
    """Go's RFC 3339 time (nanoseconds and all) in ms since the epoch; never before 0."""
    match = _TIME.match(text)
    if match is None:
        raise BadPayload(f"{what} {text[:40]!r} is not an RFC 3339 time")
    whole, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{whole}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        raise BadPayload(f"{what} {text[:40]!r} is not an RFC 3339 time") from None
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    return max(0, int(moment.astimezone(UTC).timestamp()) * 1000 + millis)


def number(alert: _Alert, name: str) -> float:
    """The label or annotation `name` as seconds, else 0 (our rules carry none today)."""
    text = alert.labels.get(name) or alert.annotations.get(name) or ""
    try:
        return float(text)
    except ValueError:
        return 0.0


def labels_fingerprint(labels: dict[str, str]) -> str:
    """A stable id of the label set, for a payload without `fingerprint` (hand-written ones)."""
    canonical = "\x00".join(f"{key}\x00{value}" for key, value in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class EventSink(Protocol):
    """dispatch.Dispatcher: claims each event in the ledger and puts it on its channels."""

    async def accept_events(self, events: Sequence[AlertEvent]) -> None: ...


class AlertmanagerIntake:
    """`POST /alertmanager`: 200 once every alert is claimed or known (Alertmanager retries
    on anything else), 400 for a body that is no payload, 413 above `MAX_BODY_BYTES`, 503
    until the dispatcher is attached."""

    def __init__(self) -> None:
        self._sink: EventSink | None = None

    def attach(self, sink: EventSink) -> None:
        self._sink = sink

    async def handle(self, request: web.Request) -> web.Response:
        if self._sink is None:
            return web.Response(status=503, text="notify is starting; try again\n")
        # A browser names the page behind every POST, and may send one to any address without
        # asking (a "simple" request): without a token, any page the operator opened could post
        # alerts into the shops' groups. Alertmanager sends no Origin.
        if ORIGIN in request.headers:
            return web.Response(status=403, text="a web page may not post alerts here\n")
        body = await bounded_body(request)
        if body is None:
            return web.Response(status=413, text=f"the payload is over {MAX_BODY_BYTES} bytes\n")
        try:
            events, problems = decode_alerts(body)
        except BadPayload as exc:
            return web.Response(status=400, text=f"{exc}\n")
        if problems and not events:
            return web.Response(status=400, text="; ".join(problems) + "\n")
        # Alertmanager retries no 4xx: one alert it cannot fix refused the whole group's.
        for problem in problems:
            log.warning("notify: an Alertmanager alert refused, the rest of its payload taken: %s", problem)
        kept = [event for event in events if event.alert not in FROM_KEFU_ALERTS]
        await self._sink.accept_events(kept)
        left = len(events) - len(kept)
        through = f"; {left} left to kefu.alerts, which carries them" if left else ""
        refused = f"; refused {len(problems)}: {'; '.join(problems)}" if problems else ""
        return web.Response(text=f"accepted {len(kept)} alert(s){through}{refused}\n")


async def bounded_body(request: web.Request) -> bytes | None:
    """The body, or None when it is over `MAX_BODY_BYTES` (read no further than that)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None
    body = await request.content.read(MAX_BODY_BYTES + 1)
    while len(body) <= MAX_BODY_BYTES:
        more = await request.content.read(MAX_BODY_BYTES + 1 - len(body))
        if not more:
            return body
        body += more
    return None


# ---- Who may post and scrape (issue 29) ----------------------------------------------------------
ALERTMANAGER_PATH, METRICS_PATH, HEALTH_PATH = "/alertmanager", "/metrics", "/healthz"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_notify_binding(web_settings: WebSettings) -> None:
    """Start-up: without its token (KEFU_NOTIFY_TOKEN), notify listens on a loopback address only."""
    if web_settings.notify_token is None and not is_loopback(web_settings.host):
        raise ConfigError(
            f"$.web.host: notify would listen on {web_settings.host}, reachable from other machines, "
            "without a token for POST /alertmanager; set KEFU_NOTIFY_TOKEN, or bind 127.0.0.1"
        )


ORIGIN = "Origin"


def bearer_guard(web_settings: WebSettings) -> Middleware:
    """`POST /alertmanager` takes the notify token and `/metrics` the metrics token, each as
    `Authorization: Bearer` (Alertmanager's and Prometheus's `credentials_file`). Without a
    notify token notify is local (loopback only) and both are open unless their token is set;
    `/healthz` is always open. Any other address is 404 (aiohttp's own)."""
    local = web_settings.notify_token is None
    needed: dict[str, Secret | None] = {
        ALERTMANAGER_PATH: web_settings.notify_token,
        METRICS_PATH: web_settings.metrics_token,
    }

    @web.middleware
    async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path in needed and not _authorized(request, needed[request.path], local):
            return web.Response(
                status=401,
                text=f"{request.path} needs its token as Authorization: Bearer <token>\n",
                headers={"WWW-Authenticate": 'Bearer realm="kefu-pulse notify"'},
            )
        return await handler(request)

    return guard


def _authorized(request: web.Request, token: Secret | None, local: bool) -> bool:
    if token is None:
        return local
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secret_matches(credential.strip(), token)
