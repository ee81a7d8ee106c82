"""ProgressService: WatchRender and WatchRenders, served from the hub's shared subscriptions.

Ids (see progress_service.proto). Every stream sends each id once, in increasing order:

- A fresh WatchRender subscribes, then reads the render's newest entry N: the first message
  is a snapshot carrying N's state and id, and the live loop skips everything up to N (the
  hub delivers only entries after the topic's position, which is at most N).
- A resume after A replays the entries after A (XRANGE, page by page), then the live loop
  skips everything up to the last one sent. Whether events after A were lost to the cap is
  known exactly from the first entry found at or after A: if it is A itself, nothing was;
  otherwise its `prev` field (the entry before it when it was written) says whether an
  entry between A and it existed. A loss is reported as a KIND_GAP message, never skipped.
- WatchRenders does the same on the user's stream, whose entries have the same ids as the
  render streams' (written together by `publish_event`). Its snapshots come from the
  database and carry no id; before reading them it notes the stream's newest id and the
  live loop skips up to it (the rows already reflect those events).

Ends that the client should resume from (too slow, Redis away too long, shutdown) carry
`resume_after_event_id`, the last id sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
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
from render_common.downloads import DownloadLinks
from render_common.errors import Aborted, NotFound, RenderExportError, Unavailable
from render_common.events import ProgressEvent
from render_common.ids import (
    check_event_id,
    check_project_id,
    check_render_id,
    parse_event_id,
)
from render_common.renders.record import Render
from render_common.renders.states import ACTIVE
from render_common.retry import retry_call
from services.progress import events
from services.progress.history import HistoryGap, event_time, lost_before
from services.progress.hub import (
    EndReason,
    Hub,
    HubClosed,
    Item,
    Subscription,
    SubscriptionEnded,
)

T = TypeVar("T")

HISTORY_PAGE = 500
ACTIVE_SNAPSHOT_LIMIT = 1000
FINAL_ROW_WAIT_SECONDS = 2.0  # how long a terminal event waits for the row to be final
GAP_SINCE_SLACK = timedelta(minutes=1)  # clocks of Redis and the services may differ
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


class _ProjectFilter:
    """Which of a user's renders belong to the watched project (all, without one)."""

    def __init__(self, engine: AsyncEngine, user_id: str, project_id: str) -> None:
        self._engine = engine
        self._user_id = user_id
        self._project_id = project_id
        self._projects: dict[str, str | None] = {}

    async def allows(self, render_id: str) -> bool:
        """Whether the render's events are sent (one database read per render, cached)."""
        if not self._project_id:
            return True
        if render_id not in self._projects:
            if len(self._projects) >= _PROJECT_CACHE_LIMIT:
                self._projects.clear()
            owned = await renders.get_for_user(self._engine, render_id, self._user_id)
            self._projects[render_id] = owned.project_id if owned else None
        return self._projects[render_id] == self._project_id


