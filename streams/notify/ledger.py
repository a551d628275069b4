"""One message per (alert_id, state), across restarts and across `notify` processes.

Two phases, because neither order of "mark" and "send" alone is safe: marking first loses the
notice when the process dies between mark and send; sending first sends it twice when two
processes read the same record (a rebalance) or a crash comes before the mark.

- `claim` sets the key to *pending* for a short TTL, only if it has no value (SET NX). The
  process that gets `claimed` sends; while it holds notices (retrying, quiet hours) it
  `keep`s its claims alive.
- `settle` turns the key into *sent* for days, after the robot accepted the notice (or it went
  to the dead letter): a repeat of the event, read after a restart, is `sent` and dropped.
- A claim that finds another process's *pending* is `busy`: the record waits (its offset is
  not committed) until that process settles it, or dies and its TTL runs out, and then claims
  it itself. So a crash between claim and send delays the notice by the TTL, never loses it.

Each channel's delivery is settled on its own as well (`(alert_id, "<state>@<channel>")`), the
moment that robot took it: a claim that lapses while another robot still holds the alert (its
quiet hours, a process stopped meanwhile) is taken again by the next process, which sends it
only to the robots that have not had it (`delivered`).

The one window left is a crash after the robot accepted and before `settle`: the next process
sends it again. One double message after a crash beats a lost alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

ClaimResult = Literal["claimed", "sent", "busy"]
LedgerKey = tuple[str, str]  # (alert_id, state)


class NotifyLedger(Protocol):
    """agents/store/notify_store.py: the Redis ledger and its in-memory twin."""

    async def claim(self, keys: Sequence[LedgerKey]) -> list[ClaimResult]:
        """For each key: `claimed` (now pending for this process), `sent` or `busy`."""
        ...

    async def keep(self, keys: Sequence[LedgerKey]) -> None:
        """Extend this process's pending claims on `keys`."""
        ...

    async def settle(self, keys: Sequence[LedgerKey]) -> None:
        """Mark `keys` sent, for the ledger's long TTL."""
        ...

    async def release(self, keys: Sequence[LedgerKey]) -> None:
        """Drop this process's pending claims on `keys` (a clean stop): the next process takes
        them at once instead of after their TTL."""
        ...

    async def delivered(self, keys: Sequence[LedgerKey]) -> list[bool]:
        """For each key: is it marked sent (a channel's delivery of an alert, say)?"""
        ...

    async def close(self) -> None: ...
