"""The four robots' contracts: each one's body, signature and answers, and one `deliver`.

DingTalk (钉钉) custom robot, WeCom (企业微信) group robot, Feishu (飞书) custom bot and a plain
webhook. `deliver` sends one `Notice` and says what became of it: `sent`, `rate_limited` (the
robot's own "too fast" answer, or HTTP 429), `retry` (5xx, a timeout, no connection, an answer
it cannot read) or `refused` (a wrong signature or key, a message the robot will never take).
The URL holds the robot's token and the secret signs: neither is ever in a `Delivery.detail`,
an exception or a log line (config/secret.py masks them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote_plus

import aiohttp

from config.secret import mask_secrets
from config.settings import ChannelConfig, ChannelType, robot_url_secrets
from streams.render.notices import Notice

__all__ = [
    "ChannelConfig",
    "Delivery",
    "Outcome",
    "RobotRequest",
    "build_request",
    "classify",
    "deliver",
    "dingtalk_sign",
    "feishu_sign",
    "fits",
    "webhook_signature",
]

Outcome = Literal["sent", "rate_limited", "retry", "refused"]
DEFAULT_TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Kefu-Signature"
TIMESTAMP_HEADER = "X-Kefu-Timestamp"
# Each robot's own error codes (their docs): too fast, and the ones no retry can fix.
DINGTALK_TOO_FAST = frozenset({130101})  # "send too fast, exceed 20 times per minute"
WECOM_TOO_FAST = frozenset({45009})  # "api freq out of limit"
FEISHU_TOO_FAST = frozenset({9499, 11232})  # "too many request", "frequency limited"
# "系统繁忙 … 建议稍候重试" (busy, retry later), in both DingTalk's and WeCom's global code tables.
BUSY = frozenset({-1})
# A robot's answer is a line of JSON: more is no robot's, and is not read (nor parsed) whole.
MAX_ANSWER_BYTES = 64 * 1024
_PHONE = re.compile(r"^\+?[0-9][0-9-]{5,19}$")
_MAX_DETAIL = 200


@dataclass(frozen=True, slots=True)
class Delivery:
    outcome: Outcome
    status: int | None  # the HTTP status, None when no answer came
    detail: str  # one line for logs and `notify --test`: never the URL or the secret


@dataclass(frozen=True, slots=True)
class RobotRequest:
    url: str  # secret: holds the robot's token (and DingTalk's signature)
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """加签: base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg=b"")), as Feishu computes it."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, body)>`, the X-Kefu-Signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_phone(mention: str) -> bool:
    return bool(_PHONE.match(mention))


def _json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _dingtalk(channel: ChannelConfig, notice: Notice, now_ms: int) -> RobotRequest:
    phones = [m for m in notice.mentions if is_phone(m)]
    users = [m for m in notice.mentions if not is_phone(m)]
    # DingTalk highlights (and notifies) a mention only when `@<phone or id>` is in the text too.
    at_line = " ".join(f"@{m}" for m in notice.mentions)
    text = f"{notice.markdown}\n\n{at_line}" if at_line else notice.markdown
    payload = {
        "msgtype": "markdown",
        "markdown": {"title": notice.title, "text": text},
        "at": {"atMobiles": phones, "atUserIds": users, "isAtAll": False},
    }
    url = channel.url.reveal()
    if channel.secret is not None:
        sign = dingtalk_sign(channel.secret.reveal(), now_ms)
        url = f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"
    return RobotRequest(url, _json(payload), {"Content-Type": "application/json"})


def _wecom(channel: ChannelConfig, notice: Notice, now_ms: int) -> RobotRequest:
    # WeCom's markdown cannot @-mention a phone number: a message that mentions is plain text.
    payload: dict[str, Any]
    if notice.mentions:
        payload = {
            "msgtype": "text",
            "text": {
                "content": notice.text,
                "mentioned_list": [m for m in notice.mentions if not is_phone(m)],
                "mentioned_mobile_list": [m for m in notice.mentions if is_phone(m)],
            },
        }
    else:
        payload = {"msgtype": "markdown", "markdown": {"content": notice.markdown}}
    return RobotRequest(channel.url.reveal(), _json(payload), {"Content-Type": "application/json"})


def _feishu(channel: ChannelConfig, notice: Notice, now_ms: int) -> RobotRequest:
    lines: list[list[dict[str, str]]] = [
        [{"tag": "text", "text": line}] for line in notice.text.split("\n")[1:] if line
    ]
    if notice.link:
        lines.append([{"tag": "a", "text": "打开现场大屏 / open the floor", "href": notice.link}])
    if notice.mentions:
        lines.append([{"tag": "at", "user_id": m} for m in notice.mentions])
    payload: dict[str, Any] = {
        "msg_type": "post",
        "content": {"post": {"zh_cn": {"title": notice.title, "content": lines}}},
    }
    if channel.secret is not None:
        timestamp = now_ms // 1000
        payload = {
            "timestamp": str(timestamp),
            "sign": feishu_sign(channel.secret.reveal(), timestamp),
        } | payload
    return RobotRequest(channel.url.reveal(), _json(payload), {"Content-Type": "application/json"})


def _webhook(channel: ChannelConfig, notice: Notice, now_ms: int) -> RobotRequest:
    body = _json(
        {
            "shop": notice.shop,
            "title": notice.title,
            "markdown": notice.markdown,
            "text": notice.text,
            "mentions": list(notice.mentions),
            "link": notice.link,
            "ts": now_ms,
        }
    )
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(now_ms)}
    if channel.secret is not None:
        headers[SIGNATURE_HEADER] = webhook_signature(channel.secret.reveal(), body)
    return RobotRequest(channel.url.reveal(), body, headers)


