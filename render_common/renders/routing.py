"""Which engine's queue carries a render: read from the rows, for the writers that hold
only render ids (the sweeper's re-enqueues, the drain of the legacy render:jobs stream)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from redis.asyncio import Redis
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.db.schema import video_renders
from render_common.queue import QueuedAttempt, enqueue_attempts

c = video_renders.c


async def engines_of(engine: AsyncEngine, render_ids: Iterable[str]) -> dict[str, str]:
    """The engine of each render that exists (render id -> "ssr" | "lambda")."""
    ids = sorted(set(render_ids))
    if not ids:
        return {}
    async with engine.connect() as connection:
        rows = (await connection.execute(select(c.id, c.engine).where(c.id.in_(ids)))).all()
    return {str(row[0]): str(row[1]) for row in rows}


async def enqueue_routed(
    engine: AsyncEngine, redis: Redis, attempts: Sequence[tuple[str, int]], traceparent: str
) -> list[str | Exception | None]:
    """XADD (render_id, attempt) pairs to their engines' queues: each entry id, the error
    Redis answered, or None for a render that no longer exists."""
    engines = await engines_of(engine, (render_id for render_id, _ in attempts))
    known = [
        QueuedAttempt(render_id, attempt, traceparent, engines[render_id])
        for render_id, attempt in attempts
        if render_id in engines
    ]
    replies = iter(await enqueue_attempts(redis, known) if known else [])
    return [next(replies) if render_id in engines else None for render_id, _ in attempts]


async def replace_entries(engine: AsyncEngine, moved: Sequence[tuple[str, str, str]]) -> None:
    """(render_id, old entry, new entry): the rows still naming the old entry (a QUEUED
    render whose entry moved to another queue) name the new one."""
    if not moved:
        return
    statement = (
        update(video_renders)
        .where(c.id == bindparam("rid"), c.queue_job_id == bindparam("old"))
        .values(queue_job_id=bindparam("new"))
        .execution_options(synchronize_session=False)
    )
    async with engine.begin() as connection:
        await connection.execute(
            statement, [{"rid": r, "old": old, "new": new} for r, old, new in moved]
        )
