"""render_common.batching: concurrent submissions grouped, each caller gets its own outcome."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from render_common.batching import Batch, Batcher

pytestmark = pytest.mark.asyncio

user = contextvars.ContextVar("user", default="nobody")


async def test_quiet_submission_runs_alone_and_at_once() -> None:
    sizes: list[int] = []

    async def handle(batch: Batch[int]) -> list[int]:
        sizes.append(len(batch.items))
        return [item * 2 for item in batch.items]

    batcher: Batcher[int, int] = Batcher(handle, name="t")
    assert await asyncio.wait_for(batcher.submit(21), 1) == 42
    assert sizes == [1]


async def test_concurrent_submissions_share_batches_in_order() -> None:
    seen: list[list[int]] = []
    release = asyncio.Event()

    async def handle(batch: Batch[int]) -> list[int]:
        seen.append(list(batch.items))
        await release.wait()
        return [item + 100 for item in batch.items]

    batcher: Batcher[int, int] = Batcher(handle, name="t", max_batch=8)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)  # the first batch is in flight; the rest queue behind it
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 20)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(first, *rest)
    assert results == [i + 100 for i in range(20)]
    assert seen[0] == [0]
    assert [len(batch) for batch in seen[1:]] == [8, 8, 3]
    assert [item for batch in seen for item in batch] == list(range(20))


async def test_each_caller_gets_its_own_exception() -> None:
    async def handle(batch: Batch[int]) -> list[int | BaseException]:
        return [ValueError(f"odd {i}") if i % 2 else i for i in batch.items]

    batcher: Batcher[int, int] = Batcher(handle, name="t")
    results = await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)
    assert results[0::2] == [0, 2, 4]
    assert [str(e) for e in results[1::2]] == ["odd 1", "odd 3", "odd 5"]


async def test_a_failing_handler_fails_only_its_batch() -> None:
    # Also the next submission after a batch ends starts a drain: it once waited forever
    # when the finished drain had not yet left its slot (done-callbacks run later).
    calls = 0

    async def handle(batch: Batch[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return list(batch.items)

    batcher: Batcher[int, int] = Batcher(handle, name="t")
    with pytest.raises(ConnectionError):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2


async def test_wrong_result_count_is_an_error_not_a_hang() -> None:
    async def handle(batch: Batch[int]) -> list[int]:
        return []

    batcher: Batcher[int, int] = Batcher(handle, name="t")
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await asyncio.wait_for(batcher.submit(1), 1)


async def test_caller_cancelled_before_its_batch_is_dropped() -> None:
    seen: list[int] = []
    release = asyncio.Event()

    async def handle(batch: Batch[int]) -> list[int]:
        seen.extend(batch.items)
        await release.wait()
        return list(batch.items)

    batcher: Batcher[int, int] = Batcher(handle, name="t")
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    doomed = asyncio.create_task(batcher.submit(2))
    kept = asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0)
    doomed.cancel()
    release.set()
    assert await first == 1 and await kept == 3
    assert seen == [1, 3]
    await batcher.close()


async def test_drain_does_not_inherit_the_callers_context() -> None:
    observed: list[str] = []

    async def handle(batch: Batch[int]) -> list[int]:
        observed.append(user.get())
        return list(batch.items)

    batcher: Batcher[int, int] = Batcher(handle, name="t")
    user.set("alice")
    await batcher.submit(1)
    assert observed == ["nobody"]


async def test_one_batch_in_flight_at_a_time() -> None:
    in_flight = peak = 0

    async def handle(batch: Batch[int]) -> list[int]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return list(batch.items)

    batcher: Batcher[int, int] = Batcher(handle, name="t", max_batch=2)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(20))) == list(range(20))
    assert peak == 1


async def test_linger_gathers_more_under_load_but_never_delays_a_lone_caller() -> None:
    seen: list[list[int]] = []
    gates = [asyncio.Event(), asyncio.Event()]

    async def handle(batch: Batch[int]) -> list[int]:
        seen.append(list(batch.items))
        if len(seen) <= len(gates):
            await gates[len(seen) - 1].wait()
        return list(batch.items)

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    batcher: Batcher[int, int] = Batcher(handle, name="t", linger=0.2)
    first = asyncio.create_task(batcher.submit(0))
    await settle()
    assert seen == [[0]]  # quiet: a lone caller's batch starts at once, no linger
    second = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    gates[0].set()
    await settle()
    assert seen == [[0], [1, 2]]  # after a batch of one: no linger either
    third = [asyncio.create_task(batcher.submit(3))]
    gates[1].set()
    await settle()
    # Under load (the last batch had two): the next batch lingers and gathers latecomers.
    third.append(asyncio.create_task(batcher.submit(4)))
    assert await asyncio.gather(first, *second, *third) == [0, 1, 2, 3, 4]
    assert seen == [[0], [1, 2], [3, 4]]
    await batcher.close()


async def test_posted_items_are_handled_without_a_waiting_caller() -> None:
    handled: list[int] = []

    async def handle(batch: Batch[int]) -> list[int | BaseException]:
        handled.extend(batch.items)
        return [ValueError("dropped") if i == 2 else i for i in batch.items]

    batcher: Batcher[int, int] = Batcher(handle, name="t")
    for i in range(4):
        batcher.post(i)
    await batcher.close()
    assert handled == [0, 1, 2, 3]
