"""A shop's floor streams share its updates: one read and encoding a moment, whatever the
number of wall screens (each stream read and encoded its own, on the worker's one loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from agents.worker import floor_stream
from agents.worker.floor_stream import FloorStreams

INTERVAL = 0.2
UPDATES = 3
SCREENS = 16


class Screen:
    """A wall screen that takes UPDATES updates, then goes away."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        if len(self.chunks) == UPDATES:
            raise ConnectionResetError
        self.chunks.append(data)


def test_the_streams_of_one_shop_share_each_read_and_no_stream_gets_one_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def update(read_floor: Callable[[], Awaitable[bytes]]) -> bytes:
        return await read_floor()  # the read's own bytes: which read a screen got

    monkeypatch.setattr(floor_stream, "_update", update)
    streams = FloorStreams(limit=64, write_timeout_seconds=1.0, interval_seconds=INTERVAL)
    reads: dict[str, int] = {"s1": 0, "s2": 0}

    def reader(shop: str) -> Callable[[], Awaitable[bytes]]:
        async def read() -> bytes:
            reads[shop] += 1
            number = reads[shop]
            await asyncio.sleep(0.01)
            return f"{shop}#{number}".encode()

        return read

    async def scenario() -> list[tuple[str, Screen]]:
        screens = [("s1" if n % 2 else "s2", Screen()) for n in range(SCREENS)]
        await asyncio.gather(*(streams.serve(screen, shop, reader(shop)) for shop, screen in screens))  # type: ignore[arg-type]
        return screens

    screens = asyncio.run(scenario())
    for shop, screen in screens:
        numbers = [int(chunk.decode().removeprefix(f"{shop}#")) for chunk in screen.chunks]
        assert len(numbers) == UPDATES and numbers == sorted(set(numbers)), (shop, numbers)
    # 8 screens a shop, each asking 3 times: a read a moment, not a read a screen.
    assert reads["s1"] <= UPDATES + 1 and reads["s2"] <= UPDATES + 1, reads
