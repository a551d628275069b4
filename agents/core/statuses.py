"""The agent statuses (events.md `agent_status`, metrics.md "Agent status (v3)"): their names,
shared by the status arithmetic (status.py) and its compiled part (status_spans.py)."""

from __future__ import annotations

from typing import Final

ONLINE: Final = "online"
AWAY: Final = "away"
OFFLINE: Final = "offline"
UNKNOWN: Final = "unknown"
# Every value `kefu_agent_status{status}` and the floor's `agent_status` can take.
STATUSES: Final[tuple[str, ...]] = (ONLINE, AWAY, OFFLINE, UNKNOWN)
# Logged in: the statuses whose time counts as online, and into which a change is a login.
LOGGED_IN: Final = frozenset({ONLINE, AWAY})
