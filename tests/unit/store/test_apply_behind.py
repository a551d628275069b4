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


def test_close_lets_the_apply_finish_within_its_time_then_cancels_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> tuple[list[str], bool]:
        finished: list[str] = []

        async def quick() -> None:
            await asyncio.sleep(0.01)
            finished.append("quick")

        behind = ApplyBehind()
        behind.start(quick)
        await behind.close(timeout_s=5)
        assert not caplog.records
        stuck = asyncio.Event()
        behind.start(stuck.wait)
        await behind.close(timeout_s=0.01)
        await asyncio.sleep(0)
        return finished, behind.in_flight

    finished, in_flight = asyncio.run(scenario())
    assert finished == ["quick"] and not in_flight
    assert ["next owner applies them" in r.getMessage() for r in caplog.records] == [True]
