"""A report's turn (report_pool.py): `processes` at once, `queue` more waiting, and past that
503 busy straight away, also for requests that arrive together."""

from __future__ import annotations

import asyncio

from agents.worker.report_pool import Busy, ReportPool


async def _take(pool: ReportPool, release: asyncio.Event) -> str:
    try:
        async with pool.turn():
            await release.wait()
            return "ran"
    except Busy:
        return "busy"


def test_a_burst_past_the_turns_and_the_queue_is_told_busy_at_once() -> None:
    """Eight requests in one burst at one turn and two places in the queue: three get in (one
    runs, two wait), and five are busy before any of them ran."""

    async def burst() -> tuple[list[str], int]:
        pool, release = ReportPool(1, 2), asyncio.Event()
        tasks = [asyncio.create_task(_take(pool, release)) for _ in range(8)]
        await asyncio.sleep(0.05)
        admitted = pool.running + pool.waiting
        release.set()
        return list(await asyncio.gather(*tasks)), admitted

    outcomes, admitted = asyncio.run(burst())
    assert admitted == 3
    assert sorted(outcomes) == ["busy"] * 5 + ["ran"] * 3


def test_a_turn_given_back_lets_the_next_request_in() -> None:
    async def one_after_another() -> list[str]:
        pool, release = ReportPool(1, 0), asyncio.Event()
        release.set()
        return [await _take(pool, release) for _ in range(3)]

    assert asyncio.run(one_after_another()) == ["ran", "ran", "ran"]
