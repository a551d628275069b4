"""A stand-in for the four group robots, on loopback: DingTalk, WeCom, Feishu and a webhook.

A real aiohttp server (its own thread and loop, a free port on 127.0.0.1) that plays each
robot's contract as the robot does, so tests never reach a real one:
- it checks each robot's token, and its signature computed the robot's way (DingTalk 加签 in the
  query, Feishu's in the body, both within an hour of now; the webhook's X-Kefu-Signature), and
  refuses a wrong one with the robot's own error code;
- `rate_limit(robot, n)` answers the next n requests with the robot's "too fast" error, and
  `limit_per_minute` does it for every request past the robots' 20 a minute;
- `down(robot, seconds)` answers 503 (or closes the connection) until then, and
  `refuse_connections(seconds)` closes the port itself (connection refused) for a while;
- every accepted message is recorded (`received`): robot, type, body, text, mentions.

Another process uses it through its URLs (`url(robot)`, `environ()` for `kefu-pulse notify`)
and, when it runs standalone (`python -m tests.robots`), through `/_stand_in/...` requests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aiohttp import web

Robot = Literal["dingtalk", "wecom", "feishu", "webhook"]
ROBOTS: tuple[Robot, ...] = ("dingtalk", "wecom", "feishu", "webhook")
SIGNATURE_WINDOW_SECONDS = 3600  # DingTalk and Feishu refuse a timestamp an hour away from now
PER_MINUTE = 20  # what each robot accepts per minute and per robot
# The robots' own answers (their documentation's codes and words).
TOO_FAST: dict[Robot, tuple[int, dict[str, Any]]] = {
    "dingtalk": (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
    "wecom": (200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
    "feishu": (200, {"code": 11232, "msg": "frequency limited", "data": {}}),
    "webhook": (429, {"error": "too many requests"}),
}
BAD_SIGNATURE: dict[Robot, tuple[int, dict[str, Any]]] = {
    "dingtalk": (200, {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com]"}),
    "feishu": (200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}),
    "webhook": (401, {"error": "bad signature"}),
}
BAD_TOKEN: dict[Robot, tuple[int, dict[str, Any]]] = {
    "dingtalk": (200, {"errcode": 300001, "errmsg": "token is not exist"}),
    "wecom": (200, {"errcode": 93000, "errmsg": "invalid webhook url"}),
    "feishu": (200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}),
    "webhook": (404, {"error": "no such hook"}),
}
OK: dict[Robot, tuple[int, dict[str, Any]]] = {
    "dingtalk": (200, {"errcode": 0, "errmsg": "ok"}),
    "wecom": (200, {"errcode": 0, "errmsg": "ok"}),
    "feishu": (200, {"code": 0, "msg": "success", "data": {}}),
    "webhook": (200, {"ok": True}),
}
# Content the robots refuse as too long (WeCom: 4096 bytes of markdown, 2048 of text).
TOO_LONG: dict[Robot, tuple[int, dict[str, Any]]] = {
    "dingtalk": (200, {"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"}),
    "wecom": (200, {"errcode": 40058, "errmsg": "content exceed max length"}),
}
CONTENT_LIMITS: dict[tuple[Robot, str], int] = {
    ("dingtalk", "markdown"): 20000,
    ("dingtalk", "text"): 20000,
    ("wecom", "markdown"): 4096,
    ("wecom", "text"): 2048,
}


@dataclass(frozen=True)
class Received:
    """One message a robot accepted."""

    robot: Robot
    msgtype: str
    body: dict[str, Any]
    text: str  # what the group sees, the robot's fields joined
    mentions: tuple[str, ...]
    at: float = field(default_factory=time.time)


class Rejected(Exception):
    """The robot's answer to a message it does not take."""

    def __init__(self, answer: tuple[int, dict[str, Any]]) -> None:
        super().__init__(answer)
        self.answer = answer


@dataclass
class _Outage:
    until: float = 0.0
    how: Literal["503", "close"] = "503"


