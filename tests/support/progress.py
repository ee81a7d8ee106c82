"""progress's test rig: progress in-process on a free port and readers of WatchRender(s)
streams (the renders' rows and events: tests/support/render_rows.py).

`start_progress`, `start_progress_sqlite` and `private_redis` are fixtures (registered in
tests/conftest.py); the rest are helpers the test_progress_* modules import.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from render.v1 import progress_service_pb2, progress_service_pb2_grpc

from render_common.config import Settings
from render_common.ids import parse_event_id
from services.progress import app
from tests.conftest import bearer
from tests.support.processes import RedisServer, sqlite_url
from tests.support.rpc import rich_error

Stub = progress_service_pb2_grpc.ProgressServiceStub
StartProgress = Callable[..., Awaitable[tuple[app.Progress, Stub]]]


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
