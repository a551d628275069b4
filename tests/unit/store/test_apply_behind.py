"""ApplyBehind's own rules, without Redis: one apply in flight, shielded from a cancelled batch,
retried through outages, bounded at close."""

from __future__ import annotations

import asyncio

import pytest

from agents.store.apply_behind import ApplyBehind
from agents.store.errors import StoreBugError


def test_a_second_apply_cannot_start_before_the_first_is_settled() -> None:
    async def scenario() -> None:
        behind = ApplyBehind()
        gate = asyncio.Event()
        behind.start(gate.wait)
        with pytest.raises(RuntimeError, match="settle"):
            behind.start(gate.wait)
        gate.set()
        await behind.settle()
        assert not behind.in_flight
        behind.start(gate.wait)  # settled: the next may start
        await behind.settle()

    asyncio.run(scenario())


def test_a_batch_cancelled_while_it_waits_leaves_the_apply_running() -> None:
    """A revocation or a shutdown cancels the batch that waits in `settle`: the apply goes on,
    and the next settle waits for that same apply, not for nothing."""

    async def scenario() -> list[str]:
        behind = ApplyBehind()
        gate, done = asyncio.Event(), []

        async def apply() -> None:
            await gate.wait()
            done.append("applied")

        behind.start(apply)
        waiting = asyncio.create_task(behind.settle())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert behind.in_flight and not done
        gate.set()
        await behind.settle()
        return done

    assert asyncio.run(scenario()) == ["applied"]


def test_an_outage_is_retried_and_told_and_a_fatal_error_is_raised_by_settle_once() -> None:
    async def scenario() -> tuple[list[str], int]:
        told: list[str] = []
        behind = ApplyBehind(lambda exc, delay: told.append(f"{exc} {delay}"))
        tries = 0

        async def flaky() -> None:
            nonlocal tries
            tries += 1
            if tries == 1:
                raise ConnectionError("gone")

        behind.start(flaky)
        await behind.settle()

        async def rejected() -> None:
            raise StoreBugError("apply_agent.lua: bad share")

        behind.start(rejected)
        with pytest.raises(StoreBugError):
            await behind.settle()
        await behind.settle()  # raised once: nothing is in flight any more
        return told, tries

    told, tries = asyncio.run(scenario())
    assert told == ["gone 0.1"] and tries == 2


def test_finish_waits_within_its_time_and_close_cancels_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A revocation gives the apply its time and leaves it running; a closing command cancels it."""

    async def scenario() -> list[str]:
        events: list[str] = []
        gate = asyncio.Event()

        async def apply() -> None:
            try:
                await gate.wait()
                events.append("applied")
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

        behind = ApplyBehind()
        behind.start(apply)
        await behind.finish(timeout_s=0.01)
        assert behind.in_flight, "finish must never cancel"
        gate.set()
        await behind.finish(timeout_s=5)
        await behind.settle()
        gate.clear()
        behind.start(apply)
        await asyncio.sleep(0)
        behind.close()
        await asyncio.sleep(0)
        return events

    assert asyncio.run(scenario()) == ["applied", "cancelled"]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "still applying" in said[0] and "stopping before" in said[1]


def test_a_fatal_error_is_said_at_once_not_at_the_next_batch(caplog: pytest.LogCaptureFixture) -> None:
    """A quiet worker has no next batch to raise it: the log says it when it happens."""

    async def scenario() -> None:
        async def rejected() -> None:
            raise StoreBugError("apply_agent.lua: bad share")

        behind = ApplyBehind()
        behind.start(rejected)
        await asyncio.sleep(0.01)  # no settle yet
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert "failed for good" in caplog.records[0].getMessage()
        with pytest.raises(StoreBugError):
            await behind.settle()

    asyncio.run(scenario())