class RobotServer:
    """Start with `start()` (or as a context manager); `url(robot)` is each robot's address."""

    def __init__(
        self,
        secrets: Mapping[Robot, str] | None = None,
        limit_per_minute: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.secrets: dict[Robot, str] = dict(secrets or {})
        self.tokens: dict[Robot, str] = {
            r: f"{r}-token-{index:02d}-7f3a9c1e5b" for index, r in enumerate(ROBOTS)
        }
        self.limit_per_minute = limit_per_minute
        self.host, self.port = host, port or free_port(host)
        self.received: list[Received] = []
        self.answered: list[tuple[Robot, int, dict[str, Any]]] = []  # every answer, accepted or not
        self._lock = threading.Lock()
        self._too_fast: dict[Robot, int] = dict.fromkeys(ROBOTS, 0)
        self._outages: dict[Robot, _Outage] = {r: _Outage() for r in ROBOTS}
        self._accepted_at: dict[Robot, deque[float]] = {r: deque() for r in ROBOTS}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, robot: Robot, token: str | None = None) -> str:
        """The robot's URL with its token, as the robot's settings page shows it."""
        token = self.tokens[robot] if token is None else token
        return {
            "dingtalk": f"{self.base}/robot/send?access_token={token}",
            "wecom": f"{self.base}/cgi-bin/webhook/send?key={token}",
            "feishu": f"{self.base}/open-apis/bot/v2/hook/{token}",
            "webhook": f"{self.base}/hooks/kefu/{token}",
        }[robot]

    def environ(self, prefix: str = "KEFU_TEST_ROBOT") -> dict[str, str]:
        """`<prefix>_<ROBOT>_URL` and `<prefix>_<ROBOT>_SECRET` for a `notify` subprocess."""
        found = {f"{prefix}_{r.upper()}_URL": self.url(r) for r in ROBOTS}
        found |= {f"{prefix}_{r.upper()}_SECRET": s for r, s in self.secrets.items()}
        return found

    # -- behaviour ---------------------------------------------------------------------------
    def rate_limit(self, robot: Robot, requests: int) -> None:
        """Answer the next `requests` messages to `robot` with its "too fast" error."""
        with self._lock:
            self._too_fast[robot] = requests

    def down(self, robot: Robot, seconds: float, how: Literal["503", "close"] = "503") -> None:
        """Until `seconds` from now, `robot` answers 503, or closes the connection unanswered."""
        self.down_until(robot, time.time() + seconds, how)

    def down_until(self, robot: Robot, until: float, how: Literal["503", "close"] = "503") -> None:
        with self._lock:
            self._outages[robot] = _Outage(until, how)

    def refuse_connections(self, seconds: float) -> None:
        """Close the port (connection refused) for `seconds`, then listen on it again."""
        loop = self._running_loop()
        asyncio.run_coroutine_threadsafe(self._pause_site(seconds), loop).result(timeout=10)

    def messages(self, robot: Robot | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self.received if robot is None or m.robot == robot]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.answered.clear()

    # -- life --------------------------------------------------------------------------------
    def start(self) -> RobotServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="robots", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("the stand-in robots did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> RobotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/robot/send", self._handler("dingtalk"))
        app.router.add_post("/cgi-bin/webhook/send", self._handler("wecom"))
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._handler("feishu"))
        app.router.add_post("/hooks/kefu/{token}", self._handler("webhook"))
        app.router.add_get("/_stand_in/received", self._control_received)
        app.router.add_post("/_stand_in/{what}", self._control)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        loop.run_until_complete(self._open_site())
        ready.set()
        loop.run_forever()
        loop.close()

    async def _open_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()

    async def _pause_site(self, seconds: float) -> None:
        if self._site is not None:
            await self._site.stop()
        self._site = None
        asyncio.get_running_loop().call_later(seconds, lambda: asyncio.ensure_future(self._open_site()))

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the stand-in robots are not running")
        return self._loop

    # -- the robots --------------------------------------------------------------------------
    def _handler(self, robot: Robot) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            outage = self._outage(robot)
            if outage == "close":
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=503)
            if outage == "503":
                return self._answer(robot, (503, {"error": "service unavailable"}))
            try:
                received = self._accept(robot, request, body)
            except Rejected as rejected:
                return self._answer(robot, rejected.answer)
            with self._lock:
                self.received.append(received)
            return self._answer(robot, OK[robot])

        return handle

    def _outage(self, robot: Robot) -> str | None:
        with self._lock:
            outage = self._outages[robot]
            return outage.how if time.time() < outage.until else None

    def _answer(self, robot: Robot, answer: tuple[int, dict[str, Any]]) -> web.Response:
        status, payload = answer
        with self._lock:
            self.answered.append((robot, status, payload))
        return web.json_response(payload, status=status)

    def _accept(self, robot: Robot, request: web.Request, body: bytes) -> Received:
        """The robot's checks in its order: token, signature, rate, then the message itself."""
        token = request.match_info.get("token") or request.query.get(
            "access_token" if robot == "dingtalk" else "key", ""
        )
        if not hmac.compare_digest(token, self.tokens[robot]):
            status, answer = BAD_TOKEN[robot]
            if robot == "webhook":  # as many web servers do, quoting the path (the client masks it)
                answer = {"error": f"no such hook: {request.path}"}
            raise Rejected((status, answer))
        payload = _json_object(body, robot)
        _CHECKS[robot](self.secrets.get(robot), request, body, payload)
        self._count(robot)
        return _READERS[robot](payload)

    def _count(self, robot: Robot) -> None:
        now = time.time()
        with self._lock:
            if self._too_fast[robot] > 0:
                self._too_fast[robot] -= 1
                raise Rejected(TOO_FAST[robot])
            accepted = self._accepted_at[robot]
            while accepted and accepted[0] <= now - 60:
                accepted.popleft()
            if self.limit_per_minute is not None and len(accepted) >= self.limit_per_minute:
                raise Rejected(TOO_FAST[robot])
            accepted.append(now)

    # -- control, for another process --------------------------------------------------------
    async def _control_received(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(m) for m in self.messages()])

    async def _control(self, request: web.Request) -> web.Response:
        order = await request.json()
        what = request.match_info["what"]
        if what == "rate_limit":
            self.rate_limit(order["robot"], int(order["requests"]))
        elif what == "down":
            self.down(order["robot"], float(order["seconds"]), order.get("how", "503"))
        elif what == "clear":
            self.clear()
        else:
            raise web.HTTPNotFound()
        return web.json_response({"ok": True})


