"""ProgressService: WatchRender and WatchRenders, served from the hub's shared subscriptions.

The handlers check the request and who asks, subscribe, and hand the stream to its watch
(services.progress.watch), which says what is sent and in which order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, progress_service_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.auth import current_user
from render_common.config import Settings
from render_common.downloads import DownloadLinks
from render_common.errors import NotFound
from render_common.ids import check_event_id, check_project_id, check_render_id
from services.progress.hub import Hub
from services.progress.reads import Reads
from services.progress.watch import (
    RenderWatch,
    UserWatch,
    WatchRenderResponse,
    WatchRendersResponse,
)


class ProgressService(progress_service_pb2_grpc.ProgressServiceServicer):
    """Pushes render events with history and resume."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, pool: Redis, hub: Hub, links: DownloadLinks
    ) -> None:
        self._reads = Reads(settings, engine, pool, hub, links)

    async def WatchRender(
        self,
        request: progress_service_pb2.WatchRenderRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[WatchRenderResponse]:
        """A snapshot, or the history after `after_event_id` (or a gap), then live events."""
        render_id = request.render_id
        check_render_id(render_id)
        if request.after_event_id:
            check_event_id(request.after_event_id)
        row = await self._reads.owned_row(render_id, current_user.get())
        if row is None:
            raise NotFound(
                f"render {render_id} not found",
                reason="RENDER_NOT_FOUND",
                metadata={"render_id": render_id},
            )
        watch = RenderWatch(self._reads, row, request.after_event_id)
        subscription = await self._reads.subscribe(watch.key, watch.resume)
        try:
            async for response in watch.responses(subscription):
                yield response
        finally:
            self._reads.unsubscribe(subscription)

    async def WatchRenders(
        self,
        request: progress_service_pb2.WatchRendersRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[WatchRendersResponse]:
        """Snapshots (optionally), or the history after `after_event_id` (or a gap), then live."""
        if request.project_id:
            check_project_id(request.project_id)
        if request.after_event_id:
            check_event_id(request.after_event_id)
        watch = UserWatch(
            self._reads, current_user.get(), request.project_id, request.after_event_id
        )
        subscription = await self._reads.subscribe(watch.key, watch.resume or None)
        try:
            async for response in watch.responses(
                subscription, include_active=request.include_active
            ):
                yield response
        finally:
            self._reads.unsubscribe(subscription)
