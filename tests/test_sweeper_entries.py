"""The sweeper against real PostgreSQL and Redis: what counts as a lost queue entry.

Issue 15's leftover: under Lambda load render_api logged "queue entries lost;
re-enqueueing" although nothing was lost. A due retry is moved from render:retry into its
engine's queue (one Lua script) and only then recorded on the row, which meanwhile still
names `retry:<attempt>`; the worker's Lambda reader may already have read the moved entry
(pending in its group) while the render waits, QUEUED, for its claim.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import render_service_pb2_grpc
from sqlalchemy import update

from render_common import streams
from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.queue import ensure_group
from render_common.renders import queries as renders
from services.render_api import app
from services.render_api.sweeper import Sweeper
from tests.conftest import bearer
from tests.support.redis_streams import fields as stream_fields
from tests.support.scenes import start_request

Started = tuple[app.RenderApi, render_service_pb2_grpc.RenderServiceStub]


@pytest_asyncio.fixture
async def api(
    base_settings: Settings,
    postgres_url: str,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> AsyncIterator[Started]:
    """render_api without its own sweeper (each test runs passes itself)."""
    settings = base_settings.with_overrides(database_url=postgres_url)
    started = await app.start(settings, port=0, run_sweeper=False)
    yield started, render_service_pb2_grpc.RenderServiceStub(channel_to(started.port))
    await started.stop(0)


async def queued_for_retry(
    api: Started, user: str, token_for: Callable[[str], str], redis: Redis
) -> str:
    """A Lambda render whose first attempt failed and whose retry (attempt 2) is due: the
    row names `retry:2`, render:retry holds nothing for it any more (as once the worker's
    mover has moved it). Its first entry is gone (acknowledged by the worker)."""
    service, stub = api
    started = await stub.StartRender(start_request(), metadata=bearer(token_for(user)))
    render_id = started.render.render_id
    await redis.xdel(streams.SSR_JOBS_STREAM, started.render.queue_job_id)
    async with service.engine.begin() as connection:
        await connection.execute(
            update(video_renders)
            .where(video_renders.c.id == render_id)
            .values(
                engine="lambda",
                attempt=1,
                retry_count=0,
                queue_job_id="retry:2",
                updated_at=datetime.now(UTC) - timedelta(seconds=5),
            )
        )
    return render_id


async def lambda_entries(redis: Redis, render_id: str) -> list[dict[str, str]]:
    jobs = await stream_fields(redis, streams.LAMBDA_JOBS_STREAM)
    return [job for job in jobs if job.get("render_id") == render_id]


async def recorded_entry(api: Started, render_id: str) -> str | None:
    row = await renders.get(api[0].engine, render_id)
    assert row is not None
    return row.queue_job_id


async def test_a_moved_retry_read_but_not_claimed_is_not_lost(
    api: Started, user: str, token_for: Any, redis: Redis
) -> None:
    render_id = await queued_for_retry(api, user, token_for, redis)
    # The mover's XADD into the Lambda queue, then the Lambda reader's XREADGROUP: the entry
    # is pending in the group, the render still QUEUED (its claim and the mover's record of
    # the entry id have not happened yet).
    queue = streams.LAMBDA_QUEUE
    await ensure_group(redis, queue)
    fields = {"render_id": render_id, "attempt": "2", "traceparent": ""}
    moved = await redis.xadd(queue.stream, fields)  # type: ignore[arg-type]
    read: Any = await redis.xreadgroup(queue.group, "lambda-reader", {queue.stream: ">"})
    assert [entry_id for _, items in read for entry_id, _ in items] == [moved]

    sweeper = Sweeper(api[0].engine, api[0].redis, grace_seconds=0.0)
    await sweeper.sweep_once()

    assert await recorded_entry(api, render_id) == "retry:2"  # not forgotten
    assert await lambda_entries(redis, render_id) == [fields]  # no second entry


async def test_a_retry_entry_that_is_really_gone_is_replaced(
    api: Started, user: str, token_for: Any, redis: Redis
) -> None:
    render_id = await queued_for_retry(api, user, token_for, redis)
    await ensure_group(redis, streams.LAMBDA_QUEUE)

    sweeper = Sweeper(api[0].engine, api[0].redis, grace_seconds=0.0)
    await sweeper.sweep_once()

    entries = await lambda_entries(redis, render_id)
    assert [entry["attempt"] for entry in entries] == ["2"]
    assert (await recorded_entry(api, render_id) or "").count("-") == 1  # a stream id now
