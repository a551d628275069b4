"""When each shop's daily digest (日报) goes: a local time of day in the shop's own time zone.

Pure time arithmetic plus one small scheduler. The scheduler only decides; whether this process
may send a day's digest is a claim through an injected function (the notify ledger's two-phase
claim in the service, digest.py), keyed by (shop, reported business day), so a restart or a
second `notify` never sends it twice, and one that dies holding it leaves it to the next.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from config.calendar import calendar_for
from config.errors import KefuError
from streams.notify.ledger import ClaimResult

_AT = re.compile(r"(?P<hour>[01]\d|2[0-3]):(?P<minute>[0-5]\d)")

# A digest whose time passed while no `notify` ran (a restart, a short outage) still goes, late,
# within this long; later than that the day is skipped and the next one waits for its hour.
DEFAULT_CATCH_UP_MS = 2 * 3_600_000

# (shop, reported business day as a date ordinal) -> the ledger's answer for the day's digest
# (ledger.py): `claimed` (this process sends it), `sent` (done before), `busy` (another holds it).
Claim = Callable[[str, int], Awaitable[ClaimResult]]


class DigestTimeError(KefuError, ValueError):
    """A digest time that is not HH:MM (00:00 to 23:59)."""


def parse_at(at: str) -> time:
    """`at` ("09:00") as a time of day; anything else is refused in one sentence."""
    match = _AT.fullmatch(at)
    if match is None:
        raise DigestTimeError(f"digest_at must be a time of day as HH:MM (00:00 to 23:59), not {at!r}")
    return time(int(match["hour"]), int(match["minute"]))


def next_digest_ms(now_ms: int, zone: str, at: str) -> int:
    """The first instant strictly after `now_ms` at which the shop's clock (in `zone`) reads `at`.

    On a day the clock skips `at` (spring forward), the first instant after the gap; on a day
    it reads `at` twice (fall back), only the first of the two."""
    wall = parse_at(at)
    calendar = calendar_for(zone)
    today = calendar.day(now_ms)
    for day in range(today, today + 3):  # one day ahead always suffices; two for safety near gaps
        fire_ms = local_instant_ms(date.fromordinal(day), wall, calendar.zone)
        if fire_ms > now_ms:
            return fire_ms
    raise AssertionError("unreachable: a local time of day recurs within two days")


def local_instant_ms(day: date, wall: time, zone: ZoneInfo) -> int:
    """The first instant at which the clock in `zone` reads `wall` on `day`, or if it never
    does (a gap), the first instant after the gap."""
    naive = datetime.combine(day, wall)
    # fold=0 reads a repeated wall time as its first occurrence; a skipped one it reads with the
    # offset before the gap and fold=1 with the offset after: the gap's end lies between the two.
    first = int(naive.replace(tzinfo=zone, fold=0).timestamp())
    if _wall_at(first, zone) == naive:
        return first * 1000
    second = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    return _gap_end(naive, min(first, second), max(first, second), zone) * 1000


def _wall_at(second: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(second, tz=zone).replace(tzinfo=None)


def _gap_end(naive: datetime, low: int, high: int, zone: ZoneInfo) -> int:
    """The first whole second in (low, high] whose wall time is at or past `naive`: inside one
    gap the wall clock only moves forward, so a binary search finds the gap's end."""
    while high - low > 1:
        middle = (low + high) // 2
        if _wall_at(middle, zone) >= naive:
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """What a shop's digest needs from the configuration: shops with `digest_at: null` have none."""

    shop: str
    zone: str
    at: str  # HH:MM, the shop's local time
    name: str  # the shop's name as people say it (its id when it has none)
    floor_url: str | None  # the base of the link to the report page; None: no link


@dataclass(frozen=True, slots=True)
class DueDigest:
    shop: str
    day: int  # the reported business day (yesterday at `fire_ms`), a date ordinal
    fire_ms: int  # when it was due
    plan: DigestPlan


class DigestScheduler:
    """Which shops' digests are due; asked once a minute by the notify service.

    In memory it keeps each shop's next time, so a due digest is handed out until it is
    `settle`d; across processes and restarts the `claim` decides (key: shop, reported day)."""

    def __init__(
        self, plans: Iterable[DigestPlan], claim: Claim, now_ms: int, catch_up_ms: int = DEFAULT_CATCH_UP_MS
    ) -> None:
        self._plans = {plan.shop: plan for plan in plans}
        self._claim = claim
        self._catch_up_ms = catch_up_ms
        for plan in self._plans.values():
            parse_at(plan.at)  # refused here, at start-up, rather than at the first digest
        # Starting from `now - catch_up` lets a digest missed by a short restart still go.
        self._next = {s: next_digest_ms(now_ms - catch_up_ms, p.zone, p.at) for s, p in self._plans.items()}

    def next_ms(self, shop: str) -> int | None:
        """When `shop`'s next digest is due; None for a shop without one."""
        return self._next.get(shop)

    def pending(self, now_ms: int) -> list[DueDigest]:
        """The digests due at `now_ms` and not yet settled by this process, by shop id. One
        whose time is more than the catch-up window ago is dropped for its next one."""
        due = []
        for shop in sorted(self._next):
            plan = self._plans[shop]
            while self._next[shop] < now_ms - self._catch_up_ms:
                self._next[shop] = next_digest_ms(self._next[shop], plan.zone, plan.at)
            fire_ms = self._next[shop]
            if fire_ms <= now_ms:
                day = calendar_for(plan.zone).day(fire_ms) - 1
                due.append(DueDigest(shop, day, fire_ms, plan))
        return due

    async def claim(self, digest: DueDigest) -> ClaimResult:
        """Claims the digest for this process (`sent`: another process or an earlier run sent
        it) and settles it here either way, unless another process holds it (`busy`: it is
        asked again next minute, and sent here if that process died holding it). A claim that
        raises settles nothing: tried next minute."""
        result = await self._claim(digest.shop, digest.day)
        if result != "busy":
            self.settle(digest)
        return result

    def settle(self, digest: DueDigest) -> None:
        """Done with this day's digest in this process (sent, or never to be sent)."""
        if self._next.get(digest.shop) == digest.fire_ms:
            plan = self._plans[digest.shop]
            self._next[digest.shop] = next_digest_ms(digest.fire_ms, plan.zone, plan.at)
