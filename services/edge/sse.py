"""Server-Sent Events: progress messages as SSE, over upstream feeds (services/edge/feeds.py).

Each RenderEvent becomes
    id: <event_id>            (left out when empty: such a message is no resume point)
    event: <kind>             snapshot | event | gap
    data: <the event as JSON, protobuf's JSON mapping>
A browser that reconnects sends the last id it saw as `Last-Event-ID` (the edge also takes
`?after_event_id=`), which becomes the request's `after_event_id`: the services resume
exactly after it. A comment line (`: heartbeat`) goes out when nothing else did for
EDGE_HEARTBEAT_SECONDS, so proxies keep idle streams open and a vanished client is noticed.

The HTTP status is decided by the upstream's first answer (404 for another user's render,
401 for a bad token), waited for up to FIRST_MESSAGE_WAIT_SECONDS; after that the stream
is 200 and an upstream failure just ends it (the browser reconnects and resumes). A stream
that ends without sending anything (a resume after the terminal event) answers 204 No
Content, which tells EventSource to stop reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import grpc
import orjson
from google.protobuf import json_format
from render.v1 import progress_service_pb2 as ps
from render.v1 import render_pb2
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.edge.errors import error_body, http_status, status_of_rpc_error
from services.edge.feeds import Feed, FeedHub, Key, Subscriber

log = logging.getLogger(__name__)

FIRST_MESSAGE_WAIT_SECONDS = 1.0
RECONNECT_MILLISECONDS = 2000
HEADERS = {
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",  # nginx: do not buffer the stream
}
TERMINAL_STATES = frozenset(
    {
        render_pb2.Render.STATE_SUCCEEDED,
        render_pb2.Render.STATE_FAILED,
        render_pb2.Render.STATE_CANCELLED,
    }
)


def event_kind(event: ps.RenderEvent) -> str:
    """The SSE event name of a RenderEvent: its kind, lower-case (unset means `event`)."""
    if event.kind == ps.RenderEvent.KIND_UNSPECIFIED:
        return "event"
    return ps.RenderEvent.Kind.Name(event.kind).removeprefix("KIND_").lower()


def format_event(event: ps.RenderEvent) -> bytes:
    """One SSE message for a RenderEvent."""
    data = orjson.dumps(json_format.MessageToDict(event))
    head = f"id: {event.event_id}\n" if event.event_id else ""
    return f"{head}event: {event_kind(event)}\n".encode() + b"data: " + data + b"\n\n"


class EventCache:
    """Formatted messages by (stream kind, event kind, render, event id), newest kept.

    Every watcher of a render receives the same recorded event; formatting it once
    instead of once per open stream (JSON mapping is the costly part) is what lets one
    process feed thousands of streams. Messages without an id are formatted each time.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, int, str, str], bytes] = OrderedDict()

    def format(self, stream: str, event: ps.RenderEvent) -> bytes:
        """The SSE bytes of an event, formatted at most once per key while it is kept."""
        if not event.event_id:
            return format_event(event)
        key = (stream, event.kind, event.render_id, event.event_id)
        cached = self.entries.get(key)
        if cached is None:
            cached = self.entries[key] = format_event(event)
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return cached


def error_response(status: Any) -> Response:
    """A JSON error response for a google.rpc.Status."""
    return Response(error_body(status), http_status(status), media_type="application/json")


async def open_stream(
    hub: FeedHub,
    open_call: Callable[[], Any],
    formatter: Callable[[Any], bytes],
    *,
    key: Key | None,
    resumed: bool,
) -> Response:
    """Join (or open) the feed, wait for the upstream's first answer, then stream.

    `key`: share the upstream with the other streams under it (None: a stream of its own).
    204 No Content when there is nothing to stream: the upstream ended at once, or a
    resume found the render over with nothing recorded after the client's last event
    (the service then repeats the final state without an id, and EventSource would
    reconnect for ever); GetRender has the final state.
    """
    feed = hub.joinable(key) if key is not None else None
    if feed is None:
        feed = hub.open(open_call(), formatter, key)
    # Subscribe before waiting: a joined feed whose last stream leaves meanwhile stays
    # open for this one (subscribed after the wait, it would get a closed feed and end).
    subscriber = feed.subscribe()
    await asyncio.wait({feed.first}, timeout=FIRST_MESSAGE_WAIT_SECONDS)
    if feed.first.done():
        error = feed.first.exception()
        if isinstance(error, grpc.aio.AioRpcError):
            feed.unsubscribe(subscriber)
            return error_response(status_of_rpc_error(error))
        message = feed.first.result()
        if message is grpc.aio.EOF or (
            resumed and not message.event.event_id and message.event.state in TERMINAL_STATES
        ):
            feed.unsubscribe(subscriber)
            return Response(status_code=204, headers=HEADERS)
    return EventStreamResponse(feed, subscriber)


class EventStreamResponse(Response):
    """A text/event-stream response fed by one subscriber of a feed."""

    media_type = "text/event-stream"

    def __init__(self, feed: Feed, subscriber: Subscriber) -> None:
        super().__init__(status_code=200, headers=HEADERS, media_type=self.media_type)
        # A stream has no length: drop the content-length Response adds for an empty body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.feed = feed
        self.subscriber = subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream until the feed ends, the client goes away or falls too far behind."""
        subscriber = self.subscriber
        gone: asyncio.Task[bool] = asyncio.ensure_future(_disconnected(receive))
        gone.add_done_callback(lambda _: subscriber.drop())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await _body(send, f"retry: {RECONNECT_MILLISECONDS}\n\n".encode())
            while (chunk := await subscriber.next()) is not None:
                await _body(send, chunk)
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client went away while we wrote
        finally:
            self.feed.unsubscribe(subscriber)
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await gone


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _disconnected(receive: Receive) -> bool:
    """Return once the client has disconnected."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return True
