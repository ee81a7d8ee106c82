"""Reading Redis streams in tests, typed: redis-py types stream replies loosely (Any, None)."""

from __future__ import annotations

import asyncio
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from render_common import streams

Entry = tuple[str, dict[str, str]]


async def entries(redis: Redis, key: str, *, count: int | None = None) -> list[Entry]:
    """XRANGE of `key` (oldest first) on a client made with decode_responses=True."""
    return cast(list[Entry], await redis.xrange(key, count=count))


async def fields(redis: Redis, key: str) -> list[dict[str, str]]:
    """The fields of every entry of `key`, oldest first."""
    return [values for _, values in await entries(redis, key)]


async def render_events(redis: Redis, render_id: str) -> list[dict[str, str]]:
    """The fields of a render's progress events, oldest first."""
    return await fields(redis, streams.events_stream(render_id))


async def unacknowledged(redis: Redis) -> int:
    """Job entries read by a worker and not acknowledged yet, over every job queue."""
    pending = 0
    for queue in streams.JOB_QUEUES:
        try:
            summary = await redis.xpending(queue.stream, queue.group)
        except ResponseError:  # no such stream or group yet
            continue
        pending += int(summary["pending"])
    return pending


async def attempts_over(redis: Redis, timeout: float = 60.0) -> None:
    """Wait until every job entry a worker read is acknowledged. A worker acknowledges an
    attempt last: after the terminal commit, its event and the removal of the attempt's
    work directory, so a terminal row alone does not mean the attempt is over."""
    async with asyncio.timeout(timeout):
        while await unacknowledged(redis):  # noqa: ASYNC110 (polls Redis)
            await asyncio.sleep(0.1)
