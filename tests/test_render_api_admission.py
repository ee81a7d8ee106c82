"""render_api's admission under concurrency and Redis loss: one render per request id,
race-free limits, batched intakes of many users, the sweeper re-enqueueing what Redis lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2
from sqlalchemy import update

from render_common import streams
from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.pricing import estimate_cost
from render_common.renders import queries as renders
from services.render_api import app
from services.render_api.catalogue import SceneCatalogue
from services.render_api.sweeper import Sweeper
from services.render_api.validation import RequestValidator
from tests.conftest import bearer
from tests.support.processes import RedisServer
from tests.support.redis_streams import entries as stream_entries
from tests.support.render_api import (
    StartApi,
    Stub,
    count_rows,
    expect_error,
    jobs_for,
    recorded,
)
from tests.support.scenes import start_request

# --- the sweeper ---------------------------------------------------------------------


async def test_sweeper_checks_an_entry_again_only_when_redis_may_have_lost_it(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    """A pass checks the rows that came of age since the previous one; every row when Redis'
    run_id changed (a restart, a failover) or a minute has passed (stream trimming)."""
    from services.render_api import sweeper as sweeping

    api, stub = await start_api()
    started = await stub.StartRender(start_request(), metadata=bearer(token_for(user)))
    render = await recorded(stub, user, token_for, started.render.render_id)
    await asyncio.sleep(sweeping.COMMIT_SLACK.total_seconds() + 0.2)
    sweeper = sweeping.Sweeper(api.engine, api.redis, grace_seconds=0.0)
    await sweeper.sweep_once()  # the first pass checks every row: the entry is there
    await redis.xdel(streams.SSR_JOBS_STREAM, render.queue_job_id)  # lost; Redis is the same
    await sweeper.sweep_once()
    assert await jobs_for(redis, render.render_id) == []  # checked already: not read again
    sweeper._checked._full_at -= sweeping.FULL_CHECK_SECONDS  # a minute later
    await sweeper.sweep_once()
    assert [job["attempt"] for job in await jobs_for(redis, render.render_id)] == ["1"]
    await stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=render.render_id),
        metadata=bearer(token_for(user)),
    )


# --- concurrency ------------------------------------------------------------------------


async def test_concurrent_retries_create_one_render(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    responses = await asyncio.gather(
        *(stub.StartRender(start_request(request_id="retry-me"), metadata=auth) for _ in range(50))
    )
    ids = {r.render.render_id for r in responses}
    assert len(ids) == 1
    assert await count_rows(api, user) == 1
    assert len(await jobs_for(redis, ids.pop())) == 1


async def test_daily_limit_is_race_free(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api(daily_render_limit=10, concurrent_render_limit=1000)
    auth = bearer(token_for(user))
    results = await asyncio.gather(
        *(stub.StartRender(start_request(), metadata=auth) for _ in range(100)),
        return_exceptions=True,
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(admitted) == 10 and len(refused) == 90
    assert all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused)
    assert await count_rows(api, user) == 10


async def test_batched_intakes_of_many_users_keep_each_users_limits(
    start_api: StartApi, token_for: Any, redis: Redis
) -> None:
    """Concurrent StartRenders share transactions (group commit); every user's quota,
    request_id and ownership stay their own."""
    api, stub = await start_api(daily_render_limit=3, concurrent_render_limit=1000)
    users = [f"batch-user-{uuid.uuid4().hex[:8]}-{n}" for n in range(8)]
    calls = []
    for user in users:
        auth = bearer(token_for(user))
        calls += [stub.StartRender(start_request(), metadata=auth) for _ in range(5)]
        calls += [
            stub.StartRender(start_request(request_id="same", project_id=f"p{k}"), metadata=auth)
            for k in range(3)
        ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    per_user = len(results) // len(users)
    for index, user in enumerate(users):
        mine = results[index * per_user : (index + 1) * per_user]
        admitted = {r.render.render_id for r in mine if not isinstance(r, BaseException)}
        codes = sorted(r.code().name for r in mine if isinstance(r, grpc.aio.AioRpcError))
        assert len(admitted) == 3, (user, mine)
        assert set(codes) <= {"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION"}, codes
        assert await count_rows(api, user) == 3
        for render_id in admitted:
            entries = await jobs_for(redis, render_id)
            assert len(entries) == 1
            row = await renders.get(api.engine, render_id)
            assert row is not None and row.user_id == user
    # Entry ids are recorded on the rows just after the answers (in the background).
    for render_id in admitted_all(results):
        deadline = time.monotonic() + 5
        while (row := await renders.get(api.engine, render_id)) is None or not row.queue_job_id:
            assert time.monotonic() < deadline, f"{render_id}: entry id never recorded"
            await asyncio.sleep(0.02)
        assert row is not None
        # Leave no work behind for the workers of later tests (same database and stream).
        await stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render_id),
            metadata=bearer(token_for(row.user_id)),
        )


def test_new_rows_fill_exactly_the_columns_the_batch_insert_names() -> None:
    from datetime import UTC, datetime

    from render_common.db.schema import video_renders
    from render_common.renders import admit, admit_sql
    from services.render_api import intake

    spec = RequestValidator(Settings(), SceneCatalogue.load()).start_request(start_request())
    cost = estimate_cost(spec.frames_total, spec.quality).as_dict()
    request = intake.new_render(intake.IntakeRequest("u", spec, "ssr", cost, ""))
    row = admit._queued_row(request, datetime.now(UTC))
    assert set(row) <= set(video_renders.c.keys())
    columns = tuple(row)
    assert set(admit_sql.as_columns(columns, [row, row])) == set(row)
    assert str(admit_sql.insert_many(columns)).count(":") == len(columns)


def admitted_all(results: list[Any]) -> list[str]:
    """Render ids of the successful StartRenders among gathered results."""
    return [r.render.render_id for r in results if not isinstance(r, BaseException)]


# --- Redis failure ----------------------------------------------------------------------


async def entries_of(redis: Redis, render_id: str) -> list[tuple[str, dict[str, str]]]:
    """The job stream's entries of one render, (entry id, fields)."""
    entries = await stream_entries(redis, streams.SSR_JOBS_STREAM)
    return [(entry_id, f) for entry_id, f in entries if f["render_id"] == render_id]


