"""render_api against real PostgreSQL and SQLite, real Redis, over real gRPC: StartRender,
ListRenders, CancelRender, EstimateRender, GetQuota, health. Validation and auth:
test_render_api_validation.py; races and Redis loss: test_render_api_admission.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from render.v1 import render_pb2, render_service_pb2
from sqlalchemy import select, update

from render_common import streams
from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.pricing import Output, estimate_cost
from services.render_api import app
from services.render_api.routing import price
from tests.conftest import bearer
from tests.support.redis_streams import fields as stream_fields
from tests.support.render_api import (
    StartApi,
    expect_error,
    jobs_for,
    recorded,
)
from tests.support.rpc import check_health_and_reflection
from tests.support.scenes import scene, start_request

# --- success paths -------------------------------------------------------------------


async def test_start_render_persists_and_enqueues(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    response = await stub.StartRender(
        start_request(request_id="r-1"), metadata=bearer(token_for(user))
    )
    render = response.render
    assert render.state == render_pb2.Render.STATE_QUEUED
    assert render.user_id == user and render.project_id == "project-1"
    assert render.format == render_pb2.FORMAT_MP4 and render.quality == render_pb2.QUALITY_LOW
    assert render.engine == render_pb2.ENGINE_SSR
    assert render.frames_total == 50  # 30 + 30 - 10 frames of fade
    assert render.scene_count == 2
    assert render.queue_job_id
    expected = price("ssr", Output(frames=50, quality="low"), Settings())  # worker time
    assert render.cost_estimate.total_usd == pytest.approx(expected.total_usd)
    assert render.create_time.seconds > 0
    jobs = await jobs_for(redis, render.render_id)
    assert len(jobs) == 1 and jobs[0]["attempt"] == "1" and "traceparent" in jobs[0]
    # The entry id reaches the row after the answer (services/render_api/enqueuer.py): once
    # it has, GetRender reads back exactly what StartRender answered.
    assert await recorded(stub, user, token_for, render.render_id) == render


async def test_list_renders_pages_and_filters(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api(concurrent_render_limit=50)
    auth = bearer(token_for(user))
    ids = []
    for index in range(5):
        project = "alpha" if index % 2 == 0 else "beta"
        response = await stub.StartRender(start_request(project_id=project), metadata=auth)
        ids.append(response.render.render_id)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListRenders(
            render_service_pb2.ListRendersRequest(page_size=2, page_token=token), metadata=auth
        )
        assert len(page.renders) <= 2
        seen.extend(r.render_id for r in page.renders)
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))  # newest first, no gaps or duplicates
    alpha = await stub.ListRenders(
        render_service_pb2.ListRendersRequest(project_id="alpha"), metadata=auth
    )
    assert {r.render_id for r in alpha.renders} == {ids[0], ids[2], ids[4]}
    cancelled = await stub.ListRenders(
        render_service_pb2.ListRendersRequest(states=[render_pb2.Render.STATE_CANCELLED]),
        metadata=auth,
    )
    assert list(cancelled.renders) == []
    error = await expect_error(
        stub.ListRenders(
            render_service_pb2.ListRendersRequest(page_size=2, page_token="bogus"), metadata=auth
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in error.field_violations
    page = await stub.ListRenders(render_service_pb2.ListRendersRequest(page_size=2), metadata=auth)
    error = await expect_error(
        stub.ListRenders(
            render_service_pb2.ListRendersRequest(
                page_size=2, page_token=page.next_page_token, project_id="beta"
            ),
            metadata=auth,
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_queued_render(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    render = (await stub.StartRender(start_request(), metadata=auth)).render
    cancelled = (
        await stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
        )
    ).render
    assert cancelled.state == render_pb2.Render.STATE_CANCELLED
    assert cancelled.complete_time.seconds > 0
    events = await stream_fields(redis, streams.events_stream(render.render_id))
    assert [fields["state"] for fields in events] == ["cancelled"]
    assert await redis.ttl(streams.events_stream(render.render_id)) > 0
    assert await redis.get(streams.cancel_flag(render.render_id)) == "1"
    again = await stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
    )
    assert again.render.state == render_pb2.Render.STATE_CANCELLED


async def set_status(api: app.RenderApi, render_id: str, status: str) -> None:
    """Move a render's row to `status`, as a worker would."""
    async with api.engine.begin() as connection:
        await connection.execute(
            update(video_renders).where(video_renders.c.id == render_id).values(status=status)
        )


