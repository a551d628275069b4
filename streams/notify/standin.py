"""A stand-in group robot for `kefu-pulse demo`: what `notify` would send, on the demo's console.

It plays the plain `webhook` channel's contract (robots.py): a JSON body, and when a secret is
set, the `X-Kefu-Signature` HMAC of the body, which it checks and refuses when wrong (HTTP 401,
as a real receiver would). Each notice it accepts is one console line. It serves from a thread
of its own, so the demo's synchronous stop (waiting for its children) never keeps it from
answering the last notices.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from streams.notify.robots import SIGNATURE_HEADER, webhook_signature

PREFIX = "robot ▸ "
PATH = "/robot"


def one_line(payload: dict[str, Any]) -> str | None:
    """The notice as the chat list shows it: its title, else its text's first line."""
    title = payload.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    text = payload.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip().splitlines()[0]
    return None


class StandInRobot:
    """`with StandInRobot(say, secret) as robot:` serves on `robot.url` until the block ends."""

    def __init__(
        self, say: Callable[[str], None], secret: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self._say, self.secret, self.host = say, secret, host
        self.port = 0
        self.accepted = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.secret is not None:
            signed = request.headers.get(SIGNATURE_HEADER, "")
            if not hmac.compare_digest(signed, webhook_signature(self.secret, body)):
                return web.json_response({"error": "bad signature"}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        line = one_line(payload) if isinstance(payload, dict) else None
        if line is None:
            return web.json_response({"error": "a JSON object with a title or a text"}, status=400)
        self.accepted += 1
        self._say(PREFIX + line)
        return web.json_response({"ok": True})

    def start(self) -> StandInRobot:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="stand-in robot", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        if not self.port:
            raise OSError(f"the stand-in robot could not listen on {self.host}")
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._open())
        finally:
            ready.set()
        if self.port:
            self._loop.run_forever()
        self._loop.close()

    async def _open(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self.receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))  # a free port, known before the site serves on it
        self.port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or self._thread is None or not loop.is_running():
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> StandInRobot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
