"""SSE through the edge with a plain HTTP client: ids, kinds, shared upstreams and late
joiners, Last-Event-ID resume, heartbeats, WatchRenders, the end after the terminal event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import httpx
import pytest
from redis.asyncio import Redis
from render.v1 import progress_service_pb2 as ps
from render.v1 import progress_service_pb2_grpc

from services.edge.feeds import FeedHub
from services.edge.sse import EventStreamResponse, format_event, open_stream
from tests.conftest import bearer
from tests.support.edge_http import (
    HEARTBEAT,
    EdgeStack,
    SseReader,
    cancel,
    publish,
    start_render,
)


async def test_sse_streams_events_with_ids_kinds_and_ends_after_the_terminal_event(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str
) -> None:
    render = await start_render(stack, client, user)
    render_id = render["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    async with client.stream("GET", url, headers=stack.headers(user)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"].startswith("no-cache")
        sse = SseReader(response)
        snapshot = await sse.next()
        assert snapshot is not None and snapshot.event == "snapshot"
        assert snapshot.data["renderId"] == render_id
        assert snapshot.data["state"] == "STATE_QUEUED"
        assert sse.retry is not None
        ids = [await publish(redis, render_id, user, p) for p in (0.25, 0.5)]
        first, second = await sse.next(), await sse.next()
        assert first is not None and second is not None
        assert [first.id, second.id] == ids
        assert [first.event, second.event] == ["event", "event"]
        assert first.data["progress"] == 0.25 and first.data["framesRendered"] == "8"
        assert first.data["stage"] == "STAGE_RENDERING"
        await cancel(stack, client, user, render_id)
        rest = await sse.rest()
    assert [m.data["state"] for m in rest] == ["STATE_CANCELLED"]
    assert rest[0].id and rest[0].id > ids[-1]
    assert rest[0].data["render"]["renderId"] == render_id


async def test_streams_of_one_render_share_the_upstream_and_a_late_one_misses_nothing(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str
) -> None:
    """A second stream joins the first's upstream: it gets the snapshot and every event
    since, then the same live events; another user's stream is still refused."""
    render_id = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    async with client.stream("GET", url, headers=stack.headers(user)) as first_response:
        first = SseReader(first_response)
        snapshot = await first.next()
        assert snapshot is not None and snapshot.event == "snapshot"
        early = [await publish(redis, render_id, user, p) for p in (0.1, 0.2)]
        assert [(await first.next() or snapshot).id for _ in early] == early
        async with client.stream("GET", url, headers=stack.headers(user)) as second_response:
            second = SseReader(second_response)
            joined = [await second.next() for _ in range(3)]
            assert [m.event for m in joined if m] == ["snapshot", "event", "event"]
            assert [m.id for m in joined[1:] if m] == early
            assert joined[0] is not None and joined[0].data == snapshot.data
            other = await client.get(url, headers=stack.headers(f"{user}-other"))
            assert other.status_code == 404
            live = await publish(redis, render_id, user, 0.3)
            assert (await first.next() or snapshot).id == live
            assert (await second.next() or snapshot).id == live
            await cancel(stack, client, user, render_id)
            ends = [await first.rest(), await second.rest()]
    assert [[m.data["state"] for m in end] for end in ends] == [["STATE_CANCELLED"]] * 2
    assert ends[0][0].id == ends[1][0].id