def _json_object(body: bytes, robot: Robot) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise Rejected(_bad_request(robot, "body is not a JSON object"))
    return payload


def _bad_request(robot: Robot, why: str) -> tuple[int, dict[str, Any]]:
    if robot == "feishu":
        return 400, {"code": 19002, "msg": f"params error: {why}"}
    if robot == "webhook":
        return 400, {"error": why}
    return 200, {"errcode": 40035, "errmsg": f"缺少参数 json: {why}"}


def _fresh(timestamp_s: float) -> bool:
    return abs(time.time() - timestamp_s) <= SIGNATURE_WINDOW_SECONDS


def _check_dingtalk(secret: str | None, request: web.Request, body: bytes, payload: dict[str, Any]) -> None:
    if secret is None:
        return
    timestamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
    if not timestamp.isdigit() or not _fresh(int(timestamp) / 1000):
        raise Rejected(BAD_SIGNATURE["dingtalk"])
    # The robot's own computation; `sign` arrives URL-decoded, so compare with the base64 itself.
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(sign, base64.b64encode(digest).decode()):
        raise Rejected(BAD_SIGNATURE["dingtalk"])


def _check_feishu(secret: str | None, request: web.Request, body: bytes, payload: dict[str, Any]) -> None:
    if secret is None:
        return
    timestamp, sign = str(payload.get("timestamp", "")), str(payload.get("sign", ""))
    if not timestamp.isdigit() or not _fresh(int(timestamp)):
        raise Rejected(BAD_SIGNATURE["feishu"])
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    if not hmac.compare_digest(sign, base64.b64encode(digest).decode()):
        raise Rejected(BAD_SIGNATURE["feishu"])


def _check_webhook(secret: str | None, request: web.Request, body: bytes, payload: dict[str, Any]) -> None:
    if secret is None:
        return
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Kefu-Signature", ""), expected):
        raise Rejected(BAD_SIGNATURE["webhook"])
    if not request.headers.get("X-Kefu-Timestamp", "").isdigit():
        raise Rejected(BAD_SIGNATURE["webhook"])


def _check_nothing(secret: str | None, request: web.Request, body: bytes, payload: dict[str, Any]) -> None:
    """WeCom signs nothing: the key in the URL is the whole secret."""


