"""progress's WatchRenders (all of a user's renders) and the per-user event stream the
worker's publish copies to: live, by project, resuming across renders, gaps then snapshots.
Rig: tests/support/progress.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, render_pb2

from render_common import streams
from render_common.ids import parse_event_id
from tests.conftest import bearer
from tests.support.progress import StartProgress, assert_strictly_increasing, collect, watch_all
from tests.support.redis_streams import entries as stream_entries
from tests.support.render_rows import finish_row, insert_render, publish, publish_run

State = render_pb2.Render
Event = progress_service_pb2.RenderEvent


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
