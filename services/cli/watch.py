"""Following a render's progress stream, resuming from the last event when it drops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from render.v1 import progress_service_pb2, progress_service_pb2_grpc, render_pb2

from render_common.ids import parse_event_id
from services.cli.client import Endpoints

RESUMABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL}
MAX_RESUMES = 30
GAP = progress_service_pb2.RenderEvent.KIND_GAP


def gap_notice(after_event_id: str, event: progress_service_pb2.RenderEvent) -> str:
    """What a user is told when a resumed stream reports lost events."""
    since = f"after event {after_event_id} " if after_event_id else ""
    upto = f" up to event {event.event_id}" if event.event_id else ""
    return (
        f"gap: progress events {since}were lost{upto} (the server's history no longer holds"
        " them); showing the current state and continuing live"
    )


def _repeats(event_id: str, last_event_id: str) -> bool:
    """Whether an event was already received (its id is not after the last one)."""
    if not event_id or not last_event_id:
        return False
    return parse_event_id(event_id) <= parse_event_id(last_event_id)


async def watch_render(
    endpoints: Endpoints,
    render_id: str,
    on_event: Callable[[progress_service_pb2.RenderEvent], None],
    on_gap: Callable[[str], None] = lambda _: None,
) -> render_pb2.Render:
    """Stream events until the terminal one; returns the final render.

    A dropped stream resumes after the last event id received; an event whose id is not
    after it is dropped (ids strictly increase, so that is a duplicate). A gap the server
    reports (KIND_GAP) is told to `on_gap`, with a notice, before the event itself.
    """
    last_event_id = ""
    resumes = 0
    final = render_pb2.Render()
    while True:
        channel = grpc.aio.insecure_channel(endpoints.progress)
        stub = progress_service_pb2_grpc.ProgressServiceStub(channel)
        try:
            request = progress_service_pb2.WatchRenderRequest(
                render_id=render_id, after_event_id=last_event_id
            )
            async for response in stub.WatchRender(request, metadata=endpoints.metadata):
                event = response.event
                if _repeats(event.event_id, last_event_id):
                    continue
                if event.kind == GAP:
                    on_gap(gap_notice(last_event_id, event))
                last_event_id = event.event_id or last_event_id
                if event.HasField("render"):
                    final = event.render
                on_event(event)
                resumes = 0
            return final
        except grpc.aio.AioRpcError as error:
            if error.code() not in RESUMABLE or resumes >= MAX_RESUMES:
                raise
            resumes += 1
            await asyncio.sleep(min(0.2 * 2**resumes, 3.0))
        finally:
            await channel.close()
