"""Draining the legacy render:jobs stream into the engines' queues.

Entries written before the queue split (or by an older replica during a rollout, or a
retry scheduled without an engine) wait in render:jobs. Each worker reads them through
the legacy group and moves each into its render's engine's queue (one transaction: XADD
there, XACK and XDEL here), so they run as any other. An entry left pending by a worker
that went silent is moved too, marked as a takeover (it may claim the RUNNING render of
that silent worker, as a reclaim would). An entry whose render no longer exists is
dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.queue import ensure_group
from render_common.renders.routing import engines_of, replace_entries
from render_common.tasks import every
from services.render_worker.delivery import TAKEOVER_FIELD

log = logging.getLogger(__name__)
BATCH = 100
INTERVAL_SECONDS = 1.0
LEGACY = streams.LEGACY_QUEUE


class LegacyDrain:
    """Moves render:jobs entries into render:jobs:ssr / render:jobs:lambda."""

    def __init__(self, redis: Redis, db: AsyncEngine, name: str, *, idle_seconds: float) -> None:
        self._redis = redis
        self._db = db
        self._name = name
        self._idle_ms = int(idle_seconds * 1000)

    async def run(self, stopping: asyncio.Event) -> None:
        """Drain every INTERVAL_SECONDS until stopped."""
        await every(INTERVAL_SECONDS, self._drain, "draining render:jobs", until=stopping.is_set)

    async def _drain(self) -> None:
        while await self.drain_once() >= BATCH:
            pass

    async def drain_once(self) -> int:
        """Move one batch of new entries and one of silent workers' entries; how many."""
        await ensure_group(self._redis, LEGACY)
        fresh: Any = await self._redis.xreadgroup(
            LEGACY.group, self._name, {LEGACY.stream: ">"}, count=BATCH
        )
        entries = [(str(i), dict(f), False) for _, items in fresh or [] for i, f in items if f]
        claimed: Any = await self._redis.xautoclaim(
            LEGACY.stream, LEGACY.group, self._name, self._idle_ms, "0-0", count=BATCH
        )
        entries += [(str(i), dict(f), True) for i, f in claimed[1] if f]
        if entries:
            await self._move(entries)
        return len(entries)

    async def _move(self, entries: list[tuple[str, dict[str, str], bool]]) -> None:
        engines = await engines_of(self._db, (f.get("render_id", "") for _, f, _ in entries))
        async with self._redis.pipeline(transaction=True) as pipe:
            for entry_id, fields, takeover in entries:
                engine = engines.get(fields.get("render_id", ""))
                if engine is not None:
                    moved = {**fields, TAKEOVER_FIELD: "1"} if takeover else fields
                    pipe.xadd(
                        streams.job_queue(engine).stream,
                        moved,  # type: ignore[arg-type]
                        maxlen=streams.JOBS_MAXLEN,
                        approximate=True,
                    )
                pipe.xack(LEGACY.stream, LEGACY.group, entry_id)
                pipe.xdel(LEGACY.stream, entry_id)
            replies = iter(await pipe.execute())
        replaced: list[tuple[str, str, str]] = []
        for entry_id, fields, _ in entries:
            render_id = fields.get("render_id", "")
            if render_id in engines:
                replaced.append((render_id, entry_id, str(next(replies))))
            next(replies), next(replies)  # XACK, XDEL
        await replace_entries(self._db, replaced)
        log.info("moved legacy render:jobs entries", extra={"entries": len(entries)})