class ProgressService(progress_service_pb2_grpc.ProgressServiceServicer):
    """Pushes render events with history and resume."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, pool: Redis, hub: Hub, links: DownloadLinks
    ) -> None:
        self._settings = settings
        self._links = links  # signs the download URLs of the renders events carry
        self._engine = engine
        self._pool = pool
        self._hub = hub
        self._row_reads: dict[str, asyncio.Future[Render | None]] = {}

    # --- WatchRender --------------------------------------------------------------------

    async def WatchRender(
        self,
        request: progress_service_pb2.WatchRenderRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[WatchRenderResponse]:
        """A snapshot, or the history after `after_event_id` (or a gap), then live events."""
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
            if newest is None:
                # No event recorded yet, or they expired: the database has the state.
                first = events.GAP if after else events.SNAPSHOT
                yield WatchRenderResponse(event=events.from_row(row, self._links, kind=first))
                if events.row_is_terminal(row):
                    return
            else:
                kind: events.Kind | None = None if after else events.SNAPSHOT
                if after:
                    try:
                        async for entry_id, fields in self._history(key, after):
                            progress = ProgressEvent.from_entry(render_id, entry_id, fields)
                            event = events.from_progress(progress)
                            if progress.terminal:
                                final = await self._final_row(render_id)
                                yield WatchRenderResponse(
                                    event=events.with_render(event, self._links, final)
                                )
                                return
                            yield WatchRenderResponse(event=event)
                            resume = entry_id
                    except HistoryGap:
                        kind = events.GAP
                    else:
                        if events.row_is_terminal(row):
                            # Terminal before we came, but no terminal event was recorded.
                            yield WatchRenderResponse(event=events.from_row(row, self._links))
                            return
                if kind is not None:  # a snapshot, or a gap: the state as of the newest event
                    snapshot, terminal = await self._snapshot(newest, row, kind)
                    yield WatchRenderResponse(event=snapshot)
                    if terminal:
                        return
                    resume = snapshot.event_id
            sent = parse_event_id(resume) if resume else (0, 0)
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

    async def _snapshot(
        self, newest: tuple[str, dict[str, str]], row: Render, kind: events.Kind
    ) -> tuple[progress_service_pb2.RenderEvent, bool]:
        """A snapshot (or gap) standing for the render's events up to `newest`; terminal?"""
        render_id = row.id
        progress = ProgressEvent.from_entry(render_id, newest[0], newest[1])
        if progress.terminal:
            return events.snapshot(
                progress, self._links, await self._final_row(render_id), kind
            ), True
        if events.row_is_terminal(row):
            # Terminal, but its event is not recorded (yet, or ever): the row is the truth.
            return events.from_row(row, self._links, kind=kind), True
        return events.snapshot(progress, self._links, row, kind), False

    async def _newest(self, key: str) -> tuple[str, dict[str, str]] | None:
        """The newest entry of a stream, or None when there is none."""
        newest: Any = await self._pool.xrevrange(key, count=1)
        return (str(newest[0][0]), dict(newest[0][1])) if newest else None

    async def _history(self, key: str, after: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
        """The entries recorded after `after`, page by page.

        Raises HistoryGap, before yielding anything, when some of them are no longer held.
        """
        last = after  # what the client resumes after should this end (the last yielded)
        entries = await self._retry(partial(self._page, key, after, inclusive=True), last)
        if not entries and await self._retry(lambda: self._newest(key), last) is None:
            raise HistoryGap(after)  # the stream is gone (expired, or lost with Redis' data)
        if entries and entries[0][0] != after and lost_before(after, entries[0][1]):
            raise HistoryGap(after)
        while entries:
            for entry_id, fields in entries:
                if entry_id != after:
                    yield entry_id, fields
                    last = entry_id
            if len(entries) < HISTORY_PAGE:
                return
            entries = await self._retry(partial(self._page, key, entries[-1][0]), last)

    async def _page(
        self, key: str, after: str, *, inclusive: bool = False
    ) -> list[tuple[str, dict[str, str]]]:
        """Up to HISTORY_PAGE entries after `after` (from `after` itself when inclusive)."""
        entries: Any = await self._pool.xrange(
            key, min=after if inclusive else f"({after}", max="+", count=HISTORY_PAGE
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
                event = events.with_render(
                    event, self._links, await self._shared_final_row(item, render_id)
                )
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
        """Snapshots (optionally), or the history after `after_event_id` (or a gap), then live."""
        user_id = current_user.get()
        project_id = request.project_id
        if project_id:
            check_project_id(project_id)
        after = request.after_event_id
        if after:
            check_event_id(after)
        key = streams.user_events_stream(user_id)
        resume = after
        subscription = await self._subscribe(key, resume or None)
        projects = _ProjectFilter(self._engine, user_id, project_id)
        try:
            if after:
                try:
                    async for entry_id, fields in self._history(key, after):
                        render_id = fields.get("render_id", "")
                        if await projects.allows(render_id):
                            progress = ProgressEvent.from_entry(render_id, entry_id, fields)
                            event = events.from_progress(progress)
                            if progress.terminal:
                                event = events.with_render(
                                    event, self._links, await self._final_row(render_id)
                                )
                            yield WatchRendersResponse(event=event)
                        resume = entry_id
                except HistoryGap:
                    yield WatchRendersResponse(event=events.gap_marker())
                    resume = await self._retry(lambda: self._newest_id(key), resume) or after
                    for row in await renders.list_changed_for_user(
                        self._engine,
                        user_id,
                        since=event_time(after) - GAP_SINCE_SLACK,
                        limit=ACTIVE_SNAPSHOT_LIMIT,
                        project_id=project_id,
                        active=ACTIVE,
                    ):
                        yield WatchRendersResponse(event=events.from_row(row, self._links))
            elif request.include_active:
                resume = await self._retry(lambda: self._newest_id(key), resume)
                rows = await renders.list_for_user(
                    self._engine,
                    user_id,
                    limit=ACTIVE_SNAPSHOT_LIMIT,
                    project_id=project_id,
                    states=ACTIVE,
                )
                for row in reversed(rows):  # oldest first
                    yield WatchRendersResponse(event=events.from_row(row, self._links))
            sent = parse_event_id(resume) if resume else (0, 0)
            while True:
                try:
                    item = await subscription.get()
                except SubscriptionEnded as ended:
                    raise ended_error(ended.reason, resume or None) from None
                if item.order <= sent:
                    continue
                render_id = item.fields.get("render_id", "")
                if await projects.allows(render_id):
                    yield await self._user_response(item, render_id)
                sent, resume = item.order, item.entry_id
        finally:
            self._hub.unsubscribe(subscription)

    async def _newest_id(self, key: str) -> str:
        """Id of the newest entry of a stream, or "" when there is none."""
        newest = await self._newest(key)
        return newest[0] if newest else ""

    async def _user_response(self, item: Item, render_id: str) -> WatchRendersResponse:
        """The response for a user stream item, built once for all its watchers."""
        cached = item.memo.get("user_response")
        if cached is None:
            progress = ProgressEvent.from_entry(render_id, item.entry_id, item.fields)
            event = events.from_progress(progress)
            if progress.terminal:
                event = events.with_render(
                    event, self._links, await self._shared_final_row(item, render_id)
                )
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
        try:
            return await retry_call(
                call,
                on=_REDIS_ERRORS,
                within=self._settings.progress_redis_outage_seconds,
                first=0.05,
                most=1.0,
                what="progress read",
            )
        except _REDIS_ERRORS:
            raise ended_error(EndReason.REDIS_UNAVAILABLE, resume) from None

    async def _owned_row(self, render_id: str, user_id: str) -> Render | None:
        """The render if the user owns it; concurrent opens of one render share one read.

        A thousand clients opening the same render at once cost one query, not a thousand.
        """
        read = self._row_reads.get(render_id)
        if read is None:
            read = asyncio.ensure_future(renders.get(self._engine, render_id))
            self._row_reads[render_id] = read
            read.add_done_callback(lambda _: self._row_reads.pop(render_id, None))
        row = await asyncio.shield(read)
        if row is None or row.user_id != user_id:
            return None
        return row

    async def _shared_final_row(self, item: Item, render_id: str) -> Render | None:
        """The final row for a terminal item, read once however many watchers wait for it."""
        task = item.memo.get("final_row")
        if task is None:
            task = asyncio.ensure_future(self._final_row(render_id))
            item.memo["final_row"] = task
        row: Render | None = await asyncio.shield(task)
        return row

    async def _final_row(self, render_id: str) -> Render | None:
        """The render's row once terminal (the worker may commit just after publishing)."""
        deadline = time.monotonic() + FINAL_ROW_WAIT_SECONDS
        while True:
            row = await renders.get(self._engine, render_id)
            if row is None or row.terminal or time.monotonic() > deadline:
                return row
            await asyncio.sleep(0.05)
