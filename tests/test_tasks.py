"""render_common.tasks: a cancellation absorbed by a library still stops a loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from render_common.tasks import (
    Backoff,
    cancelling,
    every,
    one_pass,
    polled,
    raise_if_cancelling,
    supervised,
)


async def _absorbing_call() -> None:
    """Like a driver that turns a cancellation into a normal return."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        return


async def test_loop_stops_although_a_call_absorbed_the_cancel() -> None:
    passes = 0

    async def loop() -> None:
        nonlocal passes
        while True:
            await _absorbing_call()
            passes += 1
            raise_if_cancelling()
            await asyncio.sleep(10)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(2):
            await task
    assert passes == 1


async def test_nothing_happens_outside_a_cancellation() -> None:
    """A task nobody cancelled is not cancelling, and the check lets it run on to the end."""
    passes: list[int] = []

    async def loop_body() -> str:
        for n in range(3):
            assert not cancelling()
            raise_if_cancelling()  # must not raise: nothing asked this task to stop
            passes.append(n)
            await asyncio.sleep(0)
        return "finished"

    assert await asyncio.create_task(loop_body()) == "finished"
    assert passes == [0, 1, 2]


class _Absorber:
    """A step that waits (as a driver call does) and absorbs the first cancellation that
    reaches it there: returning normally, or raising `turn_into` instead."""

    def __init__(self, turn_into: Exception | None = None) -> None:
        self.turn_into = turn_into
        self.entered = asyncio.Event()
        self.passes = 0

    async def __call__(self) -> None:
        self.passes += 1
        self.entered.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if self.passes > 1:
                raise
            if self.turn_into is not None:
                raise self.turn_into from None


async def _cancel_inside(task: asyncio.Task[Any], step: _Absorber) -> None:
    """Cancel `task` while it waits in `step`: it must end cancelled, and soon."""
    async with asyncio.timeout(2):
        await step.entered.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    try:
        assert done, "the loop went on after its cancellation"
        assert task.cancelled()
    finally:
        task.cancel()  # a loop that survived the first one does not absorb this
        await asyncio.gather(task, return_exceptions=True)


ABSORBED = [None, ConnectionError("Connection closed by server."), RuntimeError("driver")]


@pytest.mark.parametrize("turn_into", ABSORBED, ids=["returned", "oserror", "other"])
async def test_every_stops_although_its_step_absorbed_the_cancel(
    turn_into: Exception | None,
) -> None:
    step = _Absorber(turn_into)
    task = asyncio.create_task(every(10, step, "absorbing step"))
    await _cancel_inside(task, step)
    assert step.passes == 1


@pytest.mark.parametrize("turn_into", ABSORBED, ids=["returned", "oserror", "other"])
async def test_supervised_stops_although_its_step_absorbed_the_cancel(
    turn_into: Exception | None,
) -> None:
    """Without the re-raise, the loop would run the step again (or back off) for ever."""
    step = _Absorber(turn_into)
    failures: list[Exception] = []

    async def failed(exc: Exception) -> float:
        failures.append(exc)
        return 0.0

    task = asyncio.create_task(supervised(step, "absorbing step", failed=failed))
    await _cancel_inside(task, step)
    assert step.passes == 1
    assert failures == []  # a cancellation is not a failure to handle


async def test_one_pass_reraises_a_cancel_turned_into_a_redis_error() -> None:
    step = _Absorber(RedisConnectionError("Connection closed by server."))
    task = asyncio.create_task(one_pass(step, "absorbing step"))
    await _cancel_inside(task, step)


async def test_one_pass_swallows_and_logs_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RedisConnectionError("away")

    async def fine() -> None:
        return None

    assert await one_pass(broken, "a pass") is False
    assert await one_pass(fine, "a pass") is True
    logged = [r for r in caplog.records if r.name == "render_common.tasks"]
    assert [(r.levelno, r.getMessage()) for r in logged] == [(logging.WARNING, "a pass failed")]


async def test_supervised_backs_off_and_uses_the_hook_delay() -> None:
    """Failures are handed to the hook; its delay (0) replaces the backoff; `until` ends it."""
    outcomes: list[Exception | None] = [OSError("a"), OSError("b"), None, None]
    seen: list[Exception] = []

    async def step() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def failed(exc: Exception) -> float:
        seen.append(exc)
        return 0.0

    async with asyncio.timeout(2):  # the backoff's 10 s would time out
        await supervised(step, "step", backoff=10, failed=failed, until=lambda: not outcomes)
    assert [str(e) for e in seen] == ["a", "b"]


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_success() -> None:
    backoff = Backoff(0.05, 0.3)
    assert [backoff.next() for _ in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    backoff.reset()
    assert backoff.next() == 0.05
    assert [Backoff(1.0).next() for _ in range(2)] == [1.0, 1.0]


async def test_every_wakes_early_when_told() -> None:
    wake = asyncio.Event()
    passes = 0

    async def step() -> None:
        nonlocal passes
        passes += 1

    task = asyncio.create_task(every(10, step, "step", wake=wake))
    await asyncio.sleep(0.05)
    assert passes == 1
    wake.set()
    await asyncio.sleep(0.05)
    assert passes == 2 and not wake.is_set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_polled_stops_although_a_read_absorbed_the_cancel() -> None:
    """As redis-py's PubSub.get_message(timeout) may: the read returns None, cancelled."""
    step = _Absorber()
    reads: list[None] = []

    async def listen() -> None:
        async for item in polled(step):
            reads.append(item)

    task = asyncio.create_task(listen())
    await _cancel_inside(task, step)
    assert reads == []