async def test_a_stream_joining_as_the_last_stream_of_its_upstream_leaves_stays_live(
    stack: EdgeStack,
    client: httpx.AsyncClient,
    redis: Redis,
    user: str,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> None:
    """A browser reloading: its old stream leaves while the new one joins the shared
    upstream. The new one must keep that upstream open and get the next event, not end
    at once (bench.sse_fanout lost such a stream's events under load)."""
    render_id = (await start_render(stack, client, user))["renderId"]
    stub = progress_service_pb2_grpc.ProgressServiceStub(channel_to(stack.progress_port))
    request = ps.WatchRenderRequest(render_id=render_id)
    metadata = bearer(stack.token(user))
    hub, key = FeedHub(heartbeat_seconds=60), (user, render_id)
    feed = hub.open(stub.WatchRender(request, metadata=metadata), format_event, key)
    leaving = feed.subscribe()
    await asyncio.wait_for(feed.first, 10)
    # The old stream's disconnect lands while the new one waits for the upstream's answer.
    asyncio.get_running_loop().call_soon(feed.unsubscribe, leaving)
    joined = await open_stream(
        hub,
        lambda: stub.WatchRender(request, metadata=metadata),
        format_event,
        key=key,
        resumed=False,
    )
    assert isinstance(joined, EventStreamResponse)
    try:
        assert not joined.subscriber.ended
        event_id = await publish(redis, render_id, user, 0.5)
        received = b""
        while f"id: {event_id}".encode() not in received:
            chunk = await asyncio.wait_for(joined.subscriber.next(), 10)
            assert chunk is not None, "the stream ended instead of receiving the event"
            received += chunk
    finally:
        joined.feed.unsubscribe(joined.subscriber)
    assert not hub.feeds


@pytest.mark.parametrize("how", ["header", "query"])
async def test_last_event_id_resumes_exactly_after_the_event(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str, how: str
) -> None:
    render_id = (await start_render(stack, client, user))["renderId"]
    ids = [await publish(redis, render_id, user, p / 10) for p in range(1, 7)]
    headers = stack.headers(user)
    url = f"{stack.url}/v1/renders/{render_id}/events"
    if how == "header":
        headers["last-event-id"] = ids[2]
    else:
        url += f"?after_event_id={ids[2]}"
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        sse = SseReader(response)
        replayed = [await sse.next() for _ in ids[3:]]
        assert [m.id for m in replayed if m] == ids[3:]
        assert {m.event for m in replayed if m} == {"event"}
        await cancel(stack, client, user, render_id)
        rest = await sse.rest()
    assert [m.data["state"] for m in rest] == ["STATE_CANCELLED"]
    # Reconnecting after the terminal event: 204, so EventSource stops reconnecting.
    headers["last-event-id"] = str(rest[0].id)
    again = await client.get(f"{stack.url}/v1/renders/{render_id}/events", headers=headers)
    assert again.status_code == 204


async def test_heartbeat_comments_keep_an_idle_stream_open(
    stack: EdgeStack, client: httpx.AsyncClient, user: str
) -> None:
    render_id = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    async with client.stream("GET", url, headers=stack.headers(user)) as response:
        sse = SseReader(response)
        assert (await sse.next()) is not None  # the snapshot
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await sse.next(timeout=HEARTBEAT * 4)
        elapsed = time.monotonic() - started
    assert sse.comments and all(c == ": heartbeat" for c in sse.comments)
    # One comment per idle interval (give or take scheduling), not a burst.
    assert 2 <= len(sse.comments) <= elapsed / HEARTBEAT + 1


async def test_watch_renders_streams_the_users_renders_and_resumes(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str
) -> None:
    first = (await start_render(stack, client, user))["renderId"]
    second = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/events?include_active=false"
    async with client.stream("GET", url, headers=stack.headers(user)) as response:
        assert response.status_code == 200
        sse = SseReader(response)
        ids = [
            await publish(redis, first, user, 0.1),
            await publish(redis, second, user, 0.2),
            await publish(redis, first, user, 0.3),
        ]
        got = [await sse.next() for _ in ids]
    assert [(m.id, m.data["renderId"]) for m in got if m] == list(
        zip(ids, [first, second, first], strict=True)
    )
    headers = {**stack.headers(user), "last-event-id": ids[0]}
    async with client.stream("GET", url, headers=headers) as response:
        sse = SseReader(response)
        resumed = [await sse.next(), await sse.next()]
    assert [m.id for m in resumed if m] == ids[1:]
