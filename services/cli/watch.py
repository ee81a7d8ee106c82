"""Following a render's progress stream, resuming from the last event when it drops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from render.v1 import progress_service_pb2, progress_service_pb2_grpc, render_pb2

from services.cli.client import Endpoints

RESUMABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL}
MAX_RESUMES = 30


async def watch_render(
    endpoints: Endpoints,
    render_id: str,
    on_event: Callable[[progress_service_pb2.RenderEvent], None],
) -> render_pb2.Render:
    """Stream events until the terminal one; returns the final render."""
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
                if event.event_id:
                    last_event_id = event.event_id
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
