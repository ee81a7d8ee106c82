"""The sweeper against real PostgreSQL and Redis: what counts as a lost queue entry.

Issue 15's leftover: under Lambda load render_api logged "queue entries lost;
re-enqueueing" although nothing was lost. A due retry is moved from render:retry into its
engine's queue (one Lua script) and only then recorded on the row, which meanwhile still
names `retry:<attempt>`; the worker's Lambda reader may already have read the moved entry
(pending in its group) while the render waits, QUEUED, for its claim.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import update

from render_common import streams
from render_common.db.schema import video_renders
from render_common.queue import ensure_group
from render_common.renders import queries as renders
from render_common.renders.queries import QueuedEntry
from services.render_api.queue_probe import QueueProbe
from services.render_api.sweeper import Sweeper
from tests.support.redis_streams import fields as stream_fields
from tests.support.scenes import simple_scenes
from tests.support.stack import Stack, StackFactory


async def queued_for_retry(stack_factory: StackFactory, redis: Redis) -> tuple[Stack, str]:
    """render_api (no worker) and a Lambda render of it whose first attempt failed and
    whose retry (attempt 2) is due: the row names `retry:2`, render:retry holds nothing for
    it any more (as once the worker's mover has moved it). Its first entry is gone
    (acknowledged by the worker)."""
    stack = await stack_factory(worker=False, sweeper_interval_seconds=3600.0)
    render = await stack.start(simple_scenes())
    await redis.xdel(streams.SSR_JOBS_STREAM, render.queue_job_id)
    async with stack.api.engine.begin() as connection:
        await connection.execute(
            update(video_renders)
            .where(video_renders.c.id == render.render_id)
            .values(
                engine="lambda",
                attempt=1,
                retry_count=0,
                queue_job_id="retry:2",
                updated_at=datetime.now(UTC) - timedelta(seconds=5),
            )
        )
    return stack, render.render_id


async def sweep(stack: Stack) -> None:
    """One pass of a sweeper that reads every row (no grace), once render_api's own
    sweeper has finished its first pass (its next is an hour away): a pass skips while
    another holds the sweeper lock."""
    for _ in range(600):  # 30 s at most
        if not await stack.api.redis.exists(streams.SWEEPER_LOCK):
            break
        await asyncio.sleep(0.05)
    await Sweeper(stack.api.engine, stack.api.redis, grace_seconds=0.0).sweep_once()


async def lambda_entries(redis: Redis, render_id: str) -> list[dict[str, str]]:
    jobs = await stream_fields(redis, streams.LAMBDA_JOBS_STREAM)
    return [job for job in jobs if job.get("render_id") == render_id]


async def recorded_entry(stack: Stack, render_id: str) -> str | None:
    row = await renders.get(stack.api.engine, render_id)
    assert row is not None
    return row.queue_job_id


async def test_a_moved_retry_read_but_not_claimed_is_not_lost(
    stack_factory: StackFactory, redis: Redis
) -> None:
    stack, render_id = await queued_for_retry(stack_factory, redis)
    # The mover's XADD into the Lambda queue, then the Lambda reader's XREADGROUP: the entry
    # is pending in the group, the render still QUEUED (its claim and the mover's record of
    # the entry id have not happened yet).
    queue = streams.LAMBDA_QUEUE
    await ensure_group(redis, queue)
    fields = {"render_id": render_id, "attempt": "2", "traceparent": ""}
    moved = await redis.xadd(queue.stream, fields)  # type: ignore[arg-type]
    read: Any = await redis.xreadgroup(queue.group, "lambda-reader", {queue.stream: ">"})
    assert [entry_id for _, items in read for entry_id, _ in items] == [moved]

    await sweep(stack)

    assert await recorded_entry(stack, render_id) == "retry:2"  # not forgotten
    assert await lambda_entries(redis, render_id) == [fields]  # no second entry


async def test_a_retry_entry_that_is_really_gone_is_replaced(
    stack_factory: StackFactory, redis: Redis
) -> None:
    stack, render_id = await queued_for_retry(stack_factory, redis)
    await ensure_group(redis, streams.LAMBDA_QUEUE)

    await sweep(stack)

    entries = await lambda_entries(redis, render_id)
    assert [entry["attempt"] for entry in entries] == ["2"]
    assert (await recorded_entry(stack, render_id) or "").count("-") == 1  # a stream id now


async def test_probe_finds_what_each_queue_holds(redis: Redis) -> None:
    """One script call per queue answers which recorded entries are gone; an id Redis
    cannot look up counts as held (only what is surely gone is re-enqueued)."""
    await ensure_group(redis, streams.SSR_QUEUE)
    now = datetime.now(UTC)
    there = str(await redis.xadd(streams.SSR_JOBS_STREAM, {"render_id": "r-there"}))
    gone = str(await redis.xadd(streams.SSR_JOBS_STREAM, {"render_id": "r-gone"}))
    await redis.xdel(streams.SSR_JOBS_STREAM, gone)
    rows = [
        QueuedEntry("r-there", there, 0, "ssr", now),
        QueuedEntry("r-gone", gone, 0, "ssr", now),
        QueuedEntry("r-bogus", "not-a-stream-id", 0, "ssr", now),
        QueuedEntry("r-elsewhere", there, 0, "lambda", now),  # not in its own queue
    ]
    probe = QueueProbe(redis, legacy=False)
    assert await probe.held(rows, waiting=set()) == {"r-there", "r-bogus"}
