"""progress against real Redis, real PostgreSQL and SQLite, over real gRPC."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, progress_service_pb2_grpc, render_pb2
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.events import ProgressEvent, publish_event
from render_common.ids import parse_event_id
from render_common.redis_client import create_redis
from services.progress import app
from tests.conftest import bearer
from tests.support.processes import RedisServer, sqlite_url
from tests.support.redis_streams import entries as stream_entries
from tests.support.rpc import check_health_and_reflection, rich_error

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


# --- fixtures and helpers ------------------------------------------------------------


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


# --- WatchRender ---------------------------------------------------------------------


async def test_snapshot_stands_for_history_then_live_in_order(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, user)
    early = [await publish(redis, render_id, "queued", "queued")]
    early.append(await publish(redis, render_id, "running", "bundling"))
    call = watch(stub, render_id, token_for(user))
    snapshot = (await call.read()).event
    assert snapshot.kind == Event.KIND_SNAPSHOT
    assert snapshot.render.render_id == render_id and snapshot.render.user_id == user
    # The state as of the newest event, whose id it carries (and which is not sent again).
    assert snapshot.event_id == early[-1] and snapshot.state == State.STATE_RUNNING
    assert snapshot.stage == render_pb2.STAGE_BUNDLING
    late = []
    for state, stage, value in RUN[1:]:
        late.append(await publish(redis, render_id, state, stage, value))
    await finish_row(progress.engine, render_id)
    late.append(await publish(redis, render_id, "succeeded", "done", 1.0))
    events, error = await collect(call)
    assert error is None  # ended cleanly after the terminal event
    assert [e.event_id for e in events] == late  # in order, no gaps, no duplicates
    assert_strictly_increasing([snapshot, *events])
    assert all(e.kind == Event.KIND_EVENT for e in events)
    assert [e.stage for e in events] == [
        render_pb2.STAGE_RENDERING,
        render_pb2.STAGE_RENDERING,
        render_pb2.STAGE_RENDERING,
        render_pb2.STAGE_ENCODING,
        render_pb2.STAGE_UPLOADING,
        render_pb2.STAGE_DONE,
    ]
    assert all(e.state == State.STATE_RUNNING for e in events[:-1])
    assert [e.progress for e in events[:-1]] == [p for _, _, p in RUN[1:]]
    assert events[1].frames_rendered == 50 and events[1].frames_total == 100
    assert all(e.event_time.seconds > 0 for e in events)
    last = events[-1]
    assert last.state == State.STATE_SUCCEEDED and last.progress == 1.0
    assert last.render.state == State.STATE_SUCCEEDED
    assert last.render.output_url == f"https://cdn.example/{render_id}.mp4"
    assert last.render.metadata.codec == "h264" and last.render.complete_time.seconds > 0
    # The whole retained history, on request.
    replay, error = await collect(watch(stub, render_id, token_for(user), after="0-0"))
    assert error is None and [e.event_id for e in replay] == early + late
    assert replay[0].kind == Event.KIND_EVENT and replay[-1].render.output_url


async def test_event_ids_strictly_increase_from_start_mid_way_and_after_finish(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, user)
    token = token_for(user)
    from_start = watch(stub, render_id, token)
    first = (await from_start.read()).event
    assert first.kind == Event.KIND_SNAPSHOT and first.event_id == ""  # nothing recorded yet
    ids = await publish_run(redis, render_id)
    mid_way = watch(stub, render_id, token)
    snapshot = (await mid_way.read()).event
    ids.append(await publish(redis, render_id, "running", "uploading", 0.99))
    await finish_row(progress.engine, render_id)
    ids.append(await publish(redis, render_id, "succeeded", "done", 1.0))
    start_events, start_error = await collect(from_start)
    mid_events, mid_error = await collect(mid_way)
    after_events, after_error = await collect(watch(stub, render_id, token))
    assert start_error is None and mid_error is None and after_error is None
    start_events.insert(0, first)
    mid_events.insert(0, snapshot)
    for events in (start_events, mid_events, after_events):
        assert_strictly_increasing(events)
        seen: set[str] = set()
        for event in events:  # a client de-duplicating by id drops nothing
            assert event.event_id not in seen
            seen.add(event.event_id)
    assert [e.event_id for e in start_events] == ["", *ids]
    assert [e.event_id for e in mid_events] == ids[len(ids) - 3 :]
    assert mid_events[0].kind == Event.KIND_SNAPSHOT and mid_events[0].progress == 0.95
    assert [(e.event_id, e.kind) for e in after_events] == [(ids[-1], Event.KIND_SNAPSHOT)]
    assert after_events[0].render.output_url
    # Resuming after any id a client saw: exactly the events after it.
    for index, event_id in enumerate(ids[:-1]):
        resumed, error = await collect(watch(stub, render_id, token, after=event_id))
        assert error is None and [e.event_id for e in resumed] == ids[index + 1 :]


async def test_resume_after_event_id_continues_exactly_after_it(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, user, status="running")
    ids = await publish_run(redis, render_id)
    call = watch(stub, render_id, token_for(user), after=ids[2])
    first = (await call.read()).event
    assert first.event_id == ids[3]  # no snapshot on resume: exactly the next event
    ids.append(await publish(redis, render_id, "running", "uploading", 0.99))
    await finish_row(progress.engine, render_id)
    ids.append(await publish(redis, render_id, "succeeded", "done", 1.0))
    events, error = await collect(call)
    assert error is None
    assert [first.event_id] + [e.event_id for e in events] == ids[3:]
    assert events[-1].render.output_url


@pytest.mark.parametrize(
    ("status", "state"),
    [("failed", State.STATE_FAILED), ("cancelled", State.STATE_CANCELLED)],
)
async def test_failed_and_cancelled_end_the_stream(
    start_progress: StartProgress,
    user: str,
    token_for: Any,
    redis: Redis,
    status: str,
    state: int,
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, user, status="running")
    call = watch(stub, render_id, token_for(user))
    await call.read()  # snapshot: subscribed
    await publish(redis, render_id, "running", "rendering", 0.5)
    await finish_row(progress.engine, render_id, status)
    extra: dict[str, Any] = (
        {"error_reason": "ASSET_NOT_FOUND", "error_message": "asset 404"}
        if status == "failed"
        else {"message": "cancelled by its owner"}
    )
    await publish(redis, render_id, status, "done", 0.5, **extra)
    events, error = await collect(call)
    assert error is None and len(events) == 2
    last = events[-1]
    assert last.state == state and last.render.state == state
    if status == "failed":
        assert last.error.reason == "ASSET_NOT_FOUND" and last.error.message == "asset 404"
        assert last.render.error.reason == "ASSET_NOT_FOUND"
    else:
        assert last.message == "cancelled by its owner"


async def test_expired_events_are_answered_from_the_database(
    start_progress: StartProgress, user: str, token_for: Any
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, user, status="running")
    await finish_row(progress.engine, render_id)
    for after, kind in (("", Event.KIND_SNAPSHOT), ("1700000000000-0", Event.KIND_GAP)):
        events, error = await collect(watch(stub, render_id, token_for(user), after=after))
        assert error is None and len(events) == 1
        assert events[0].kind == kind and events[0].event_id == ""
        assert events[0].state == State.STATE_SUCCEEDED and events[0].stage == render_pb2.STAGE_DONE
        assert events[0].render.output_url == f"https://cdn.example/{render_id}.mp4"


async def test_terminal_render_with_history_is_one_snapshot_or_a_replay(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, user, status="running")
    ids = await publish_run(redis, render_id)
    await finish_row(progress.engine, render_id)
    ids.append(await publish(redis, render_id, "succeeded", "done", 1.0))
    events, error = await collect(watch(stub, render_id, token_for(user)))
    assert error is None and len(events) == 1
    assert events[0].kind == Event.KIND_SNAPSHOT and events[0].event_id == ids[-1]
    assert events[0].state == State.STATE_SUCCEEDED and events[0].render.output_url
    events, error = await collect(watch(stub, render_id, token_for(user), after="0-0"))
    assert error is None and [e.event_id for e in events] == ids


async def test_terminal_row_without_its_event_ends_with_a_snapshot_reusing_no_id(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, user, status="running")
    ids = await publish_run(redis, render_id)
    await finish_row(progress.engine, render_id)  # its terminal event never recorded
    token = token_for(user)
    fresh, error = await collect(watch(stub, render_id, token))
    assert error is None and len(fresh) == 1
    assert (fresh[0].kind, fresh[0].event_id) == (Event.KIND_SNAPSHOT, "")
    assert fresh[0].state == State.STATE_SUCCEEDED and fresh[0].render.output_url
    resumed, error = await collect(watch(stub, render_id, token, after=ids[2]))
    assert error is None
    assert [e.event_id for e in resumed] == [*ids[3:], ""]  # no id sent twice
    assert resumed[-1].kind == Event.KIND_SNAPSHOT
    assert resumed[-1].state == State.STATE_SUCCEEDED
    assert_strictly_increasing(resumed)


async def test_resume_after_the_cap_reports_a_gap_never_a_silent_skip(
    start_progress: StartProgress,
    user: str,
    token_for: Any,
    redis: Redis,
    base_settings: Settings,
) -> None:
    settings = base_settings.with_overrides(events_maxlen=10)  # as the worker is configured
    progress, stub = await start_progress(events_maxlen=settings.events_maxlen)
    render_id = await insert_render(progress.engine, user, status="running")
    token = token_for(user)
    ids = [
        await publish(
            redis, render_id, "running", "rendering", i / 1000, maxlen=settings.events_maxlen
        )
        for i in range(350)
    ]
    retained = [
        entry_id for entry_id, _ in await stream_entries(redis, streams.events_stream(render_id))
    ]
    first = ids.index(retained[0])
    assert first >= 2 and retained == ids[first:]  # the cap trimmed the oldest
    for after in (ids[0], ids[first - 2], "0-0"):
        call = watch(stub, render_id, token, after=after)
        gap = (await call.read()).event
        call.cancel()
        # Not the next retained event as if nothing happened: a gap, with the current state.
        assert gap.kind == Event.KIND_GAP and gap.event_id == ids[-1]
        assert gap.state == State.STATE_RUNNING and gap.progress == pytest.approx(0.349)
        assert gap.render.render_id == render_id
    # After the last trimmed event nothing is missing: the history, exactly.
    call = watch(stub, render_id, token, after=ids[first - 1])
    history = [(await call.read()).event for _ in retained]
    call.cancel()
    assert [e.event_id for e in history] == retained
    assert all(e.kind == Event.KIND_EVENT for e in history)
    # The gap is followed by live events, ids still increasing.
    call = watch(stub, render_id, token, after=ids[0])
    gap = (await call.read()).event
    live = [await publish(redis, render_id, "running", "encoding", 0.9)]
    await finish_row(progress.engine, render_id)
    live.append(await publish(redis, render_id, "succeeded", "done", 1.0))
    events, error = await collect(call)
    assert error is None and [e.event_id for e in events] == live
    assert_strictly_increasing([gap, *events])


async def test_other_users_render_is_not_found(
    start_progress: StartProgress, user: str, token_for: Any
) -> None:
    progress, stub = await start_progress()
    render_id = await insert_render(progress.engine, "someone-else")
    _, error = await collect(watch(stub, render_id, token_for(user)))
    assert error.code == grpc.StatusCode.NOT_FOUND and error.reason == "RENDER_NOT_FOUND"
    _, error = await collect(watch(stub, str(uuid.uuid4()), token_for(user)))
    assert error.code == grpc.StatusCode.NOT_FOUND and error.reason == "RENDER_NOT_FOUND"
    _, error = await collect(watch(stub, "not-a-uuid", token_for(user)))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "render_id" in error.field_violations
    _, error = await collect(watch(stub, render_id, token_for(user), after="bogus"))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "after_event_id" in error.field_violations
    too_big = f"{2**64}-0"  # not a stream id: refused up front, not a Redis error
    _, error = await collect(watch(stub, render_id, token_for(user), after=too_big))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    call = stub.WatchRender(progress_service_pb2.WatchRenderRequest(render_id=render_id))
    _, error = await collect(call)
    assert error.code == grpc.StatusCode.UNAUTHENTICATED


async def test_deadline_and_cancel_free_the_subscription(
    start_progress_sqlite: StartProgress, user: str, token_for: Any
) -> None:
    progress, stub = await start_progress_sqlite()
    render_id = await insert_render(progress.engine, user)
    call = watch(stub, render_id, token_for(user), timeout=1.0)
    await call.read()
    assert progress.hub.subscriber_count == 1
    _, error = await collect(call)
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_until(lambda: progress.hub.subscriber_count == 0)
    call = watch(stub, render_id, token_for(user))
    await call.read()
    assert progress.hub.subscriber_count == 1
    call.cancel()
    await wait_until(lambda: progress.hub.subscriber_count == 0 and progress.hub.topic_count == 0)


# --- fan-out -------------------------------------------------------------------------


async def test_thousand_watchers_each_receive_every_event(
    start_progress_sqlite: StartProgress,
    user: str,
    token_for: Any,
    redis: Redis,
    base_settings: Settings,
) -> None:
    progress, _ = await start_progress_sqlite()
    render_id = await insert_render(progress.engine, user)
    token = token_for(user)
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{progress.port}") for _ in range(8)]
    try:
        calls = [watch(Stub(channels[i % 8]), render_id, token) for i in range(1000)]
        snapshots = await asyncio.gather(*(call.read() for call in calls))
        assert all(s.event.render.render_id == render_id for s in snapshots)
        assert progress.hub.topic_count == 1 and progress.hub.subscriber_count == 1000
        ids = await publish_run(redis, render_id)
        await finish_row(progress.engine, render_id)
        ids.append(await publish(redis, render_id, "succeeded", "done", 1.0))
        results = await asyncio.gather(*(collect(call) for call in calls))
    finally:
        for channel in channels:
            await channel.close()
    for events, error in results:
        assert error is None
        assert [e.event_id for e in events] == ids
        assert events[-1].render.output_url
    await wait_until(lambda: progress.hub.subscriber_count == 0)


async def test_stalled_client_is_aborted_without_slowing_the_others(
    start_progress_sqlite: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress_sqlite(progress_buffer_events=64)
    render_id = await insert_render(progress.engine, user, status="running")
    token = token_for(user)
    # A client that never reads: a small flow-control window (no BDP growth) so that the
    # server's sends stop soon and the subscription's buffer fills.
    stalled_channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{progress.port}", options=[("grpc.http2.bdp_probe", 0)]
    )
    try:
        stalled = watch(Stub(stalled_channel), render_id, token)
        await stalled.read()
        others = [watch(stub, render_id, token) for _ in range(5)]
        for call in others:
            await call.read()
        total = 3000
        ids: list[str] = []
        gots: list[list[str]] = [[] for _ in others]

        async def read_all(call: Any, got: list[str]) -> None:
            while len(got) < total:
                got.append((await call.read()).event.event_id)
            call.cancel()

        readers = [asyncio.create_task(read_all(c, g)) for c, g in zip(others, gots, strict=True)]
        for index in range(total):
            ids.append(
                await publish(
                    redis, render_id, "running", "rendering", index / total, maxlen=10_000
                )
            )
            if len(ids) % 20 == 0:  # a steady producer; the readers keep up, one never reads
                await wait_until(lambda: all(len(got) >= len(ids) for got in gots))
        await asyncio.gather(*readers)
        for got in gots:
            assert got == ids  # everyone else got everything, while one client stalled
        events, error = await collect(stalled)
        assert error is not None and error.code == grpc.StatusCode.ABORTED
        assert error.reason == "SUBSCRIBER_TOO_SLOW"
        assert 0 < len(events) < total
        resume = error.metadata["resume_after_event_id"]
        assert resume == events[-1].event_id
        assert [e.event_id for e in events] == ids[: len(events)]
        # It resumes where it stopped, without loss.
        again = watch(stub, render_id, token, after=resume)
        rest = [(await again.read()).event.event_id for _ in range(total - len(events))]
        again.cancel()
        assert rest == ids[len(events) :]
    finally:
        await stalled_channel.close()


async def test_redis_connections_stay_constant_as_watchers_grow(
    start_progress_sqlite: StartProgress,
    user: str,
    token_for: Any,
    private_redis: RedisServer,
) -> None:
    admin = create_redis(private_redis.url)
    try:

        async def connections() -> int:
            return len(await admin.client_list())

        before = await connections()  # just this admin client
        progress, _ = await start_progress_sqlite(redis_url=private_redis.url)
        pool_size = progress.pool.connection_pool.max_connections
        render_ids = [await insert_render(progress.engine, user) for _ in range(20)]
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{progress.port}")
        stub = Stub(channel)
        token = token_for(user)
        calls = []
        counts = []
        try:
            for _batch in range(2):
                new = [watch(stub, render_ids[i % 20], token) for i in range(200)]
                await asyncio.gather(*(call.read() for call in new))
                calls.extend(new)
                counts.append(await connections())
            assert progress.hub.subscriber_count == 400
            for render_id in render_ids:
                await publish(admin, render_id, "running", "rendering", 0.5)
            for call in calls:
                assert (await call.read()).event.stage == render_pb2.STAGE_RENDERING
            counts.append(await connections())
        finally:
            for call in calls:
                call.cancel()
            await channel.close()
    finally:
        await admin.aclose()
    # The fixed reader shards plus the small fixed pool, whatever the number of watchers.
    readers = progress.reader.connection_pool.max_connections
    assert all(count <= before + readers + pool_size for count in counts), (before, counts)
    assert counts[0] == counts[1] == counts[2], counts


# --- Redis outages -------------------------------------------------------------------


async def test_redis_restart_mid_stream_carries_on_without_loss(
    start_progress_sqlite: StartProgress,
    user: str,
    token_for: Any,
    private_redis: RedisServer,
) -> None:
    progress, stub = await start_progress_sqlite(
        redis_url=private_redis.url, progress_redis_outage_seconds=30.0
    )
    render_id = await insert_render(progress.engine, user, status="running")
    writer = create_redis(private_redis.url)
    try:
        call = watch(stub, render_id, token_for(user))
        await call.read()
        ids = [await publish(writer, render_id, "running", "rendering", 0.1)]
        assert (await call.read()).event.event_id == ids[0]
        private_redis.stop()
        await asyncio.sleep(0.3)  # let the reader notice (not asserted on)
        private_redis.start()
        ids.append(await publish(writer, render_id, "running", "rendering", 0.6))
        await finish_row(progress.engine, render_id)
        ids.append(await publish(writer, render_id, "succeeded", "done", 1.0))
        events, error = await collect(call)
    finally:
        await writer.aclose()
    assert error is None
    assert [e.event_id for e in events] == ids[1:]
    assert events[-1].render.output_url


async def test_long_redis_outage_ends_unavailable_and_client_resumes(
    start_progress_sqlite: StartProgress,
    user: str,
    token_for: Any,
    private_redis: RedisServer,
) -> None:
    progress, stub = await start_progress_sqlite(
        redis_url=private_redis.url, progress_redis_outage_seconds=0.3
    )
    render_id = await insert_render(progress.engine, user, status="running")
    token = token_for(user)
    writer = create_redis(private_redis.url)
    try:
        call = watch(stub, render_id, token)
        await call.read()
        first = await publish(writer, render_id, "running", "rendering", 0.1)
        assert (await call.read()).event.event_id == first
        private_redis.stop()
        events, error = await collect(call)
        assert events == []
        assert error.code == grpc.StatusCode.UNAVAILABLE and error.reason == "REDIS_UNAVAILABLE"
        assert error.metadata["resume_after_event_id"] == first
        private_redis.start()
        later = [await publish(writer, render_id, "running", "encoding", 0.9)]
        await finish_row(progress.engine, render_id)
        later.append(await publish(writer, render_id, "succeeded", "done", 1.0))
        resumed, error = await collect(watch(stub, render_id, token, after=first))
    finally:
        await writer.aclose()
    assert error is None
    # That Redis lost its data (no persistence), so whether events after `first` were lost
    # cannot be known: the resumed stream says so, with the current state, never silently.
    assert [(e.kind, e.event_id) for e in resumed] == [(Event.KIND_GAP, later[-1])]
    assert resumed[0].state == State.STATE_SUCCEEDED and resumed[0].render.output_url


async def test_silent_redis_ends_streams_unavailable_and_client_resumes(
    start_progress_sqlite: StartProgress,
    user: str,
    token_for: Any,
    private_redis: RedisServer,
) -> None:
    """A paused (SIGSTOP) Redis answers nothing: the hub's own RESP reader gives up after
    its block time plus REDIS_SOCKET_TIMEOUT_SECONDS, so streams end UNAVAILABLE instead
    of hanging, and the hub reads again once Redis is back."""
    progress, stub = await start_progress_sqlite(
        redis_url=private_redis.url,
        progress_redis_outage_seconds=0.3,
        redis_socket_timeout_seconds=1.0,
    )
    render_id = await insert_render(progress.engine, user, status="running")
    token = token_for(user)
    writer = create_redis(private_redis.url)
    try:
        call = watch(stub, render_id, token, timeout=60)
        await call.read()
        first = await publish(writer, render_id, "running", "rendering", 0.1)
        assert (await call.read()).event.event_id == first
        private_redis.pause()
        try:
            events, error = await collect(call)
        finally:
            private_redis.resume()
        assert events == []
        assert error.code == grpc.StatusCode.UNAVAILABLE and error.reason == "REDIS_UNAVAILABLE"
        assert error.metadata["resume_after_event_id"] == first
        later = [await publish(writer, render_id, "running", "encoding", 0.9)]
        await finish_row(progress.engine, render_id)
        later.append(await publish(writer, render_id, "succeeded", "done", 1.0))
        resumed, error = await collect(watch(stub, render_id, token, after=first, timeout=60))
    finally:
        await writer.aclose()
    assert error is None
    assert [e.event_id for e in resumed] == later


# --- WatchRenders --------------------------------------------------------------------


async def test_watch_renders_sees_renders_started_after_the_call(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    active = await insert_render(progress.engine, user, status="running", stage="rendering")
    await insert_render(progress.engine, user, status="succeeded")  # not active: not listed
    call = stub.WatchRenders(
        progress_service_pb2.WatchRendersRequest(include_active=True),
        metadata=bearer(token_for(user)),
    )
    snapshot = (await call.read()).event
    assert snapshot.render_id == active and snapshot.render.state == State.STATE_RUNNING
    other_user_render = await insert_render(progress.engine, "someone-else")
    await publish(redis, other_user_render, "running", "bundling", user_id="someone-else")
    new = await insert_render(progress.engine, user)
    ids = await publish_run(redis, new, user_id=user)
    await finish_row(progress.engine, new)
    ids.append(await publish(redis, new, "succeeded", "done", 1.0, user_id=user))
    await publish(redis, active, "running", "encoding", 0.9, user_id=user)
    received = [(await call.read()).event for _ in range(len(ids) + 1)]
    call.cancel()
    assert [e.render_id for e in received] == [new] * len(ids) + [active]
    assert [e.event_id for e in received[: len(ids)]] == ids  # the render streams' ids
    assert received[len(ids) - 1].render.output_url  # terminal event carries the render
    assert received[-1].stage == render_pb2.STAGE_ENCODING


async def test_watch_renders_filters_by_project(
    start_progress_sqlite: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress_sqlite()
    await insert_render(progress.engine, user, project_id="alpha")
    await insert_render(progress.engine, user, project_id="beta")
    call = stub.WatchRenders(
        progress_service_pb2.WatchRendersRequest(project_id="alpha", include_active=True),
        metadata=bearer(token_for(user)),
    )
    first = (await call.read()).event
    assert first.render.project_id == "alpha"
    beta = await insert_render(progress.engine, user, project_id="beta")
    alpha = await insert_render(progress.engine, user, project_id="alpha")
    await publish(redis, beta, "running", "bundling", user_id=user)
    await publish(redis, alpha, "running", "bundling", user_id=user)
    assert (await call.read()).event.render_id == alpha
    call.cancel()
    _, error = await collect(
        stub.WatchRenders(
            progress_service_pb2.WatchRendersRequest(project_id="no spaces"),
            metadata=bearer(token_for(user)),
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT


def watch_all(stub: Stub, token: str, after: str = "", **fields: Any) -> grpc.aio.UnaryStreamCall:
    """Open a WatchRenders stream."""
    return stub.WatchRenders(
        progress_service_pb2.WatchRendersRequest(after_event_id=after, **fields),
        metadata=bearer(token),
    )


async def test_watch_renders_resumes_after_an_event_id_across_renders(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    token = token_for(user)
    alpha = await insert_render(progress.engine, user, project_id="alpha", status="running")
    beta = await insert_render(progress.engine, user, project_id="beta", status="running")
    sent: list[tuple[str, str]] = []  # (render id, event id), in publishing order
    for value in (0.1, 0.2, 0.3):
        for render_id in (alpha, beta):
            sent.append(
                (
                    render_id,
                    await publish(redis, render_id, "running", "rendering", value, user_id=user),
                )
            )
    await publish(redis, alpha, "running", "rendering", 0.5, user_id="someone-else")
    call = watch_all(stub, token, include_active=True)  # a first client, then it drops
    snapshots = [(await call.read()).event for _ in range(2)]
    assert {e.render_id for e in snapshots} == {alpha, beta}
    assert all(e.kind == Event.KIND_SNAPSHOT and not e.event_id for e in snapshots)
    await publish(redis, beta, "running", "encoding", 0.9, user_id=user)
    dropped_at = (await call.read()).event
    call.cancel()
    sent.append((beta, dropped_at.event_id))
    assert dropped_at.render_id == beta and dropped_at.kind == Event.KIND_EVENT
    # Resume after any event, whichever render it belonged to: exactly the ones after it.
    for index in (0, 2, 5):
        call = watch_all(stub, token, after=sent[index][1], include_active=True)
        expected = sent[index + 1 :]
        got = [(await call.read()).event for _ in expected]
        sent.append((alpha, await publish(redis, alpha, "running", "encoding", 0.95, user_id=user)))
        got.append((await call.read()).event)  # then live
        call.cancel()
        assert [(e.render_id, e.event_id) for e in got] == [*expected, sent[-1]]
        assert all(e.kind == Event.KIND_EVENT for e in got)  # no snapshots when resuming
        assert_strictly_increasing(got)
    # With a project: the other project's events are skipped, the cursor still exact.
    call = watch_all(stub, token, after=sent[1][1], project_id="alpha")
    got = [(await call.read()).event for _ in (2, 4)]
    call.cancel()
    assert [(e.render_id, e.event_id) for e in got] == [sent[2], sent[4]]
    # Finished renders' terminal events carry the render, in history as live.
    await finish_row(progress.engine, alpha)
    terminal = await publish(redis, alpha, "succeeded", "done", 1.0, user_id=user)
    call = watch_all(stub, token, after=sent[-1][1])
    event = (await call.read()).event
    call.cancel()
    assert event.event_id == terminal and event.render.output_url


async def test_watch_renders_reports_a_gap_then_snapshots_of_what_changed(
    start_progress: StartProgress, user: str, token_for: Any, redis: Redis
) -> None:
    progress, stub = await start_progress()
    token = token_for(user)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    await insert_render(progress.engine, user, status="succeeded", updated_at=long_ago)
    busy = await insert_render(progress.engine, user, status="running")
    first = await publish(redis, busy, "running", "rendering", 0.0, user_id=user)
    count = streams.USER_EVENTS_MAXLEN + 200
    for index in range(count):
        await publish(redis, busy, "running", "rendering", index / count, user_id=user)
    finished = await insert_render(progress.engine, user, status="running")
    await publish(redis, finished, "running", "bundling", user_id=user)
    await finish_row(progress.engine, finished)
    newest = await publish(redis, finished, "succeeded", "done", 1.0, user_id=user)
    oldest_kept = (await stream_entries(redis, streams.user_events_stream(user), count=1))[0][0]
    assert parse_event_id(oldest_kept) > parse_event_id(first)  # the user stream's cap trimmed it
    call = watch_all(stub, token, after=first)
    gap = (await call.read()).event
    assert gap.kind == Event.KIND_GAP and gap.render_id == "" and gap.event_id == ""
    snapshots = [(await call.read()).event for _ in range(2)]
    # The renders that changed since (not the one finished days ago), oldest change first.
    assert [(e.render_id, e.kind) for e in snapshots] == [
        (busy, Event.KIND_SNAPSHOT),
        (finished, Event.KIND_SNAPSHOT),
    ]
    assert snapshots[1].render.state == State.STATE_SUCCEEDED
    live = await publish(redis, busy, "running", "encoding", 0.9, user_id=user)
    event = (await call.read()).event  # then live, after everything the snapshots reflect
    call.cancel()
    assert (event.render_id, event.event_id, event.kind) == (busy, live, Event.KIND_EVENT)
    assert parse_event_id(event.event_id) > parse_event_id(newest)
    # A cursor into a user stream that is gone altogether (expired): a gap too.
    loner = f"loner-{uuid.uuid4()}"
    quiet = await insert_render(progress.engine, loner, status="running")
    call = watch_all(stub, token_for(loner), after=first)
    received = [(await call.read()).event for _ in range(2)]
    call.cancel()
    assert [(e.kind, e.render_id) for e in received] == [
        (Event.KIND_GAP, ""),
        (Event.KIND_SNAPSHOT, quiet),
    ]


async def test_publish_event_copies_to_the_user_stream(redis: Redis, user: str) -> None:
    render_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    plain = await publish(redis, render_id, "queued", "queued")
    copied = await publish(redis, render_id, "running", "bundling", user_id=user)
    elsewhere = await publish(redis, other, "running", "bundling", user_id=user)
    done = await publish(redis, render_id, "succeeded", "done", 1.0, user_id=user)
    entries = await stream_entries(redis, streams.events_stream(render_id))
    assert [entry_id for entry_id, _ in entries] == [plain, copied, done]
    # Each entry knows the one before it in its stream (how a trimmed cursor is judged).
    assert [f["prev"] for _, f in entries] == ["0-0", plain, copied]
    user_entries = await stream_entries(redis, streams.user_events_stream(user))
    # One id per event, the same in both streams: unique among all of the user's renders.
    assert [entry_id for entry_id, _ in user_entries] == [copied, elsewhere, done]
    assert [(f["render_id"], f["event_id"], f["state"], f["prev"]) for _, f in user_entries] == [
        (render_id, copied, "running", "0-0"),
        (other, elsewhere, "running", copied),
        (render_id, done, "succeeded", elsewhere),
    ]
    assert (
        parse_event_id(plain)
        < parse_event_id(copied)
        < parse_event_id(elsewhere)
        < parse_event_id(done)
    )
    assert await redis.ttl(streams.events_stream(render_id)) > 0
    assert await redis.ttl(streams.user_events_stream(user)) > 0


# --- serving -------------------------------------------------------------------------


async def test_health_reflection_and_graceful_shutdown(
    start_progress_sqlite: StartProgress,
    user: str,
    token_for: Any,
    redis: Redis,
    channel_to: Any,
) -> None:
    progress, stub = await start_progress_sqlite()
    await check_health_and_reflection(channel_to(progress.port), "render.v1.ProgressService")
    render_id = await insert_render(progress.engine, user, status="running")
    call = watch(stub, render_id, token_for(user))
    await call.read()
    seen = await publish(redis, render_id, "running", "rendering", 0.3)
    assert (await call.read()).event.event_id == seen
    await progress.stop(5.0)
    events, error = await collect(call)
    assert events == []
    assert error.code == grpc.StatusCode.UNAVAILABLE and error.reason == "SERVER_SHUTTING_DOWN"
    assert error.metadata["resume_after_event_id"] == seen
