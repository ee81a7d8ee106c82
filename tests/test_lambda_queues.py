"""The queue split and the batched leases against real Redis, PostgreSQL and SQLite:
attempts go to their engine's queue, the legacy render:jobs stream is drained into them,
due retries return to their engine's queue, and one statement renews many leases."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.db.engine import engine_for
from render_common.db.schema import video_renders
from render_common.queue import QueuedAttempt, enqueue_attempts, ensure_group
from render_common.renders.attempts import AttemptTransitions
from render_common.renders.bookkeeping import Bookkeeping
from render_common.renders.lease import Heartbeat, Lease, RenderLifecycle
from services.render_worker.consumer import MOVE_DUE_RETRIES
from services.render_worker.legacy_drain import LegacyDrain
from tests.support.render_rows import insert_render


@pytest_asyncio.fixture
async def engine(base_settings: Settings, database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on each database in turn."""
    db = engine_for(base_settings.with_overrides(database_url=database_url))
    yield db
    await db.dispose()


@pytest_asyncio.fixture(autouse=True)
async def _empty_queues(redis: Redis) -> AsyncIterator[None]:
    yield
    await redis.delete(*(queue.stream for queue in streams.JOB_QUEUES), streams.RETRY_ZSET)


async def entries(redis: Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    reply: Any = await redis.xrange(stream)
    return [(str(entry_id), dict(fields)) for entry_id, fields in reply]


async def queue_job_id(engine: AsyncEngine, render_id: str) -> str | None:
    async with engine.connect() as connection:
        query = video_renders.select().where(video_renders.c.id == render_id)
        row = (await connection.execute(query)).mappings().one()
    value = row["queue_job_id"]
    return None if value is None else str(value)


async def test_attempts_go_to_their_engines_queue(redis: Redis) -> None:
    replies = await enqueue_attempts(
        redis, [QueuedAttempt("r-ssr", 1, "", "ssr"), QueuedAttempt("r-lambda", 2, "", "lambda")]
    )
    assert all(isinstance(reply, str) for reply in replies)
    [(_, ssr)] = await entries(redis, streams.SSR_JOBS_STREAM)
    [(_, lam)] = await entries(redis, streams.LAMBDA_JOBS_STREAM)
    assert (ssr["render_id"], lam["render_id"], lam["attempt"]) == ("r-ssr", "r-lambda", "2")


async def test_legacy_entries_are_moved_into_their_engines_queue(
    engine: AsyncEngine, redis: Redis, user: str
) -> None:
    ssr = await insert_render(engine, user)
    lam = await insert_render(engine, user)
    async with engine.begin() as connection:
        await connection.execute(
            update(video_renders).where(video_renders.c.id == lam).values(engine="lambda")
        )
    await ensure_group(redis)
    legacy = {}
    for render_id in (ssr, lam, "gone-render"):
        fields = {"render_id": render_id, "attempt": "1", "traceparent": ""}
        legacy[render_id] = str(await redis.xadd(streams.LEGACY_JOBS_STREAM, fields))  # type: ignore[arg-type]
    async with engine.begin() as connection:
        for render_id in (ssr, lam):
            await connection.execute(
                update(video_renders)
                .where(video_renders.c.id == render_id)
                .values(queue_job_id=legacy[render_id])
            )

    assert await LegacyDrain(redis, engine, "w1", idle_seconds=30).drain_once() == 3

    assert await redis.xlen(streams.LEGACY_JOBS_STREAM) == 0
    [(ssr_entry, ssr_fields)] = await entries(redis, streams.SSR_JOBS_STREAM)
    [(lam_entry, lam_fields)] = await entries(redis, streams.LAMBDA_JOBS_STREAM)
    assert (ssr_fields["render_id"], lam_fields["render_id"]) == (ssr, lam)
    assert "takeover" not in ssr_fields  # a new entry, not a silent worker's
    # The rows name the entries that carry them now (the sweeper finds them present).
    assert await queue_job_id(engine, ssr) == ssr_entry
    assert await queue_job_id(engine, lam) == lam_entry


async def test_due_retries_return_to_their_engines_queue(redis: Redis) -> None:
    due = time.time() - 1
    members = {
        json.dumps({"render_id": "r-ssr", "attempt": 2, "traceparent": "", "engine": "ssr"}): due,
        json.dumps({"render_id": "r-l", "attempt": 3, "traceparent": "", "engine": "lambda"}): due,
        json.dumps({"render_id": "r-old", "attempt": 2, "traceparent": ""}): due,  # pre-split
        json.dumps({"render_id": "r-later", "attempt": 2, "engine": "ssr"}): time.time() + 60,
    }
    await redis.zadd(streams.RETRY_ZSET, members)
    move = redis.register_script(MOVE_DUE_RETRIES)
    keys = [
        streams.RETRY_ZSET,
        streams.SSR_JOBS_STREAM,
        streams.LAMBDA_JOBS_STREAM,
        streams.LEGACY_JOBS_STREAM,
    ]
    moved = await move(keys=keys, args=[time.time(), streams.JOBS_MAXLEN])
    assert sorted(moved[::2]) == ["r-l", "r-old", "r-ssr"]
    assert [f["render_id"] for _, f in await entries(redis, streams.SSR_JOBS_STREAM)] == ["r-ssr"]
    [(_, lam)] = await entries(redis, streams.LAMBDA_JOBS_STREAM)
    assert (lam["render_id"], lam["attempt"]) == ("r-l", "3")
    # Without an engine: the legacy stream, whose drain routes it by the row.
    [(_, old)] = await entries(redis, streams.LEGACY_JOBS_STREAM)
    assert old["render_id"] == "r-old"
    assert await redis.zcard(streams.RETRY_ZSET) == 1


async def test_leases_renewed_together_each_say_what_became_of_the_render(
    base_settings: Settings, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    def worker(name: str) -> AttemptTransitions:
        rows = RenderLifecycle(engine, name, visibility_seconds=30.0, concurrency=2)
        return AttemptTransitions(base_settings, rows, Bookkeeping(base_settings, redis))

    mine, theirs = worker("w1"), worker("w2")
    held, cancelled, other = [await insert_render(engine, user) for _ in range(3)]
    for render_id, who in ((held, mine), (cancelled, mine), (other, theirs)):
        assert await who.claim(render_id, 1, reclaimed=False, entry_id="1-0") is not None
    async with engine.begin() as connection:
        await connection.execute(
            update(video_renders)
            .where(video_renders.c.id == cancelled)
            .values(cancel_requested=True)
        )
    leases = await mine.renew_leases(
        [
            Heartbeat(held, "rendering", 0.5),
            Heartbeat(cancelled, "encoding", 0.8),
            Heartbeat(other, "encoding", 0.9),
        ]
    )
    assert leases == {
        held: Lease.HELD,
        cancelled: Lease.CANCEL_REQUESTED,
        other: Lease.LOST,
    }
    rows = {r.id: r for r in [await mine.rows.current(i) for i in (held, cancelled, other)] if r}
    assert (rows[held].stage, rows[held].progress) == ("rendering", 0.5)
    assert (rows[cancelled].stage, rows[cancelled].progress) == ("encoding", 0.8)
    assert rows[other].stage == "bundling"  # another worker's render is left alone
    assert await mine.renew_leases([]) == {}
    # A beat whose progress did not change renews the lease without writing it again.
    assert await mine.renew_leases([Heartbeat(held, "encoding", 0.7, changed=False)]) == {
        held: Lease.HELD
    }
    again = await mine.rows.current(held)
    assert again is not None and (again.stage, again.progress) == ("rendering", 0.5)
