"""Where the sweeper looks for a render's queue entry: only its engine's queue (the row's
`engine` says which), plus the legacy render:jobs while that still holds entries.

A QUEUED render counts as held by Redis (not lost) when

- its recorded stream entry is still in its queue (undelivered, or read by a worker and
  pending in the group: an entry stays in the stream until the worker XACKs and XDELs it);
- its recorded `retry:<attempt>` marker still waits in render:retry;
- or its queue holds an entry for the render's next attempt written since the row last
  changed: the entry moved on (a due retry moved from render:retry into the stream, a
  legacy entry moved into its engine's queue) and the mover has not yet recorded the new
  entry id on the row. The worker's Lambda reader may already have read that entry, the
  render still QUEUED while its claim waits its turn (issue 15's false "queue entries
  lost" under Lambda load).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from render_common import streams
from render_common.renders.queries import QueuedEntry

RETRY_PREFIX = "retry:"
SCAN_PAGE = 1000  # entries per XRANGE when looking for moved entries
SCAN_LIMIT = 20_000  # entries read per queue and pass at most, looking for moved entries
# Entry ids are Redis' clock, updated_at the writer's: look this much earlier as well.
CLOCK_SLACK_MS = 10_000

# KEYS[1]: a stream; ARGV: entry ids. The ids the stream does not hold. An id Redis cannot
# look up (an error answer, not a stream id) counts as held: re-enqueue only what is gone.
MISSING_ENTRIES = """
local missing = {}
for _, id in ipairs(ARGV) do
  local found = redis.pcall('XRANGE', KEYS[1], id, id)
  if type(found) == 'table' and not found.err and #found == 0 then
    missing[#missing + 1] = id
  end
end
return missing
"""


class QueueProbe:
    """One sweeper pass's view of the job queues (`legacy`: render:jobs holds entries)."""

    def __init__(self, redis: Redis, *, legacy: bool) -> None:
        self._redis = redis
        self._legacy = legacy
        self._missing_script = redis.register_script(MISSING_ENTRIES)

    @classmethod
    async def open(cls, redis: Redis) -> QueueProbe:
        """A probe for this pass: render:jobs is looked at only while it holds entries."""
        return cls(redis, legacy=bool(await redis.xlen(streams.LEGACY_JOBS_STREAM)))

    def queues(self, engine: str) -> tuple[streams.JobQueue, ...]:
        """The queues that may hold an entry of a render on `engine`."""
        own = streams.job_queue(engine)
        return (own, streams.LEGACY_QUEUE) if self._legacy else (own,)

    async def held(self, rows: Sequence[QueuedEntry], waiting: set[str]) -> set[str]:
        """The ids of the rows whose render Redis holds an entry for (module docstring);
        `waiting`: the render ids with a member in render:retry."""
        found = {row.id for row in rows if _is_retry(row.entry) and row.id in waiting}
        found |= await self._in_stream([row for row in rows if not _is_retry(row.entry)])
        found |= await self._moved([row for row in rows if row.id not in found])
        return found

    async def pending(self, entry: str, engine: str) -> bool:
        """Whether the group of a queue of `engine` holds `entry` pending."""
        for queue in self.queues(engine):
            try:
                pending = await self._redis.xpending_range(
                    queue.stream, queue.group, min=entry, max=entry, count=1
                )
            except RedisError as exc:
                if "NOGROUP" in str(exc):
                    continue
                raise
            if pending:
                return True
        return False

    async def _in_stream(self, rows: Sequence[QueuedEntry]) -> set[str]:
        """Rows whose recorded entry is still in one of their queues."""
        by_stream: dict[str, list[str]] = {}
        for row in rows:
            for queue in self.queues(row.engine):
                by_stream.setdefault(queue.stream, []).append(row.entry)
        missing = {stream: await self._missing(stream, ids) for stream, ids in by_stream.items()}
        return {
            row.id
            for row in rows
            if not all(row.entry in missing[queue.stream] for queue in self.queues(row.engine))
        }

    async def _missing(self, stream: str, entries: list[str]) -> set[str]:
        """The entries `stream` does not hold, asked in one script call: Redis answers
        with the few that are gone rather than every entry that is there."""
        reply: Any = await self._missing_script(keys=[stream], args=entries)
        return {_text(entry) for entry in reply or []}

    async def _moved(self, rows: Sequence[QueuedEntry]) -> set[str]:
        """Rows whose render's next attempt has an entry in its queue written since the
        row last changed (read from the oldest such time on, at most SCAN_LIMIT a queue)."""
        by_stream: dict[str, list[QueuedEntry]] = {}
        for row in rows:
            for queue in self.queues(row.engine):
                by_stream.setdefault(queue.stream, []).append(row)
        found: set[str] = set()
        for stream, suspects in by_stream.items():
            wanted = {(row.id, str(row.attempt + 1)) for row in suspects}
            start = min(int(row.updated_at.timestamp() * 1000) for row in suspects)
            async for fields in self._entries(stream, f"{max(start - CLOCK_SLACK_MS, 0)}-0"):
                key = (_text(fields.get("render_id")), _text(fields.get("attempt")))
                if key in wanted:
                    found.add(key[0])
        return found

    async def _entries(self, stream: str, start: str) -> AsyncIterator[dict[Any, Any]]:
        """The fields of `stream`'s entries from `start` on, page by page."""
        read = 0
        while read < SCAN_LIMIT:
            page: Any = await self._redis.xrange(stream, start, "+", count=SCAN_PAGE)
            items = list(page or [])
            for _, fields in items:
                yield fields
            read += len(items)
            if len(items) < SCAN_PAGE:
                return
            start = "(" + _text(items[-1][0])


def _is_retry(entry: str) -> bool:
    return entry.startswith(RETRY_PREFIX)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
