"""What one leader round reads of an agent (floor_reads.lua), as plain values: no Redis here,
so the floor reads them through a protocol (agents/exposure/floor.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from agents.core.projection import FIELD_NAMES, WIDTH
from agents.core.status import ChangePoint
from agents.core.windows import ROLLING_SECONDS, WINDOWS, BucketRead

_packed_reads = msgspec.msgpack.Decoder(
    tuple[
        str,
        list[int] | dict[str, int],
        list[int],
        int,
        str | bool,
        str | bool,
        list[str],
        int | bool,
        list[str],
        str,
        list[list[int]],
        str,
        int,
    ]
)
_ROLLING = [ROLLING_SECONDS.get(window, 0) for window in WINDOWS]


@dataclass(frozen=True, slots=True)
class AgentReads:
    """One agent's share of a leader round's reads (floor_reads.lua)."""

    token: str  # its outbox markers: unchanged token, unchanged buckets
    closed: list[int] | None  # the 28d window's days before today, summed; None: skipped
    sums: dict[str, list[int]]  # window -> summed vector, `28d` without the closed days
    waiting: tuple[int, int | None, str | None]  # (buyers, oldest wait start ms, that buyer)
    histogram: dict[str, int]
    # The first second at which the rolling windows' sums change with no write (None: never).
    valid_until_s: int | None = None
    points: list[ChangePoint] = field(default_factory=list)  # status change points, as status_points
    # What the closed days were read under (floor_reads.lua): give it back to skip them.
    closed_token: str = ""
    # The whole minutes of the rolling windows read, each as (slot, value, ...) of its non-zero
    # counters; they are not in `sums` (the caller keeps them: FloorCache).
    minutes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    minute_token: str = ""  # what the minutes were read under: give it back to read only changes
    whole_minutes: bool = True  # `minutes` are all of them, not only the changed ones


@dataclass(frozen=True, slots=True)
class MinutesHeld:
    """What the leader holds of an agent's whole minutes: the minute token they were read under,
    and the first and last minute held (floor_reads.lua reads the rest, and what changed)."""

    token: str = ""
    first: int | None = None
    last: int | None = None

    def span_args(self) -> tuple[str, str]:
        if self.first is None or self.last is None:
            return "", ""
        return str(self.first), str(self.last)


NO_MINUTES_HELD = MinutesHeld()


@dataclass(frozen=True, slots=True)
class IndexChanges:
    """A shop's agents index as changed since the leader last looked (floor_changes.lua)."""

    version: int  # the change log's counter now
    whole: bool  # `members` is the whole index (first look, or the log restarted)
    members: dict[str, int | None]  # agent -> its index score (last seen), None: it left the index
    birth: str = ""  # when the log was born: a log born again since the last look is read whole


def floor_plan(
    reads: Sequence[BucketRead],
    today: int,
    oldest_allowed_ms: int,
    now_ms: int = 0,
    status_since_ms: int | None = None,
    prune: bool = False,
    ahead_ms: int = 0,
) -> bytes:
    """The arguments floor_reads.lua shares across the agents of a shop, packed once: the reads
    as runs {kind, first, last, mask, lo, hi, closed} of consecutive buckets read alike (an
    hour of minutes is one run), so each agent's call carries a few hundred bytes. With
    `status_since_ms`, the status points from then on come too; with `prune`, the waits
    older than `oldest_allowed_ms` leave the live queue (the leader's duty). Cohorts stamped
    up to `ahead_ms` after `now_ms` (the decoder's future tolerance) are looked for, to say
    when they enter the windows, and a minute more."""
    closed_mask = 1 << WINDOWS.index("28d")
    runs: list[list[int | str]] = []
    closed_days: list[str] = []  # their day-log fields, named here once for every agent
    for r in sorted(reads, key=lambda r: (r.kind, r.ident)):
        closed = int(r.kind == "d" and r.ident < today and r.mask == closed_mask)
        if closed:
            closed_days.append(str(r.ident))
        last = runs[-1] if runs else None
        if (
            last is not None
            and last[0] == r.kind
            and last[2] == r.ident - 1
            and last[3:] == [r.mask, r.lo, r.hi, closed]
        ):
            last[2] = r.ident
        else:
            runs.append([r.kind, r.ident, r.ident, r.mask, r.lo, r.hi, closed])
    since = "" if status_since_ms is None else str(status_since_ms)
    return msgspec.msgpack.encode(
        [
            len(WINDOWS),
            WIDTH,
            list(FIELD_NAMES),
            str(oldest_allowed_ms),
            runs,
            now_ms // 1000,
            _ROLLING,
            since,
            int(prune),
            closed_days,
            # A minute more: a writer's clock may be ahead of this one, and a batch judged after it.
            (now_ms + ahead_ms) // 60_000 + 1,
        ]
    )


def agent_reads(packed: bytes) -> AgentReads:
    (
        token,
        closed,
        flat,
        count,
        score,
        member,
        histogram,
        valid_until,
        points,
        closed_token,
        minute_rows,
        minute_token,
        whole_minutes,
    ) = _packed_reads.decode(packed)
    sums = {name: flat[i * WIDTH : (i + 1) * WIDTH] for i, name in enumerate(WINDOWS)}
    waiting = (
        (count, int(score), member)
        if isinstance(score, str) and isinstance(member, str)
        else (count, None, None)
    )
    return AgentReads(
        token,
        closed if isinstance(closed, list) and closed else None,
        sums,
        waiting,
        {histogram[i]: int(histogram[i + 1]) for i in range(0, len(histogram), 2)},
        valid_until if not isinstance(valid_until, bool) else None,
        [_point(points[i], points[i + 1]) for i in range(0, len(points), 2)],
        closed_token,
        {row[0]: _minute(row) for row in minute_rows},
        minute_token,
        bool(whole_minutes),
    )


def _minute(row: list[int]) -> tuple[int, ...]:
    """`{minute, slot, value, ...}` with Lua's slots from 1: (slot, value, ...) from 0."""
    pairs = row[1:]
    pairs[0::2] = [slot - 1 for slot in pairs[0::2]]
    return tuple(pairs)


def _point(member: str, score: str) -> ChangePoint:
    """As status_store.parse_member: `<offset>|<status>|<event id>` at its event time."""
    return ChangePoint(int(float(score)), member.split("|", 2)[1])