_CHECKS: dict[Robot, Callable[[str | None, web.Request, bytes, dict[str, Any]], None]] = {
    "dingtalk": _check_dingtalk,
    "wecom": _check_nothing,
    "feishu": _check_feishu,
    "webhook": _check_webhook,
}


def _content(robot: Robot, payload: dict[str, Any], kind: str, key: str) -> str:
    section = payload.get(kind)
    value = section.get(key) if isinstance(section, dict) else None
    if not isinstance(value, str) or not value:
        raise Rejected(_bad_request(robot, f"{kind}.{key} is missing"))
    limit = CONTENT_LIMITS.get((robot, kind))
    if limit is not None and len(value.encode()) > limit:
        raise Rejected(TOO_LONG[robot])
    return value


def _read_dingtalk(payload: dict[str, Any]) -> Received:
    kind = str(payload.get("msgtype"))
    if kind == "markdown":
        _content("dingtalk", payload, "markdown", "title")
        text = _content("dingtalk", payload, "markdown", "text")
    elif kind == "text":
        text = _content("dingtalk", payload, "text", "content")
    else:
        raise Rejected(_bad_request("dingtalk", f"unsupported msgtype {kind!r}"))
    at = payload.get("at") or {}
    # DingTalk notifies a mentioned person only when `@<phone or id>` is in the text as well.
    listed = tuple(at.get("atMobiles") or ()) + tuple(at.get("atUserIds") or ())
    mentions = tuple(m for m in listed if f"@{m}" in text)
    return Received("dingtalk", kind, payload, text, mentions)


def _read_wecom(payload: dict[str, Any]) -> Received:
    kind = payload.get("msgtype")
    if kind not in ("markdown", "text"):
        raise Rejected(_bad_request("wecom", f"unsupported msgtype {kind!r}"))
    text = _content("wecom", payload, kind, "content")
    section = payload[kind]
    mentions = tuple(section.get("mentioned_list") or ()) + tuple(section.get("mentioned_mobile_list") or ())
    return Received("wecom", kind, payload, text, mentions)


def _read_feishu(payload: dict[str, Any]) -> Received:
    kind = str(payload.get("msg_type"))
    content = payload.get("content") or {}
    if kind == "text":
        return Received("feishu", kind, payload, _content("feishu", payload, "content", "text"), ())
    post = (content.get("post") or {}).get("zh_cn") if kind == "post" else None
    if not isinstance(post, dict) or not isinstance(post.get("content"), list):
        raise Rejected(_bad_request("feishu", f"unsupported msg_type {kind!r} or no post.zh_cn"))
    elements = [element for line in post["content"] for element in line]
    shown = [f"{e.get('text', '')} {e.get('href', '')}".strip() for e in elements if e.get("tag") != "at"]
    lines = [str(post.get("title", "")), *shown]
    mentions = tuple(str(e.get("user_id")) for e in elements if e.get("tag") == "at")
    return Received("feishu", kind, payload, "\n".join(line for line in lines if line), mentions)


def _read_webhook(payload: dict[str, Any]) -> Received:
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        raise Rejected(_bad_request("webhook", "text is missing"))
    return Received("webhook", "json", payload, text, tuple(payload.get("mentions") or ()))


_READERS: dict[Robot, Callable[[dict[str, Any]], Received]] = {
    "dingtalk": _read_dingtalk,
    "wecom": _read_wecom,
    "feishu": _read_feishu,
    "webhook": _read_webhook,
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def running(secrets: Mapping[Robot, str] | None = None, **options: Any) -> Iterator[RobotServer]:
    """For a pytest fixture: `yield from running(...)`."""
    server = RobotServer(secrets, **options).start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    """Standalone, for another process: prints the robots' URLs as JSON, serves until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--limit-per-minute", type=int, default=None)
    for robot in ("dingtalk", "feishu", "webhook"):
        parser.add_argument(f"--{robot}-secret", default=None)
    args = parser.parse_args()
    secrets = {r: s for r in ("dingtalk", "feishu", "webhook") if (s := getattr(args, f"{r}_secret"))}
    server = RobotServer(secrets, limit_per_minute=args.limit_per_minute, port=args.port).start()  # type: ignore[arg-type]
    print(json.dumps({"base": server.base} | {r: server.url(r) for r in ROBOTS}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
