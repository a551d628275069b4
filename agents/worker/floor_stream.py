"""`/api/v1/floor/stream`: the floor as Server-Sent Events, once a second, to a bounded number
of clients, none of which can hold its handler by not reading.

Each write must be accepted within the write timeout, or the connection is dropped: a client
that stops reading would otherwise leave the handler waiting on the socket for ever, its
updates piling up in memory. Cancellation (the worker stopping) is never swallowed.

A shop's streams share its updates: one read and one encoding serve every stream that asks
within half an interval of it. Each stream read and encoded its own before, on the loop that
also runs the batches and the leader: 64 wall screens on a 500-agent shop kept it 95 % busy.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from agents.store.errors import STORE_ERRORS
from config.errors import KefuError
from streams.contract.floor import ShopFloor, floor_json

log = logging.getLogger(__name__)

# What a client is told when Redis does not answer: the dependency, in words, never its address.
DEGRADED = b'event: degraded\ndata: "the store (Redis) is not answering; retrying"\n\n'


class EventWriter(Protocol):
    """The part of aiohttp's StreamResponse a stream writes to."""

    async def write(self, data: bytes) -> None: ...


class SlowReader(KefuError):
    """The client did not take an update within the write timeout."""


class StreamsFull(KefuError):
    """As many streams are open as the limit allows."""

    def __init__(self, sentence: str = "too many floor streams are open on this worker; try again shortly"):
        super().__init__(sentence)


class ShopStreamsFull(StreamsFull):
    """As many streams of this shop are open as its share allows."""

    def __init__(self) -> None:
        super().__init__(
            "this shop has as many floor streams open as web.max_streams_per_shop allows; close a screen"
        )


class FloorStreams:
    """The open streams, at most `limit`, and at most `per_shop` of one shop: one kiosk token
    (or one misbehaving screen reloading) cannot take every slot of a worker from the others'
    wall screens."""

    def __init__(
        self,
        limit: int,
        write_timeout_seconds: float,
        interval_seconds: float = 1.0,
        per_shop: int | None = None,
    ) -> None:
        self.limit = limit
        self.per_shop = per_shop if per_shop is not None else limit
        self.write_timeout_seconds = write_timeout_seconds
        self.interval_seconds = interval_seconds
        self.open = 0
        self._open_by_shop: dict[str, int] = {}
        # shop -> when its last update was started (the loop's clock), and that update
        self._updates: dict[str, tuple[float, asyncio.Future[bytes]]] = {}

    @contextmanager
    def slot(self, shop: str) -> Iterator[None]:
        """One stream's place, taken before its first await: StreamsFull when none is left, and
        ShopStreamsFull when the shop holds its share."""
        if self.open >= self.limit:
            raise StreamsFull
        held = self._open_by_shop.get(shop, 0)
        if held >= self.per_shop:
            raise ShopStreamsFull
        self.open += 1
        self._open_by_shop[shop] = held + 1
        try:
            yield
        finally:
            self.open -= 1
            left = self._open_by_shop[shop] - 1
            if left:
                self._open_by_shop[shop] = left
            else:
                del self._open_by_shop[shop]

    async def serve(
        self, writer: EventWriter, shop: str, read_floor: Callable[[], Awaitable[ShopFloor]]
    ) -> None:
        """Updates of `shop` until the client goes away or stops reading (SlowReader)."""
        try:
            while True:
                await self._send(writer, await self._shared_update(shop, read_floor))
                await asyncio.sleep(self.interval_seconds)
        except ConnectionError:  # reset, or lost while a write waited (aiohttp's plain ConnectionError)
            return  # the client went away: the usual end of a stream

    async def _shared_update(self, shop: str, read_floor: Callable[[], Awaitable[ShopFloor]]) -> bytes:
        """The shop's update started within half an interval, else a new one. Half: a stream asks
        again an interval after its last update at the earliest, so it never gets that one twice
        (the page takes a repeated `as_of` for a stalled worker)."""
        now = asyncio.get_running_loop().time()
        fresh_from = now - self.interval_seconds / 2
        latest = self._updates.get(shop)
        if latest is None or latest[0] < fresh_from:
            if len(self._updates) >= self.limit:  # shops no stream watches now leave
                self._updates = {s: u for s, u in self._updates.items() if u[0] >= fresh_from}
            latest = self._updates[shop] = (now, asyncio.ensure_future(_update(read_floor)))
        # Shielded: one stream's going away (cancelled) must not cancel the others' update.
        return await asyncio.shield(latest[1])

    async def _send(self, writer: EventWriter, chunk: bytes) -> None:
        try:
            await asyncio.wait_for(writer.write(chunk), self.write_timeout_seconds)
        except TimeoutError:
            raise SlowReader from None


async def _update(read_floor: Callable[[], Awaitable[ShopFloor]]) -> bytes:
    try:
        floor = await read_floor()
    except STORE_ERRORS as exc:  # /healthz and the worker's log tell the operator more
        log.debug("floor stream: the store did not answer: %s", exc)
        return DEGRADED
    payload = json.dumps(floor_json(floor), ensure_ascii=False)
    return f"retry: 1000\ndata: {payload}\n\n".encode()


def drop(transport: Any) -> None:
    """Close a slow reader's connection without flushing what it did not read."""
    if transport is not None:
        transport.abort()
