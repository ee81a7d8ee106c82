"""render_api's test rig: render_api in-process on a free port (the `start_api` fixture,
registered in tests/conftest.py, on each database backend) and helpers the
test_render_api* modules share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc
from sqlalchemy import func, select

from render_common import streams
from render_common.config import Settings
from render_common.db.schema import video_renders
from services.render_api import app
from tests.conftest import bearer
from tests.support.redis_streams import fields as stream_fields
from tests.support.rpc import rich_error

Stub = render_service_pb2_grpc.RenderServiceStub
StartApi = Callable[..., Awaitable[tuple[app.RenderApi, Stub]]]


@pytest_asyncio.fixture
async def start_api(
    base_settings: Settings,
    database_url: str,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> AsyncIterator[StartApi]:
    """Start render_api in-process on a free port with overridden settings."""
    started: list[app.RenderApi] = []

    async def _start(**overrides: Any) -> tuple[app.RenderApi, Stub]:
        settings = base_settings.with_overrides(database_url=database_url, **overrides)
        api = await app.start(settings, port=0, run_sweeper=overrides.pop("run_sweeper", False))
        started.append(api)
        return api, Stub(channel_to(api.port))

    yield _start
    for api in started:
        await api.stop(0)


async def expect_error(call: Awaitable[Any]) -> Any:
    """The rich error a call fails with (it must fail)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return rich_error(caught.value)


async def count_rows(api: app.RenderApi, user: str) -> int:
    """How many render rows the user has."""
    async with api.engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    select(func.count())
                    .select_from(video_renders)
                    .where(video_renders.c.user_id == user)
                )
            ).scalar_one()
        )


async def jobs_for(redis: Redis, render_id: str) -> list[dict[str, str]]:
    """The SSR job queue's entries (fields) of one render."""
    jobs = await stream_fields(redis, streams.SSR_JOBS_STREAM)
    return [fields for fields in jobs if fields.get("render_id") == render_id]


async def recorded(
    stub: Stub, user: str, token_for: Any, render_id: str, timeout: float = 30.0
) -> render_pb2.Render:
    """GetRender once the row holds its queue entry id."""
    request = render_service_pb2.GetRenderRequest(render_id=render_id)
    async with asyncio.timeout(timeout):
        while True:
            got: render_service_pb2.GetRenderResponse = await stub.GetRender(
                request, metadata=bearer(token_for(user))
            )
            if got.render.queue_job_id:
                return got.render
            await asyncio.sleep(0.05)
