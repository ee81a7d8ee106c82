"""progress's test rig: progress in-process on a free port, render rows as intake writes
them, events as the worker publishes them, and readers of WatchRender(s) streams.

`start_progress`, `start_progress_sqlite` and `private_redis` are fixtures (registered in
tests/conftest.py); the rest are helpers the test_progress_* modules import.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, progress_service_pb2_grpc, render_pb2
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.events import ProgressEvent, publish_event
from render_common.ids import parse_event_id
from services.progress import app
from tests.conftest import bearer
from tests.support.processes import RedisServer, sqlite_url
from tests.support.rpc import rich_error

Stub = progress_service_pb2_grpc.ProgressServiceStub
StartProgress = Callable[..., Awaitable[tuple[app.Progress, Stub]]]
State = render_pb2.Render
Event = progress_service_pb2.RenderEvent

# A full render as the worker reports it: (state, stage, progress).
RUN = [
    ("running", "bundling", 0.0),
    ("running", "rendering", 0.25),
    ("running", "rendering", 0.5),
    ("running", "rendering", 0.75),
    ("running", "encoding", 0.9),
    ("running", "uploading", 0.95),
]


def _starter(
    base: Settings, database_url: str, channel_to: Callable[[int], grpc.aio.Channel]
) -> tuple[StartProgress, list[app.Progress]]:
    started: list[app.Progress] = []

    async def _start(**overrides: Any) -> tuple[app.Progress, Stub]:
        settings = base.with_overrides(database_url=database_url, **overrides)
        progress = await app.start(settings, port=0)
        started.append(progress)
        return progress, Stub(channel_to(progress.port))

    return _start, started


@pytest_asyncio.fixture
async def start_progress(
    base_settings: Settings,
    database_url: str,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> AsyncIterator[StartProgress]:
    """Start progress in-process on a free port, on each database backend."""
    start, started = _starter(base_settings, database_url, channel_to)
    yield start
    for progress in started:
        await progress.stop(0)


@pytest_asyncio.fixture
async def start_progress_sqlite(
    base_settings: Settings,
    sqlite_dir: Path,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> AsyncIterator[StartProgress]:
    """Start progress on SQLite only (tests about Redis and fan-out, not the database)."""
    start, started = _starter(base_settings, sqlite_url(sqlite_dir), channel_to)
    yield start
    for progress in started:
        await progress.stop(0)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop, restart and count clients on."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


async def insert_render(
    engine: AsyncEngine, user: str, *, project_id: str = "project-1", **values: Any
) -> str:
    """Insert a render row as intake does (every NOT NULL column)."""
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "project_id": project_id,
        "status": "queued",
        "stage": "queued",
        "progress": 0.0,
        "format": "mp4",
        "quality": "low",
        "engine": "ssr",
        "requested_engine": "default",
        "spec": {"scenes": [{"type": "color", "durationInFrames": 100, "props": {}}]},
        "scene_count": 1,
        "frames_total": 100,
        "attempt": 0,
        "retry_count": 0,
        "cancel_requested": False,
        "cost_estimate": {"total_usd": 0.01, "compute_usd": 0.005, "storage_usd": 0.005},
        "created_at": now,
        "updated_at": now,
        **values,
    }
    async with engine.begin() as connection:
        await connection.execute(insert(video_renders).values(**row))
    return str(row["id"])


async def finish_row(engine: AsyncEngine, render_id: str, status: str = "succeeded") -> None:
    """Record the render's outcome as the worker does before its terminal event."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": status, "stage": "done", "completed_at": now}
    if status == "succeeded":
        values.update(
            progress=1.0,
            output_url=f"https://cdn.example/{render_id}.mp4",
            thumbnail_url=f"https://cdn.example/{render_id}.jpg",
            metadata={"duration": 3.3, "fileSize": 12345, "fps": 30, "codec": "h264"},
        )
    elif status == "failed":
        values.update(error_reason="ASSET_NOT_FOUND", error_message="asset 404")
    async with engine.begin() as connection:
        await connection.execute(
            update(video_renders)
            .where(video_renders.c.id == render_id)
            .values(updated_at=now, **values)
        )


async def publish(
    redis: Redis,
    render_id: str,
    state: str,
    stage: str,
    progress: float = 0.0,
    *,
    user_id: str | None = None,
    maxlen: int = 1000,
    **fields: Any,
) -> str:
    """Publish one event as the worker does."""
    return await publish_event(
        redis,
        ProgressEvent(
            render_id=render_id,
            state=state,
            stage=stage,
            progress=progress,
            frames_rendered=round(progress * 100),
            frames_total=100,
            **fields,
        ),
        maxlen=maxlen,
        user_id=user_id,
    )


async def publish_run(redis: Redis, render_id: str, user_id: str | None = None) -> list[str]:
    """Publish a whole run up to (not including) the terminal event."""
    ids = [await publish(redis, render_id, "queued", "queued", user_id=user_id)]
    for state, stage, progress in RUN:
        ids.append(await publish(redis, render_id, state, stage, progress, user_id=user_id))
    return ids


async def collect(call: Any) -> tuple[list[progress_service_pb2.RenderEvent], Any]:
    """Read a stream to its end: its events, and the error it ended with (or None)."""
    received = []
    try:
        while (response := await call.read()) is not grpc.aio.EOF:
            received.append(response.event)
    except grpc.aio.AioRpcError as error:
        return received, rich_error(error)
    return received, None


async def wait_until(predicate: Callable[[], bool], limit: float = 20.0) -> None:
    """Poll a condition (bounded, so a bug fails the test instead of hanging it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def assert_strictly_increasing(events: list[progress_service_pb2.RenderEvent]) -> None:
    """Every non-empty id after the previous one: unique, never backwards."""
    ids = [parse_event_id(e.event_id) for e in events if e.event_id]
    assert all(a < b for a, b in itertools.pairwise(ids)), [e.event_id for e in events]


def watch(
    stub: Stub, render_id: str, token: str, after: str = "", **kwargs: Any
) -> grpc.aio.UnaryStreamCall:
    """Open a WatchRender stream."""
    return stub.WatchRender(
        progress_service_pb2.WatchRenderRequest(render_id=render_id, after_event_id=after),
        metadata=bearer(token),
        **kwargs,
    )


def watch_all(stub: Stub, token: str, after: str = "", **fields: Any) -> grpc.aio.UnaryStreamCall:
    """Open a WatchRenders stream."""
    return stub.WatchRenders(
        progress_service_pb2.WatchRendersRequest(after_event_id=after, **fields),
        metadata=bearer(token),
    )
