"""progress's WatchRender against real Redis, real PostgreSQL and SQLite, over real gRPC:
snapshots, history and live events in order, resuming after an event id, terminal states,
gaps after the cap, ownership, deadlines. Rig: tests/support/progress.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, render_pb2

from render_common import streams
from render_common.config import Settings
from tests.support.progress import (
    StartProgress,
    assert_strictly_increasing,
    collect,
    wait_until,
    watch,
)
from tests.support.redis_streams import entries as stream_entries
from tests.support.render_rows import RUN, finish_row, insert_render, publish, publish_run

State = render_pb2.Render
Event = progress_service_pb2.RenderEvent


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
