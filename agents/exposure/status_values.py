"""Agent status figures (core/status.py) into the window values the floor and reports show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import msgspec

from agents.core.status import StatusTime
from streams.contract.floor import WindowValues

Values = TypeVar("Values", bound=WindowValues)


def with_status(values: Values, time: StatusTime) -> Values:
    """`values` with the window's online and away seconds and logins (a team's: the agents' sums)."""
    return msgspec.structs.replace(
        values, online_seconds=time.online_seconds, away_seconds=time.away_seconds, logins=time.logins
    )


def total(times: Sequence[StatusTime]) -> StatusTime:
    """The figures summed: one StatusTime made, not one per addition (a shop's team each round)."""
    return StatusTime(
        sum(time.online_ms for time in times),
        sum(time.away_ms for time in times),
        sum(time.logins for time in times),
    )
