"""The daily digests that are due, as notices: read each due shop's report for yesterday, render
it, claim it (so no other process or restart sends it again), hand it to the sender.

No state code here (streams may not import agents): the command passes the report reader in,
`report_fetcher` adapts the worker's report service to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from typing import Protocol

from config.errors import KefuError
from config.settings import Settings
from streams.contract.floor import TeamWindowValues
from streams.contract.report import PreviousPeriod, Report, ReportRequestError
from streams.notify.ledger import ClaimResult, LedgerKey, NotifyLedger
from streams.notify.schedule import DigestPlan, DigestScheduler, DueDigest
from streams.render.digest import digest_notice, report_link
from streams.render.notices import Notice

log = logging.getLogger(__name__)

# (shop, business day as a date ordinal) -> that day's report and the team the day before.
Fetch = Callable[[str, int], Awaitable[tuple[Report, TeamWindowValues | None]]]


class ReportSource(Protocol):
    """What the digest reads of the report service (agents/exposure/report.py `ReportReader`)."""

    async def request(
        self, shop: str, first: str | None, last: str | None, by: str | None, now_ms: int
    ) -> tuple[Report, bool]: ...

    async def previous_team(self, report: Report, now_ms: int) -> PreviousPeriod | None: ...


def report_fetcher(reports: ReportSource, clock: Callable[[], int]) -> Fetch:
    """`Fetch` over the report service, as `kefu-pulse report --from D --to D` reads it."""

    async def fetch(shop: str, day: int) -> tuple[Report, TeamWindowValues | None]:
        now_ms = clock()
        asked = date.fromordinal(day).isoformat()
        report, _ = await reports.request(shop, asked, asked, None, now_ms)
        previous = await reports.previous_team(report, now_ms)
        return report, None if previous is None else previous.team

    return fetch


def digest_plans(settings: Settings) -> list[DigestPlan]:
    """Every configured shop with a digest time and at least one channel, by shop id."""
    plans = []
    for shop_id, shop in sorted(settings.shops.items()):
        notify = shop.notify.over(settings.defaults.notify) if shop.notify else settings.defaults.notify
        if notify.digest_at is None or not notify.channels:
            continue
        zone = shop.timezone or settings.defaults.timezone
        plans.append(DigestPlan(shop_id, zone, notify.digest_at, shop.name or shop_id, notify.floor_url))
    return plans


def digest_ledger_key(shop: str, day: int) -> LedgerKey:
    """The digest's key in the notify ledger (`kp:notify:daily:digest|<shop>|<day>`)."""
    return (f"digest|{shop}|{day}", "daily")


class LedgerDigestClaim:
    """`Claim` of schedule.py through the notify ledger: pending while this process holds the
    digest (quiet hours, retries; kept alive with the alerts' claims), sent once a robot took it
    or it went to the dead letter. A process that dies holding it leaves the claim to lapse, and
    the next one sends it, if it starts within the catch-up window (schedule.py) of the
    digest's time: never twice, and not lost to a restart within that window."""

    def __init__(self, ledger: NotifyLedger) -> None:
        self.ledger = ledger

    async def __call__(self, shop: str, day: int) -> ClaimResult:
        [result] = await self.ledger.claim([digest_ledger_key(shop, day)])
        return result


async def due_digests(
    shops_due: Iterable[DueDigest], fetch: Fetch, scheduler: DigestScheduler
) -> list[tuple[DueDigest, Notice]]:
    """The notices of the due digests this process has claimed, each with its digest.

    Every notice is rendered first, and only then are they claimed, together, for the caller
    to put on their channels at once: a claim is kept alive once its notice is held there, and
    one taken before the next shops' reports were read (seconds each, every shop due at the
    same 09:00) could lapse meanwhile, for a second process to send the digest too.
    A shop whose report cannot be read now (an outage) is left due and tried again at the next
    call; one whose day has no report at all (a shop without data) is skipped for that day."""
    rendered = []
    for digest in shops_due:
        try:
            rendered.append((digest, await _notice(digest, fetch)))
        except ReportRequestError as error:
            log.warning("daily digest of %s for %s skipped: %s", digest.shop, _day(digest), error)
            scheduler.settle(digest)
        except KefuError:
            raise  # a setting that cannot work: the service stops and says why
        except Exception as error:  # an outage: the other shops' digests still go
            log.warning(
                "daily digest of %s not sent yet (%s), tried again", digest.shop, type(error).__name__
            )
    claimed = []
    for digest, notice in rendered:
        try:
            won = await scheduler.claim(digest) == "claimed"
        except KefuError:
            raise
        except Exception as error:  # the ledger is away: asked again at the next call
            log.warning(
                "daily digest of %s not sent yet (%s), tried again", digest.shop, type(error).__name__
            )
            continue
        if won:
            claimed.append((digest, notice))
    return claimed


async def _notice(digest: DueDigest, fetch: Fetch) -> Notice:
    """The digest's notice, rendered before it is claimed: a claim is never spent on a digest
    that cannot be sent."""
    report, previous = await fetch(digest.shop, digest.day)
    link = report_link(digest.plan.floor_url, digest.shop, _day(digest))
    return digest_notice(report, previous, link, digest.plan.name)


async def digests_due_now(
    scheduler: DigestScheduler, fetch: Fetch, now_ms: int
) -> list[tuple[DueDigest, Notice]]:
    """What the notify service calls once a minute: the digests to send now, with their notices."""
    return await due_digests(scheduler.pending(now_ms), fetch, scheduler)


def _day(digest: DueDigest) -> str:
    return date.fromordinal(digest.day).isoformat()
