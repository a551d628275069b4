"""The ledger of `notify` (streams/notify/ledger.py): one message per (alert_id, state).

`kp:notify:<state>:<alert_id>` holds `pending <owner>` for `pending_ms` while one process
delivers it (SET NX: only one process gets it), then `sent` for `sent_ms` (days): a repeat of
the event, after a restart or from another process, finds it and is dropped.
`MemoryNotifyLedger` is the same rules in process, on an injected clock, for unit tests.

The daily digest takes the same two-phase claim, as `kp:notify:daily:digest|<shop>|<day>`
(streams/notify/digest.py, `LedgerDigestClaim`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import Literal

from agents.store.connect import RedisClient
from agents.store.keys import PREFIX

ClaimResult = Literal["claimed", "sent", "busy"]
LedgerKey = tuple[str, str]  # (alert_id, state)

SENT = b"sent"
# A pending claim outlives a pause of its owner this long; its owner renews it every third.
PENDING_MS = 30_000
# A repeat comes from a restart or a rebalance re-reading records, within hours; days is plenty.
SENT_MS = 3 * 24 * 3600 * 1000


KEEP_CHUNK = 500
_KEEP_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


_RELEASE_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def ledger_key(alert_id: str, state: str) -> str:
    return f"{PREFIX}:notify:{state}:{alert_id}"


def owner_name() -> str:
    """Who holds a pending claim, for whoever reads the key: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisNotifyLedger:
    def __init__(
        self, client: RedisClient, pending_ms: int = PENDING_MS, sent_ms: int = SENT_MS, owner: str = ""
    ) -> None:
        self._client = client
        self.pending_ms, self.sent_ms = pending_ms, sent_ms
        self._pending = f"pending {owner or owner_name()}".encode()
        self._keep = client.register_script(_KEEP_IF_MINE)
        self._release = client.register_script(_RELEASE_IF_MINE)

    async def claim(self, keys: Sequence[LedgerKey]) -> list[ClaimResult]:
        names = [ledger_key(*key) for key in keys]
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, self._pending, nx=True, px=self.pending_ms)
            taken = await pipe.execute()
        lost = [name for name, ok in zip(names, taken, strict=True) if not ok]
        held: dict[str, bytes | None] = {}
        if lost:
            async with self._client.pipeline(transaction=False) as pipe:
                for name in lost:
                    pipe.get(name)
                held = dict(zip(lost, await pipe.execute(), strict=True))
        return [_result(bool(ok), held.get(name)) for name, ok in zip(names, taken, strict=True)]

    async def keep(self, keys: Sequence[LedgerKey]) -> None:
        # Only a claim that is still ours: one that lapsed may be another's, or `sent` already.
        for start in range(0, len(keys), KEEP_CHUNK):
            chunk = keys[start : start + KEEP_CHUNK]
            await asyncio.gather(
                *(self._keep([ledger_key(*key)], [self._pending, self.pending_ms]) for key in chunk)
            )

    async def settle(self, keys: Sequence[LedgerKey]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(ledger_key(*key), SENT, px=self.sent_ms)
            await pipe.execute()

    async def release(self, keys: Sequence[LedgerKey]) -> None:
        # Only a claim that is still ours, as `keep`: one that lapsed may be another's already.
        for start in range(0, len(keys), KEEP_CHUNK):
            chunk = keys[start : start + KEEP_CHUNK]
            await asyncio.gather(*(self._release([ledger_key(*key)], [self._pending]) for key in chunk))

    async def delivered(self, keys: Sequence[LedgerKey]) -> list[bool]:
        if not keys:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(ledger_key(*key))
            return [value == SENT for value in await pipe.execute()]

    async def close(self) -> None:
        await self._client.aclose()


def _result(taken: bool, value: bytes | None) -> ClaimResult:
    if taken:
        return "claimed"
    if value == SENT:
        return "sent"
    # Pending elsewhere; or the key expired between the two calls: claim again next round.
    return "busy"


class MemoryNotifyLedger:
    """The Redis ledger's rules on a dictionary and a clock (`now_ms`), for unit tests."""

    def __init__(
        self, now_ms: Callable[[], int], pending_ms: int = PENDING_MS, sent_ms: int = SENT_MS
    ) -> None:
        self._now_ms = now_ms
        self.pending_ms, self.sent_ms = pending_ms, sent_ms
        self.values: dict[LedgerKey, tuple[str, int]] = {}  # key -> (pending | sent, expires at)

    def _live(self, key: LedgerKey) -> str | None:
        value = self.values.get(key)
        if value is None or value[1] <= self._now_ms():
            self.values.pop(key, None)
            return None
        return value[0]

    async def claim(self, keys: Sequence[LedgerKey]) -> list[ClaimResult]:
        results: list[ClaimResult] = []
        for key in keys:
            held = self._live(key)
            if held is None:
                self.values[key] = ("pending", self._now_ms() + self.pending_ms)
            results.append("claimed" if held is None else "sent" if held == "sent" else "busy")
        return results

    async def keep(self, keys: Sequence[LedgerKey]) -> None:
        for key in keys:
            if self._live(key) == "pending":
                self.values[key] = ("pending", self._now_ms() + self.pending_ms)

    async def settle(self, keys: Sequence[LedgerKey]) -> None:
        for key in keys:
            self.values[key] = ("sent", self._now_ms() + self.sent_ms)

    async def release(self, keys: Sequence[LedgerKey]) -> None:
        for key in keys:
            if self._live(key) == "pending":
                del self.values[key]

    async def delivered(self, keys: Sequence[LedgerKey]) -> list[bool]:
        return [self._live(key) == "sent" for key in keys]

    async def close(self) -> None:
        return None
