"""A worker stopping mid-render hands the attempt back, even when the engine's driver
turns the cancellation into an error of its own (it must not cost the render a retry)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from render.v1 import render_pb2

from render_common.config import Settings
from services.render_worker import app as worker_app
from services.render_worker.engines.base import ProgressReport, RenderJob, RenderOutput
from tests.support.processes import RedisServer, sqlite_url
from tests.support.scenes import simple_scenes
from tests.support.stack import Stack, start_stack


class DriverLikeEngine:
    """Renders forever; when cancelled, fails the way some drivers do: its own error."""

    name = "ssr"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def render(self, job: RenderJob, report: ProgressReport) -> RenderOutput:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionResetError("connection closed while reading") from None
        raise AssertionError("unreachable")

    async def cancel(self, job: RenderJob) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.fixture
async def stack(base_settings: Settings, tmp_path: Path, user: str) -> Any:
    """A stack of its own (Redis, SQLite): the engine below must see only this test's render,
    not the entries other tests left in the shared stream."""
    redis = RedisServer()
    redis.start()
    settings = base_settings.with_overrides(
        database_url=sqlite_url(tmp_path), redis_url=redis.url, data_dir=str(tmp_path / "data")
    )
    running = await start_stack(settings, user, worker=False)
    try:
        yield running
    finally:
        await running.close()
        redis.close()


async def test_converted_cancellation_is_a_hand_back_not_a_retry(stack: Stack) -> None:
    engine = DriverLikeEngine()
    worker = await worker_app.start(
        stack.settings, health_port=0, engines={"ssr": engine}, warm=False
    )
    try:
        render = await stack.start(simple_scenes(), project="handback")
        await asyncio.wait_for(engine.started.wait(), 30)
        await stack.wait(
            render.render_id, until=lambda r: r.state == render_pb2.Render.STATE_RUNNING
        )
    finally:
        await worker.stop(0)  # past its grace: the render task is cancelled
    after = await stack.wait(
        render.render_id, until=lambda r: r.state == render_pb2.Render.STATE_QUEUED, timeout=10
    )
    assert after.retry_count == 0
    assert not after.HasField("error") or not after.error.message
