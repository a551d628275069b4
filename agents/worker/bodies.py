"""Large bodies (reports, whole lists) sent a chunk at a time, each write given a timeout.

A body handed to aiohttp whole waits in the connection's write buffer for as long as its
client keeps the connection open without reading: a few such clients held a report of 25 MB
each after their turns were given back. Written a chunk at a time, a write that does not
complete within `write_timeout_seconds` (the floor streams' setting) drops the connection and
what it had not taken. A client that goes away mid-body ends the sending quietly: it is no
server error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import cast

from aiohttp.web import BaseRequest, StreamResponse
from faust.web import Request, Response

from agents.worker.floor_stream import drop

CHUNK_BYTES = 64 * 1024


async def send_chunks(
    request: Request, stream: StreamResponse, chunks: Iterable[bytes], write_timeout_seconds: float
) -> Response:
    """`stream` (its headers set) with `chunks` as its body; the loop's other work goes between
    chunks."""
    await stream.prepare(cast(BaseRequest, request))
    try:
        for chunk in chunks:
            await asyncio.wait_for(stream.write(chunk), write_timeout_seconds)
            await asyncio.sleep(0)
    except (TimeoutError, ConnectionResetError):
        drop(cast(BaseRequest, request).transport)
        return cast(Response, stream)
    await stream.write_eof()
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
