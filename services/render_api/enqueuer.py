"""First attempts of admitted renders into render:jobs, concurrent ones in one pipeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.batching import Batch, Batcher
from render_common.db import renders
from render_common.queue import current_traceparent, enqueue_attempts

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class FirstAttempt:
    """A newly admitted render and the trace its stream entry continues."""

    render_id: str
    traceparent: str


class Enqueuer:
    """XADDs first attempts and records their entry ids on the rows.

    A Redis failure leaves the renders to the sweeper (their rows are durable), so
    `enqueue` answers None for them rather than failing the StartRender.
    """

    def __init__(self, redis: Redis, engine: AsyncEngine, *, max_batch: int = 64) -> None:
        self._redis = redis
        self._engine = engine
        self._batcher: Batcher[FirstAttempt, str | None] = Batcher(
            self._enqueue_batch, name="enqueue", max_batch=max_batch
        )

    async def enqueue(self, render_id: str) -> str | None:
        """The render's entry id in render:jobs, or None when Redis could not take it."""
        return await self._batcher.submit(FirstAttempt(render_id, current_traceparent()))

    async def close(self) -> None:
        """Wait for the batches in flight."""
        await self._batcher.close()

    async def _enqueue_batch(self, batch: Batch[FirstAttempt]) -> list[str | None]:
        with batch.span(tracer, "render.enqueue.batch"):
            try:
                replies = await enqueue_attempts(
                    self._redis, [(a.render_id, 1, a.traceparent) for a in batch.items]
                )
            except (RedisError, OSError) as exc:
                log.warning(
                    "enqueue failed; the sweeper will enqueue these renders",
                    extra={"renders": len(batch.items), "error": str(exc)},
                )
                return [None] * len(batch.items)
            entry_ids = [reply if isinstance(reply, str) else None for reply in replies]
            for attempt, reply in zip(batch.items, replies, strict=True):
                if not isinstance(reply, str):
                    log.warning(
                        "enqueue refused; the sweeper will enqueue it",
                        extra={"render_id": attempt.render_id, "error": str(reply)},
                    )
            await renders.mark_enqueued_many(
                self._engine,
                [(a.render_id, e) for a, e in zip(batch.items, entry_ids, strict=True) if e],
            )
            return entry_ids