_BUILDERS: dict[ChannelType, Callable[[ChannelConfig, Notice, int], RobotRequest]] = {
    "dingtalk": _dingtalk,
    "wecom": _wecom,
    "feishu": _feishu,
    "webhook": _webhook,
}


def build_request(channel: ChannelConfig, notice: Notice, now_ms: int) -> RobotRequest:
    """The HTTP POST one robot expects for `notice`, signed with `now_ms` when it has a secret."""
    return _BUILDERS[channel.type](channel, notice, now_ms)


# What each robot takes at most (bytes of UTF-8): DingTalk's and WeCom's content, Feishu's whole
# body. A longer message is refused, not cut: a summary must be split to fit.
WECOM_TEXT_LIMIT = 2048
CONTENT_LIMITS: dict[ChannelType, int] = {"dingtalk": 20000, "wecom": 4096, "feishu": 20 * 1024}


def fits(channel: ChannelConfig, notice: Notice) -> bool:
    """Whether the robot takes `notice` whole (a webhook takes any length)."""
    if channel.type == "webhook":
        return True
    body = build_request(channel, notice, 0).body
    if channel.type == "feishu":
        return len(body) <= CONTENT_LIMITS["feishu"]
    payload = json.loads(body)
    if channel.type == "wecom" and payload["msgtype"] == "text":
        return len(payload["text"]["content"].encode()) <= WECOM_TEXT_LIMIT
    content = payload["markdown"]["text" if channel.type == "dingtalk" else "content"]
    return len(content.encode()) <= CONTENT_LIMITS[channel.type]


def classify(kind: ChannelType, status: int, body: bytes) -> Delivery:
    """What the robot's answer means: HTTP status first, then the robot's own error code."""
    if status == 429:
        return Delivery("rate_limited", status, f"HTTP 429 {_excerpt(body)}".rstrip())
    if status >= 500:
        return Delivery("retry", status, f"HTTP {status} {_excerpt(body)}".rstrip())
    if status >= 400 or (kind == "webhook" and not 200 <= status < 300):
        return Delivery("refused", status, f"HTTP {status} {_excerpt(body)}".rstrip())
    if kind == "webhook":
        return Delivery("sent", status, f"HTTP {status}")
    try:
        answer = json.loads(body) if len(body) < MAX_ANSWER_BYTES else None
    except (ValueError, RecursionError):  # a deeply nested body: the robot's answer is flat
        answer = None
    if not isinstance(answer, dict):
        return Delivery("retry", status, f"HTTP {status}, an answer that is not the robot's JSON")
    return _robot_code(kind, status, answer)


def _robot_code(kind: ChannelType, status: int, answer: dict[str, Any]) -> Delivery:
    if kind == "feishu":
        code = answer.get("code", answer.get("StatusCode"))
        message = answer.get("msg", answer.get("StatusMessage", ""))
        too_fast = FEISHU_TOO_FAST
    else:
        code, message = answer.get("errcode"), answer.get("errmsg", "")
        too_fast = DINGTALK_TOO_FAST if kind == "dingtalk" else WECOM_TOO_FAST
    said = f"{'code' if kind == 'feishu' else 'errcode'} {code}: {message}"
    if code == 0:
        return Delivery("sent", status, said)
    if code in too_fast:
        return Delivery("rate_limited", status, said)
    if code in BUSY and kind != "feishu":
        return Delivery("retry", status, said)
    return Delivery("refused", status, said)


def _excerpt(body: bytes) -> str:
    return " ".join(body[:_MAX_DETAIL].decode("utf-8", "replace").split())


async def deliver(
    session: aiohttp.ClientSession,
    channel: ChannelConfig,
    notice: Notice,
    now_ms: int,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> Delivery:
    """POST `notice` to the channel's robot once and classify the answer; never raises for what
    the network or the robot does (that is a `retry` or `refused` Delivery)."""
    request = build_request(channel, notice, now_ms)
    try:
        async with session.post(
            request.url,
            data=request.body,
            headers=dict(request.headers),
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            allow_redirects=False,
        ) as response:
            body = await _answer(response)
            delivery = classify(channel.type, response.status, body)
    except TimeoutError:
        delivery = Delivery("retry", None, f"no answer within {timeout_seconds:g} s")
    except aiohttp.ClientConnectorError as exc:
        reason = os.strerror(exc.os_error.errno) if exc.os_error.errno else "no connection"
        delivery = Delivery("retry", None, f"cannot connect: {reason}")
    except (aiohttp.ClientError, OSError) as exc:
        delivery = Delivery("retry", None, f"the connection failed ({type(exc).__name__})")
    return Delivery(delivery.outcome, delivery.status, _masked(delivery.detail, channel, request))


async def _answer(response: aiohttp.ClientResponse) -> bytes:
    """The whole answer, however it arrives (one read returns what came so far: half a JSON
    answer was a `retry` of a message the robot had taken), up to MAX_ANSWER_BYTES."""
    body = b""
    while len(body) < MAX_ANSWER_BYTES:
        chunk = await response.content.read(MAX_ANSWER_BYTES - len(body))
        if not chunk:
            break
        body += chunk
    return body


def channel_secrets(channel: ChannelConfig, *urls: str) -> list[str]:
    """Every form in which this channel's token or secret can appear in text."""
    found = [form for url in (channel.url.reveal(), *urls) for form in robot_url_secrets(url)]
    if channel.secret is not None:
        found.append(channel.secret.reveal())
    return found


def _masked(detail: str, channel: ChannelConfig, request: RobotRequest) -> str:
    return mask_secrets(detail, channel_secrets(channel, request.url))
