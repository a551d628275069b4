"""Large bodies (reports, whole lists) sent a chunk at a time, each write given a timeout.

A body handed to aiohttp whole waits in the connection's write buffer for as long as its
client keeps the connection open without reading: a few such clients held a report of 25 MB
each after their turns were given back. Written a chunk at a time, a write that does not
complete within `write_timeout_seconds` (the floor streams' setting) drops the connection and
what it had not taken. A client that goes away mid-body ends the sending quietly: it is no
server error. One that reads, but slower than MIN_BYTES_PER_SECOND once GRACE_SECONDS have
passed, is dropped too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import cast

from aiohttp.web import BaseRequest, StreamResponse
from faust.web import Request, Response

from agents.worker.floor_stream import drop

CHUNK_BYTES = 64 * 1024


# A client that has taken less than MIN_BYTES_PER_SECOND on average once GRACE_SECONDS have
# passed is dropped too: one that reads a chunk just within each write timeout would otherwise
# hold its report turn for the body's chunks times that timeout (an hour for 25 MB).
GRACE_SECONDS = 30.0
MIN_BYTES_PER_SECOND = 256 * 1024


async def send_chunks(
    request: Request,
    stream: StreamResponse,
    chunks: Iterable[bytes],
    write_timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> Response:
    """`stream` (its headers set) with `chunks` as its body; the loop's other work goes between
    chunks. A HEAD request gets the headers alone (aiohttp leaves a streamed body to us)."""
    base = cast(BaseRequest, request)
    started, sent = clock(), 0
    try:
        await stream.prepare(base)  # a client gone already fails here: a reload, say
        if base.method == "HEAD":
            await stream.write_eof()
            return cast(Response, stream)
        for chunk in chunks:
            elapsed = clock() - started
            if elapsed > GRACE_SECONDS and sent < MIN_BYTES_PER_SECOND * elapsed:
                raise TimeoutError
            await asyncio.wait_for(stream.write(chunk), write_timeout_seconds)
            sent += len(chunk)
            await asyncio.sleep(0)
        await stream.write_eof()
    except (TimeoutError, ConnectionError):  # ConnectionError: the client went away
        drop(base.transport)
    return cast(Response, stream)


async def send_body(
    request: Request, body: bytes, content_type: str, write_timeout_seconds: float
) -> Response:
    """`body` whole, in chunks of CHUNK_BYTES."""
    stream = StreamResponse(headers={"Content-Type": content_type})
    stream.content_length = len(body)
    view = memoryview(body)
    chunks = (bytes(view[at : at + CHUNK_BYTES]) for at in range(0, len(body), CHUNK_BYTES))
    return await send_chunks(request, stream, chunks, write_timeout_seconds)
