"""render_common.tasks: a cancellation absorbed by a library still stops a loop."""

from __future__ import annotations

import asyncio

import pytest

from render_common.tasks import cancelling, raise_if_cancelling


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