async def lose_queue_entry(api: app.RenderApi, redis: Redis, render: render_pb2.Render) -> None:
    """As if the XADD after the commit had failed: no entry, no entry id on the row."""
    await redis.xdel(streams.SSR_JOBS_STREAM, render.queue_job_id)
    async with api.engine.begin() as connection:
        await connection.execute(
            update(video_renders)
            .where(video_renders.c.id == render.render_id)
            .values(queue_job_id=None)
        )


async def test_redis_down_start_render_is_unavailable_and_writes_nothing(
    base_settings: Settings, database_url: str, channel_to: Any, user: str, token_for: Any
) -> None:
    own_redis = RedisServer()
    own_redis.start()
    settings = base_settings.with_overrides(database_url=database_url, redis_url=own_redis.url)
    api = await app.start(settings, port=0, run_sweeper=False)
    check = Redis.from_url(own_redis.url, decode_responses=True)
    try:
        stub = Stub(channel_to(api.port))
        own_redis.stop()
        began = time.monotonic()
        request = start_request(request_id="while-down")
        error = await expect_error(stub.StartRender(request, metadata=bearer(token_for(user))))
        assert error.code == grpc.StatusCode.UNAVAILABLE and error.reason == "REDIS_UNAVAILABLE"
        assert time.monotonic() - began < 5.0  # refused connections: at once, no timeout
        assert await count_rows(api, user) == 0  # a render is admitted only if it can be queued
        own_redis.start()
        response = await stub.StartRender(request, metadata=bearer(token_for(user)))
        render = response.render
        assert [e for e, _ in await entries_of(check, render.render_id)] == [render.queue_job_id]
        # Should the XADD after the commit still fail (Redis dies in between, or render_api
        # does), the sweeper enqueues the committed render. (First the entry id's own
        # recording, after the answer, must be over, or it would undo the loss.)
        await recorded(stub, user, token_for, render.render_id)
        await lose_queue_entry(api, check, render)
        sweeper = Sweeper(api.engine, api.redis, grace_seconds=0.0)
        # The module's other QUEUED renders have no entry in this Redis either: the sweeper
        # enqueues them too, which is right; look at this render's entries only.
        assert await sweeper.sweep_once() >= 1
        await sweeper.sweep_once()
        swept = await entries_of(check, render.render_id)
        assert len(swept) == 1 and swept[0][1]["attempt"] == "1"
        assert (await recorded(stub, user, token_for, render.render_id)).queue_job_id == swept[0][0]
        assert await count_rows(api, user) == 1
    finally:
        await check.aclose()
        await api.stop(0)
        own_redis.close()
