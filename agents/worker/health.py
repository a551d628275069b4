"""`/healthz`: what this worker needs right now, as a list of problems (empty when healthy)."""

from __future__ import annotations

import asyncio

from agents.runtime import Runtime
from agents.store.errors import STORE_ERRORS
from config.addresses import host_port


async def health_problems(runtime: Runtime) -> list[str]:
    problems: list[str] = []
    try:
        await asyncio.wait_for(runtime.store.ping(), timeout=2)
    except STORE_ERRORS as exc:
        problems.append(f"redis unreachable: {type(exc).__name__}")
    if not await kafka_reachable(runtime.settings.kafka.bootstrap):
        problems.append("kafka unreachable: no bootstrap server accepts connections")
    return problems


async def kafka_reachable(bootstrap: str, timeout: float = 2.0) -> bool:
    for server in bootstrap.split(","):
        try:
            host, port = host_port(server)
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False
