"""The two watch streams: one render's (WatchRender) and one user's (WatchRenders).

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

from collections.abc import AsyncIterator
from datetime import timedelta

from render.v1 import progress_service_pb2

from render_common import streams
from render_common.events import ProgressEvent
from render_common.ids import parse_event_id
from render_common.renders import queries as renders
from render_common.renders.record import Render
from render_common.renders.states import ACTIVE
from services.progress import events
from services.progress.history import HistoryGap, event_time
from services.progress.reads import Entry, Reads, ended_error
from services.progress.subscription import Item, Subscription, SubscriptionEnded

ACTIVE_SNAPSHOT_LIMIT = 1000
GAP_SINCE_SLACK = timedelta(minutes=1)  # clocks of Redis and the services may differ
_PROJECT_CACHE_LIMIT = 10_000

WatchRenderResponse = progress_service_pb2.WatchRenderResponse
WatchRendersResponse = progress_service_pb2.WatchRendersResponse


class _Watch:
    """What both streams keep: the reads, the stream's key and the last id sent."""

    def __init__(self, reads: Reads, key: str, after: str) -> None:
        self.reads = reads
        self.key = key
        self.after = after
        self.resume = after  # event id of the last event sent (what the client resumes after)

    async def live(self, subscription: Subscription) -> AsyncIterator[Item]:
        """The hub's items after what was sent; each counts as sent once the caller resumes."""
        sent = parse_event_id(self.resume) if self.resume else (0, 0)
        while True:
            try:
                item = await subscription.get()
            except SubscriptionEnded as ended:
                raise ended_error(ended.reason, self.resume or None) from None
            if item.order <= sent:
                continue
            yield item
            sent, self.resume = item.order, item.entry_id


class RenderWatch(_Watch):
    """One WatchRender: a snapshot, or the history after `after` (or a gap), then live."""

    def __init__(self, reads: Reads, row: Render, after: str) -> None:
        super().__init__(reads, streams.events_stream(row.id), after)
        self.row = row
        self.done = False  # the render's end was sent

    async def responses(self, subscription: Subscription) -> AsyncIterator[WatchRenderResponse]:
        """Every message of the stream, until the render's end."""
        async for response in self._opening():
            yield response
        if self.done:
            return
        async for item in self.live(subscription):
            event, terminal = await self.reads.item_event(item, self.row.id)
            cached: WatchRenderResponse | None = item.memo.get("render_response")
            if cached is None:
                cached = item.memo["render_response"] = WatchRenderResponse(event=event)
            yield cached
            if terminal:
                return

    async def _opening(self) -> AsyncIterator[WatchRenderResponse]:
        row, links = self.row, self.reads.links
        newest = await self.reads.retry(lambda: self.reads.newest(self.key), self.resume)
        if newest is None:
            # No event recorded yet, or they expired: the database has the state.
            first = events.GAP if self.after else events.SNAPSHOT
            yield WatchRenderResponse(event=events.from_row(row, links, kind=first))
            self.done = events.row_is_terminal(row)
            return
        kind: events.Kind | None = None if self.after else events.SNAPSHOT
        if self.after:
            try:
                async for response in self._replay():
                    yield response
            except HistoryGap:
                kind = events.GAP
            else:
                if not self.done and events.row_is_terminal(row):
                    # Terminal before we came, but no terminal event was recorded.
                    yield WatchRenderResponse(event=events.from_row(row, links))
                    self.done = True
        if kind is not None:  # a snapshot, or a gap: the state as of the newest event
            snapshot = await self._snapshot(newest, kind)
            yield WatchRenderResponse(event=snapshot)
            self.resume = snapshot.event_id

    async def _replay(self) -> AsyncIterator[WatchRenderResponse]:
        async for entry_id, fields in self.reads.history(self.key, self.after):
            event, terminal = await self.reads.event(self.row.id, entry_id, fields)
            yield WatchRenderResponse(event=event)
            if terminal:
                self.done = True
                return
            self.resume = entry_id

    async def _snapshot(self, newest: Entry, kind: events.Kind) -> progress_service_pb2.RenderEvent:
        """A snapshot (or gap) standing for the render's events up to `newest`."""
        row, links = self.row, self.reads.links
        progress = ProgressEvent.from_entry(row.id, newest[0], newest[1])
        self.done = progress.terminal or events.row_is_terminal(row)
        if progress.terminal:
            return events.snapshot(progress, links, await self.reads.final_row(row.id), kind)
        if self.done:
            # Terminal, but its event is not recorded (yet, or ever): the row is the truth.
            return events.from_row(row, links, kind=kind)
        return events.snapshot(progress, links, row, kind)


class _ProjectFilter:
    """Which of a user's renders belong to the watched project (all, without one)."""

    def __init__(self, reads: Reads, user_id: str, project_id: str) -> None:
        self._reads = reads
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
            owned = await renders.get_for_user(self._reads.engine, render_id, self._user_id)
            self._projects[render_id] = owned.project_id if owned else None
        return self._projects[render_id] == self._project_id


class UserWatch(_Watch):
    """One WatchRenders: snapshots (optionally), or the history after `after` (or a gap),
    then live events of the user's renders (of one project, given one)."""

    def __init__(self, reads: Reads, user_id: str, project_id: str, after: str) -> None:
        super().__init__(reads, streams.user_events_stream(user_id), after)
        self.user_id = user_id
        self.project_id = project_id
        self.projects = _ProjectFilter(reads, user_id, project_id)

    async def responses(
        self, subscription: Subscription, *, include_active: bool
    ) -> AsyncIterator[WatchRendersResponse]:
        """Every message of the stream (it ends only with an error or the client)."""
        if self.after:
            async for response in self._resumed():
                yield response
        elif include_active:
            self.resume = await self.reads.newest_id(self.key, self.resume)
            rows = await renders.list_for_user(
                self.reads.engine,
                self.user_id,
                limit=ACTIVE_SNAPSHOT_LIMIT,
                project_id=self.project_id,
                states=ACTIVE,
            )
            for row in reversed(rows):  # oldest first
                yield WatchRendersResponse(event=events.from_row(row, self.reads.links))
        async for item in self.live(subscription):
            render_id = item.fields.get("render_id", "")
            if await self.projects.allows(render_id):
                event, _ = await self.reads.item_event(item, render_id)
                cached: WatchRendersResponse | None = item.memo.get("user_response")
                if cached is None:
                    cached = item.memo["user_response"] = WatchRendersResponse(event=event)
                yield cached

    async def _resumed(self) -> AsyncIterator[WatchRendersResponse]:
        """The history after `after`; or, when some of it is lost, a gap marker and the rows
        changed since."""
        try:
            async for entry_id, fields in self.reads.history(self.key, self.after):
                render_id = fields.get("render_id", "")
                if await self.projects.allows(render_id):
                    event, _ = await self.reads.event(render_id, entry_id, fields)
                    yield WatchRendersResponse(event=event)
                self.resume = entry_id
        except HistoryGap:
            yield WatchRendersResponse(event=events.gap_marker())
            self.resume = await self.reads.newest_id(self.key, self.resume) or self.after
            for row in await renders.list_changed_for_user(
                self.reads.engine,
                self.user_id,
                since=event_time(self.after) - GAP_SINCE_SLACK,
                limit=ACTIVE_SNAPSHOT_LIMIT,
                project_id=self.project_id,
                active=ACTIVE,
            ):
                yield WatchRendersResponse(event=events.from_row(row, self.reads.links))
