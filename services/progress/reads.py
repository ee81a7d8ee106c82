"""What both watch streams read: subscriptions, stream history, rows, and the shared events.

Redis reads retry through an outage shorter than PROGRESS_REDIS_OUTAGE_SECONDS, then end
the stream UNAVAILABLE with where to resume. Reads many watchers need at once (a row as
a render opens, the final row and the event of a terminal item) are made once and shared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from render.v1 import progress_service_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.config import Settings
from render_common.downloads import DownloadLinks
from render_common.errors import Aborted, RenderExportError, Unavailable
from render_common.events import ProgressEvent
from render_common.renders import queries as renders
from render_common.renders.record import Render
from render_common.retry import retry_call
from services.progress import events
from services.progress.history import HistoryGap, lost_before
from services.progress.hub import Hub, HubClosed
from services.progress.subscription import EndReason, Item, Subscription

T = TypeVar("T")
Entry = tuple[str, dict[str, str]]

HISTORY_PAGE = 500
FINAL_ROW_WAIT_SECONDS = 2.0  # how long a terminal event waits for the row to be final
_REDIS_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


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


class Reads:
    """The reads of the progress service, shared by every stream it serves."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, pool: Redis, hub: Hub, links: DownloadLinks
    ) -> None:
        self.engine = engine
        self.links = links  # signs the download URLs of the renders events carry
        self._outage = settings.progress_redis_outage_seconds
        self._pool = pool
        self._hub = hub
        self._row_reads: dict[str, asyncio.Future[Render | None]] = {}

    async def subscribe(self, key: str, resume: str | None) -> Subscription:
        """The hub's subscription to `key` (ends the stream if the hub is closing)."""
        try:
            return await self.retry(lambda: self._hub.subscribe(key), resume)
        except HubClosed:
            raise ended_error(EndReason.SHUTDOWN, resume) from None

    def unsubscribe(self, subscription: Subscription) -> None:
        """Leave the hub's subscription."""
        self._hub.unsubscribe(subscription)

    async def retry(self, call: Callable[[], Awaitable[T]], resume: str | None) -> T:
        """Run a Redis read, retrying through an outage shorter than the configured window."""
        try:
            return await retry_call(
                call,
                on=_REDIS_ERRORS,
                within=self._outage,
                first=0.05,
                most=1.0,
                what="progress read",
            )
        except _REDIS_ERRORS:
            raise ended_error(EndReason.REDIS_UNAVAILABLE, resume) from None

    async def newest(self, key: str) -> Entry | None:
        """The newest entry of a stream, or None when there is none."""
        newest: Any = await self._pool.xrevrange(key, count=1)
        return (str(newest[0][0]), dict(newest[0][1])) if newest else None

    async def newest_id(self, key: str, resume: str | None) -> str:
        """Id of the newest entry of a stream, or "" when there is none (retried)."""
        newest = await self.retry(lambda: self.newest(key), resume)
        return newest[0] if newest else ""

    async def history(self, key: str, after: str) -> AsyncIterator[Entry]:
        """The entries recorded after `after`, page by page.

        Raises HistoryGap, before yielding anything, when some of them are no longer held.
        """
        last = after  # what the client resumes after should this end (the last yielded)
        entries = await self.retry(partial(self._page, key, after, inclusive=True), last)
        if not entries and await self.retry(lambda: self.newest(key), last) is None:
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
            entries = await self.retry(partial(self._page, key, entries[-1][0]), last)

    async def _page(self, key: str, after: str, *, inclusive: bool = False) -> list[Entry]:
        """Up to HISTORY_PAGE entries after `after` (from `after` itself when inclusive)."""
        entries: Any = await self._pool.xrange(
            key, min=after if inclusive else f"({after}", max="+", count=HISTORY_PAGE
        )
        return list(entries or [])

    async def event(
        self, render_id: str, entry_id: str, fields: dict[str, str]
    ) -> tuple[progress_service_pb2.RenderEvent, bool]:
        """The event of an entry read from history, with the final render if terminal."""
        progress = ProgressEvent.from_entry(render_id, entry_id, fields)
        event = events.from_progress(progress)
        if progress.terminal:
            final = await self.final_row(render_id)
            return events.with_render(event, self.links, final), True
        return event, False

    async def item_event(
        self, item: Item, render_id: str
    ) -> tuple[progress_service_pb2.RenderEvent, bool]:
        """The event of a live item, built once for all its watchers; terminal?"""
        cached = item.memo.get("event")
        if cached is None:
            progress = ProgressEvent.from_entry(render_id, item.entry_id, item.fields)
            event = events.from_progress(progress)
            if progress.terminal:
                final = await self._shared_final_row(item, render_id)
                event = events.with_render(event, self.links, final)
            cached = (event, progress.terminal)
            item.memo["event"] = cached
        return cached[0], bool(cached[1])

    async def owned_row(self, render_id: str, user_id: str) -> Render | None:
        """The render if the user owns it; concurrent opens of one render share one read.

        A thousand clients opening the same render at once cost one query, not a thousand.
        """
        read = self._row_reads.get(render_id)
        if read is None:
            read = asyncio.ensure_future(renders.get(self.engine, render_id))
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
            task = asyncio.ensure_future(self.final_row(render_id))
            item.memo["final_row"] = task
        row: Render | None = await asyncio.shield(task)
        return row

    async def final_row(self, render_id: str) -> Render | None:
        """The render's row once terminal (the worker may commit just after publishing)."""
        deadline = time.monotonic() + FINAL_ROW_WAIT_SECONDS
        while True:
            row = await renders.get(self.engine, render_id)
            if row is None or row.terminal or time.monotonic() > deadline:
                return row
            await asyncio.sleep(0.05)
