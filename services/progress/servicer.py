"""ProgressService: WatchRender and WatchRenders, served from the hub's shared subscriptions.

WatchRender subscribes before it reads history, so the hub delivers everything after the
topic's position while XRANGE covers everything up to (at least) it; ids already sent are
skipped, so the stream has neither gaps nor duplicates. Ends that the client should resume
from (too slow, Redis away too long, shutdown) carry `resume_after_event_id`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import grpc
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, progress_service_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.auth import current_user
from render_common.config import Settings
from render_common.db import renders
from render_common.db.schema import ACTIVE_STATES, TERMINAL_STATES
from render_common.errors import Aborted, NotFound, RenderExportError, Unavailable
from render_common.events import ProgressEvent
from render_common.ids import check_event_id, check_project_id, check_render_id
from services.progress import events
from services.progress.hub import (
    EndReason,
    Hub,
    HubClosed,
    Item,
    Subscription,
    SubscriptionEnded,
    parse_id,
)

T = TypeVar("T")

HISTORY_PAGE = 500
ACTIVE_SNAPSHOT_LIMIT = 1000
FINAL_ROW_WAIT_SECONDS = 2.0  # how long a terminal event waits for the row to be final
_PROJECT_CACHE_LIMIT = 10_000
_REDIS_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)

WatchRenderResponse = progress_service_pb2.WatchRenderResponse
WatchRendersResponse = progress_service_pb2.WatchRendersResponse


def ended_error(reason: EndReason, resume_after: str | None) -> RenderExportError:
    """The status ending a stream the hub dropped, with where to resume when known."""
    metadata = {"resume_after_event_id": resume_after} if resume_after is not None else {}
    if reason is EndReason.TOO_SLOW:
        return Aborted(
            "the stream fell too far behind; resume after the last event received",
            reason="SUBSCRIBER_TOO_SLOW",
            metadata=metadata,
        )
    if reason is EndReason.REDIS_UNAVAILABLE:
        return Unavailable(
            "Redis is unavailable; resume after the last event received",
            reason="REDIS_UNAVAILABLE",
            metadata=metadata,
        )
    return Unavailable(
        "the server is shutting down; resume after the last event received",
        reason="SERVER_SHUTTING_DOWN",
        metadata=metadata,
    )


class ProgressService(progress_service_pb2_grpc.ProgressServiceServicer):
    """Pushes render events with history and resume."""

    def __init__(self, settings: Settings, engine: AsyncEngine, pool: Redis, hub: Hub) -> None:
        self._settings = settings
        self._engine = engine
        self._pool = pool
        self._hub = hub
        self._row_reads: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    # --- WatchRender --------------------------------------------------------------------

    async def WatchRender(
        self,
        request: progress_service_pb2.WatchRenderRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[WatchRenderResponse]:
        """Current state, history after `after_event_id`, then live events to the terminal one."""
        render_id = request.render_id
        check_render_id(render_id)
        after = request.after_event_id
        if after:
            check_event_id(after)
        row = await self._owned_row(render_id, current_user.get())
        if row is None:
            raise NotFound(
                f"render {render_id} not found",
                reason="RENDER_NOT_FOUND",
                metadata={"render_id": render_id},
            )
        key = streams.events_stream(render_id)
        resume = after  # event id of the last event sent (what the client resumes after)
        subscription = await self._subscribe(key, resume)
        try:
            newest = await self._retry(lambda: self._newest(key), resume)
            if not newest and events.row_is_terminal(row):
                # Events expired: the database has the whole story.
                yield WatchRenderResponse(event=events.from_row(row))
                return
            if not after:
                yield WatchRenderResponse(event=events.from_row(row, newest))
                resume = newest
            cursor = after
            while newest:  # history, page by page (none when the stream does not exist)
                entries = await self._retry(partial(self._page, key, cursor), resume)
                for entry_id, fields in entries:
                    cursor = entry_id
                    progress = ProgressEvent.from_entry(render_id, entry_id, fields)
                    event = events.from_progress(progress)
                    if progress.terminal:
                        final = await self._final_row(render_id)
                        yield WatchRenderResponse(event=events.with_render(event, final))
                        return
                    yield WatchRenderResponse(event=event)
                    resume = entry_id
                if len(entries) < HISTORY_PAGE:
                    break
            if events.row_is_terminal(row):
                # Terminal before we came, but its terminal event is gone (trimmed).
                yield WatchRenderResponse(event=events.from_row(row, cursor))
                return
            sent = parse_id(cursor) if cursor else (0, 0)
            while True:  # live
                try:
                    item = await subscription.get()
                except SubscriptionEnded as ended:
                    raise ended_error(ended.reason, resume) from None
                if item.order <= sent:
                    continue
                response, terminal = await self._render_response(item)
                yield response
                sent, resume = item.order, item.entry_id
                if terminal:
                    return
        finally:
            self._hub.unsubscribe(subscription)

    async def _newest(self, key: str) -> str:
        """Id of the newest entry of a stream, or "" when there is none."""
        newest = await self._pool.xrevrange(key, count=1)
        return str(newest[0][0]) if newest else ""

    async def _page(self, key: str, after: str) -> list[tuple[str, dict[str, str]]]:
        """Up to HISTORY_PAGE entries after `after` (from the start when empty)."""
        entries: Any = await self._pool.xrange(
            key, min=f"({after}" if after else "-", max="+", count=HISTORY_PAGE
        )
        return list(entries or [])

    async def _render_response(self, item: Item) -> tuple[WatchRenderResponse, bool]:
        """The response for a render stream item, built once for all its watchers."""
        cached = item.memo.get("render_response")
        if cached is None:
            render_id = streams.render_id_of_events_stream(item.key)
            progress = ProgressEvent.from_entry(render_id, item.entry_id, item.fields)
            event = events.from_progress(progress)
            if progress.terminal:
                event = events.with_render(event, await self._shared_final_row(item, render_id))
            cached = (WatchRenderResponse(event=event), progress.terminal)
            item.memo["render_response"] = cached
        response: WatchRenderResponse = cached[0]
        return response, bool(cached[1])

    # --- WatchRenders -------------------------------------------------------------------

    async def WatchRenders(
        self,
        request: progress_service_pb2.WatchRendersRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[WatchRendersResponse]:
        """Active renders' current state (optionally), then live events of all of them."""
        user_id = current_user.get()
        project_id = request.project_id
        if project_id:
            check_project_id(project_id)
        subscription = await self._subscribe(streams.user_events_stream(user_id), None)
        try:
            if request.include_active:
                rows = await renders.list_for_user(
                    self._engine,
                    user_id,
                    limit=ACTIVE_SNAPSHOT_LIMIT,
                    project_id=project_id,
                    states=ACTIVE_STATES,
                )
                for row in reversed(rows):  # oldest first
                    yield WatchRendersResponse(event=events.from_row(row))
            projects: dict[str, str | None] = {}
            while True:
                try:
                    item = await subscription.get()
                except SubscriptionEnded as ended:
                    raise ended_error(ended.reason, None) from None
                render_id = item.fields.get("render_id", "")
                if project_id:
                    if render_id not in projects:
                        if len(projects) >= _PROJECT_CACHE_LIMIT:
                            projects.clear()
                        owned = await renders.get_for_user(self._engine, render_id, user_id)
                        projects[render_id] = owned["project_id"] if owned else None
                    if projects[render_id] != project_id:
                        continue
                yield await self._user_response(item, render_id)
        finally:
            self._hub.unsubscribe(subscription)

    async def _user_response(self, item: Item, render_id: str) -> WatchRendersResponse:
        """The response for a user stream item, built once for all its watchers."""
        cached = item.memo.get("user_response")
        if cached is None:
            progress = ProgressEvent.from_entry(
                render_id, item.fields.get("event_id", ""), item.fields
            )
            event = events.from_progress(progress)
            if progress.terminal:
                event = events.with_render(event, await self._shared_final_row(item, render_id))
            cached = WatchRendersResponse(event=event)
            item.memo["user_response"] = cached
        response: WatchRendersResponse = cached
        return response

    # --- shared -------------------------------------------------------------------------

    async def _subscribe(self, key: str, resume: str | None) -> Subscription:
        try:
            return await self._retry(lambda: self._hub.subscribe(key), resume)
        except HubClosed:
            raise ended_error(EndReason.SHUTDOWN, resume) from None

    async def _retry(self, call: Callable[[], Awaitable[T]], resume: str | None) -> T:
        """Run a Redis read, retrying through an outage shorter than the configured window."""
        deadline = time.monotonic() + self._settings.progress_redis_outage_seconds
        delay = 0.05
        while True:
            try:
                return await call()
            except _REDIS_ERRORS:
                if time.monotonic() + delay > deadline:
                    raise ended_error(EndReason.REDIS_UNAVAILABLE, resume) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _owned_row(self, render_id: str, user_id: str) -> dict[str, Any] | None:
        """The render if the user owns it; concurrent opens of one render share one read.

        A thousand clients opening the same render at once cost one query, not a thousand.
        """
        read = self._row_reads.get(render_id)
        if read is None:
            read = asyncio.ensure_future(renders.get(self._engine, render_id))
            self._row_reads[render_id] = read
            read.add_done_callback(lambda _: self._row_reads.pop(render_id, None))
        row = await asyncio.shield(read)
        if row is None or row["user_id"] != user_id:
            return None
        return row

    async def _shared_final_row(self, item: Item, render_id: str) -> dict[str, Any] | None:
        """The final row for a terminal item, read once however many watchers wait for it."""
        task = item.memo.get("final_row")
        if task is None:
            task = asyncio.ensure_future(self._final_row(render_id))
            item.memo["final_row"] = task
        row: dict[str, Any] | None = await asyncio.shield(task)
        return row

    async def _final_row(self, render_id: str) -> dict[str, Any] | None:
        """The render's row once terminal (the worker may commit just after publishing)."""
        deadline = time.monotonic() + FINAL_ROW_WAIT_SECONDS
        while True:
            row = await renders.get(self._engine, render_id)
            if row is None or row["status"] in TERMINAL_STATES or time.monotonic() > deadline:
                return row
            await asyncio.sleep(0.05)
