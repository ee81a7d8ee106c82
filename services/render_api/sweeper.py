"""The sweeper: the database says which renders need a queue entry; Redis is made to agree.

Redis carries the work, the database is the truth. Redis can lose entries (a restart
without persistence, a failover that drops the last writes) and a step can fail between
its database write and its Redis write. Every pass, under a Redis lock so that one
replica sweeps at a time, the sweeper:

1. re-creates the queues' consumer groups if Redis lost them (idempotent), so the
   entries it adds are read;
2. for QUEUED renders naming an entry, checks Redis still holds it: a stream id in the
   render's engine's queue (render:jobs:ssr or render:jobs:lambda, plus the legacy
   render:jobs while that holds entries), a `retry:<attempt>` marker in `render:retry`,
   or an entry of its next attempt that moved on since (queue_probe.py: a due retry
   moved into the stream, perhaps already read by a worker, before the mover recorded
   it); a lost one is replaced by a new entry for the same attempt, in the render's
   engine's queue. An entry Redis held stays
   there until a worker takes it, unless Redis loses data (a restart, a failover: its
   run_id changes) or a stream is trimmed past its cap. So a pass checks only the rows
   that came of age since the last pass, and every row when the run_id changed or
   FULL_CHECK_SECONDS have passed since the last full check: a backlog of queued renders
   costs a pass nothing it has already checked;
3. for RUNNING renders whose worker has not renewed its lease for
   max(2 x VISIBILITY_TIMEOUT_SECONDS, SWEEPER_GRACE_SECONDS) and whose entry is not
   pending in the group (so XAUTOCLAIM cannot take it over), hands the render back to the
   queue with its attempt unspent;
4. enqueues QUEUED renders with no entry (StartRender could not XADD, a retry entry could
   not be written, a hand-back's XADD failed) once SWEEPER_GRACE_SECONDS old.

Rows are only ever read when older than the grace, so a step in flight is left alone. A
duplicate entry is harmless: a worker claims a render attempt with a conditional update,
and completion is conditional on its lease.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.queue import ensure_group
from render_common.renders import queries as renders
from render_common.renders.transitions import Transitions
from render_common.tasks import every
from services.render_api.queue_probe import QueueProbe

log = logging.getLogger(__name__)
PAGE = 500
MAX_ENQUEUED_PER_PASS = 5000
# Every row's entry is checked at least this often (stream trimming, partial data loss).
FULL_CHECK_SECONDS = 60.0
# A row is read once older than the grace, long after its commit: an incremental pass
# starts at the previous pass's cutoff, less this margin.
COMMIT_SLACK = timedelta(seconds=1)


class Sweeper:
    """Reconciles non-terminal rows with render:jobs and render:retry."""

    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        *,
        grace_seconds: float,
        silent_after_seconds: float | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._transitions = Transitions(settings or Settings(), engine, redis)
        self._grace = timedelta(seconds=grace_seconds)
        self._silent_after = timedelta(seconds=max(silent_after_seconds or 0.0, grace_seconds))
        self._token = uuid.uuid4().hex
        self._checked = _Checked()

    async def sweep_once(self) -> int:
        """One pass; returns how many renders were (re-)enqueued."""
        if not await self._redis.set(streams.SWEEPER_LOCK, self._token, nx=True, ex=60):
            return 0
        try:
            if await ensure_group(self._redis):
                log.info("consumer group created (a new Redis, or one that lost its data)")
            return (
                await self._replace_lost()
                + await self._release_silent()
                + await self._enqueue_missing()
            )
        finally:
            if await self._redis.get(streams.SWEEPER_LOCK) == self._token:
                await self._redis.delete(streams.SWEEPER_LOCK)

    async def _enqueue(self, attempts: list[tuple[str, int]]) -> int:
        """XADD (render_id, attempt) pairs and record their entries on the rows."""
        recorded = await self._transitions.reenqueue(attempts)
        for render_id, entry_id in recorded:
            log.info("sweeper enqueued render", extra={"render_id": render_id, "entry": entry_id})
        return len(recorded)

    async def _enqueue_missing(self) -> int:
        """QUEUED renders without an entry, older than the grace."""
        cutoff = datetime.now(UTC) - self._grace
        total = 0
        while total < MAX_ENQUEUED_PER_PASS:
            rows = await renders.queued_without_entry(self._engine, older_than=cutoff, limit=PAGE)
            # attempt is the last attempt started (0 before the first): enqueue the next.
            enqueued = await self._enqueue(
                [(render_id, attempt + 1) for render_id, attempt in rows]
            )
            total += enqueued
            if len(rows) < PAGE or enqueued == 0:
                break
        return total

    async def _replace_lost(self) -> int:
        """QUEUED renders whose recorded entry (stream entry or retry marker) is gone."""
        cutoff = datetime.now(UTC) - self._grace
        run_id = str((await self._redis.info("server")).get("run_id", ""))
        since = self._checked.since(run_id)
        waiting = await self._waiting_retries()
        probe = await QueueProbe.open(self._redis)
        lost_total, after = 0, ""
        while True:
            rows = await renders.queued_with_entry(
                self._engine, older_than=cutoff, after_id=after, limit=PAGE, since=since
            )
            if not rows:
                break
            after = rows[-1].id
            held = await probe.held(rows, waiting)
            lost: list[tuple[str, int]] = []
            for row in rows:
                if row.id not in held and await self._transitions.forget_lost_entry(
                    row.id, row.entry
                ):
                    lost.append((row.id, row.attempt + 1))
            if lost:
                log.warning("queue entries lost; re-enqueueing", extra={"renders": len(lost)})
                lost_total += await self._enqueue(lost)
            if len(rows) < PAGE:
                break
        self._checked.done(run_id, cutoff, full=since is None)
        return lost_total

    async def _release_silent(self) -> int:
        """RUNNING renders whose worker is silent and whose entry Redis no longer holds."""
        cutoff = datetime.now(UTC) - self._silent_after
        rows = await renders.running_silent(self._engine, older_than=cutoff, limit=PAGE)
        if not rows:
            return 0
        probe = await QueueProbe.open(self._redis)
        released: list[tuple[str, int]] = []
        for row in rows:
            if row.entry and await probe.pending(row.entry, row.engine):
                continue  # a live group: XAUTOCLAIM takes it over, counting the delivery
            if await self._transitions.hand_back_silent(row.id, row.worker_id, row.attempt, cutoff):
                released.append((row.id, row.attempt))
        if released:
            log.warning(
                "running renders lost their worker and their entry; handed back",
                extra={"renders": len(released)},
            )
        return await self._enqueue(released)

    async def _waiting_retries(self) -> set[str]:
        """Render ids with an entry in render:retry."""
        members = await self._redis.zrange(streams.RETRY_ZSET, 0, -1)
        waiting: set[str] = set()
        for member in members:
            try:
                waiting.add(str(json.loads(str(member))["render_id"]))
            except (ValueError, KeyError, TypeError):
                continue
        return waiting

    async def run(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled; failures are logged and retried."""
        await every(interval, self.sweep_once, "sweeper pass")


class _Checked:
    """How far the rows' entries have been checked, and against which Redis (its run_id)."""

    def __init__(self) -> None:
        self._run_id: str | None = None
        self._until: datetime | None = None
        self._full_at = 0.0

    def since(self, run_id: str) -> datetime | None:
        """Where this pass starts: None (every row) or the last cutoff, less the slack."""
        if (
            self._until is None
            or run_id != self._run_id
            or time.monotonic() - self._full_at >= FULL_CHECK_SECONDS
        ):
            return None
        return self._until - COMMIT_SLACK

    def done(self, run_id: str, cutoff: datetime, *, full: bool) -> None:
        """A pass checked every row (of age) up to `cutoff` against `run_id`'s Redis."""
        self._run_id, self._until = run_id, cutoff
        if full:
            self._full_at = time.monotonic()
