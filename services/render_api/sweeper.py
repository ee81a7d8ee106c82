"""The sweeper: renders persisted as QUEUED whose stream entry never made it get enqueued.

StartRender commits the row, then XADDs. If Redis fails in between, the row stays QUEUED
with no queue_job_id; the sweeper finds such rows older than SWEEPER_GRACE_SECONDS and
enqueues them. It also re-enqueues QUEUED renders whose recorded entry no longer exists
(Redis lost its data). One sweeper runs at a time across replicas (a Redis lock). A
duplicate entry is harmless: workers claim a render attempt with a conditional update.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.db import renders
from render_common.db.schema import QUEUED, video_renders
from render_common.queue import enqueue_attempt
from render_common.tasks import raise_if_cancelling

log = logging.getLogger(__name__)
BATCH = 200


class Sweeper:
    """Reconciles QUEUED rows with the render:jobs stream."""

    def __init__(self, engine: AsyncEngine, redis: Redis, *, grace_seconds: float) -> None:
        self._engine = engine
        self._redis = redis
        self._grace = timedelta(seconds=grace_seconds)

    async def sweep_once(self) -> int:
        """One pass; returns how many renders were (re-)enqueued."""
        token = str(id(self))
        if not await self._redis.set(streams.SWEEPER_LOCK, token, nx=True, ex=60):
            return 0
        try:
            return await self._enqueue_missing() + await self._requeue_lost()
        finally:
            if await self._redis.get(streams.SWEEPER_LOCK) == token:
                await self._redis.delete(streams.SWEEPER_LOCK)

    async def _enqueue_missing(self) -> int:
        cutoff = datetime.now(UTC) - self._grace
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(video_renders.c.id, video_renders.c.attempt)
                    .where(
                        video_renders.c.status == QUEUED,
                        video_renders.c.queue_job_id.is_(None),
                        video_renders.c.updated_at < cutoff,
                    )
                    .limit(BATCH)
                )
            ).all()
        for render_id, attempt in rows:
            entry_id = await enqueue_attempt(self._redis, render_id, int(attempt) + 1)
            await renders.mark_enqueued(self._engine, render_id, entry_id)
            log.info("sweeper enqueued render", extra={"render_id": render_id, "entry": entry_id})
        return len(rows)

    async def _requeue_lost(self) -> int:
        """QUEUED renders whose recorded stream entry is gone (and not waiting to retry)."""
        cutoff = datetime.now(UTC) - self._grace * 6
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(video_renders.c.id, video_renders.c.queue_job_id)
                    .where(
                        video_renders.c.status == QUEUED,
                        video_renders.c.queue_job_id.is_not(None),
                        video_renders.c.updated_at < cutoff,
                    )
                    .limit(BATCH)
                )
            ).all()
        lost = 0
        for render_id, entry_id in rows:
            if entry_id.startswith("retry:"):
                continue
            if await self._redis.xrange(streams.JOBS_STREAM, entry_id, entry_id):
                continue
            async with self._engine.begin() as connection:
                await connection.execute(
                    update(video_renders)
                    .where(
                        video_renders.c.id == render_id, video_renders.c.queue_job_id == entry_id
                    )
                    .values(queue_job_id=None, updated_at=datetime.now(UTC) - self._grace)
                )
            lost += 1
        if lost:
            log.warning("stream entries lost; re-enqueueing", extra={"renders": lost})
            lost = await self._enqueue_missing()
        return lost

    async def run(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled; failures are logged and retried."""
        while True:
            try:
                await self.sweep_once()
            except (RedisError, OSError) as exc:
                raise_if_cancelling()
                log.warning("sweeper pass failed", extra={"error": str(exc)})
            except Exception:
                raise_if_cancelling()
                log.exception("sweeper pass failed")
            raise_if_cancelling()  # a driver may have swallowed it mid-pass
            await asyncio.sleep(interval)