async def next_message(pubsub: PubSub, kind: str, timeout: float = 30.0) -> Any:
    """The next message of a kind ("subscribe": the confirmation; "message": published)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == kind:
                return message


async def test_cancel_running_render_signals_workers(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    render = (await stub.StartRender(start_request(), metadata=auth)).render
    await set_status(api, render.render_id, "running")
    pubsub = redis.pubsub()
    await pubsub.subscribe(streams.CANCEL_CHANNEL)
    try:
        await next_message(pubsub, "subscribe")  # subscribed before anything is published
        response = await stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
        )
        message = await next_message(pubsub, "message")
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    assert message["data"] == render.render_id
    assert response.render.state == render_pb2.Render.STATE_RUNNING  # no worker here to stop it
    async with api.engine.connect() as connection:
        flagged = await connection.execute(
            select(video_renders.c.cancel_requested).where(video_renders.c.id == render.render_id)
        )
    assert flagged.scalar_one() is True


async def test_cancel_terminal_render_is_failed_precondition(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    render = (await stub.StartRender(start_request(), metadata=auth)).render
    await set_status(api, render.render_id, "succeeded")
    error = await expect_error(
        stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
        )
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "RENDER_NOT_CANCELLABLE" and error.domain == "render.v1"
    assert error.precondition_types == ["RENDER_NOT_CANCELLABLE"]


async def test_estimate_render(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api()
    scenes = [scene("title", 900, text="long"), scene("color", 900, color="red")]
    response = await stub.EstimateRender(
        render_service_pb2.EstimateRenderRequest(
            scenes=scenes, format=render_pb2.FORMAT_MP4, quality=render_pb2.QUALITY_HIGH
        ),
        metadata=bearer(token_for(user)),
    )
    assert response.frames_total == 1800
    assert response.duration.seconds == 60
    expected = estimate_cost(1800, "high")
    # Seed formula: 3 GB x 120 s x $0.0000166667 + 0.5 GB x $0.023.
    assert expected.compute_usd == pytest.approx(3 * 120 * 0.0000166667)
    assert expected.storage_usd == pytest.approx(0.5 * 0.023)
    # On SSR it is priced by worker time: 1800 frames x 0.05 s x $0.000025, plus storage.
    assert response.engine == render_pb2.ENGINE_SSR
    assert response.cost.compute_usd == pytest.approx(1800 * 0.05 * 0.000025)
    assert response.cost.storage_usd == pytest.approx(expected.storage_usd)
    assert response.within_budget is True and response.max_cost_usd == 1.0
    assert response.engine_reason


async def test_get_quota(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api(daily_render_limit=7, concurrent_render_limit=3)
    auth = bearer(token_for(user))
    await stub.StartRender(start_request(), metadata=auth)
    await stub.StartRender(start_request(), metadata=auth)
    quota = await stub.GetQuota(render_service_pb2.GetQuotaRequest(), metadata=auth)
    assert (quota.daily_limit, quota.daily_used, quota.daily_remaining) == (7, 2, 5)
    assert (quota.concurrent_limit, quota.concurrent_active) == (3, 2)
    assert quota.reset_time.seconds > time.time()


async def test_health_and_reflection(start_api: StartApi, channel_to: Any) -> None:
    api, _ = await start_api()
    await check_health_and_reflection(channel_to(api.port), "render.v1.RenderService")
