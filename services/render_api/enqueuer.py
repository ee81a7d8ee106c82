"""First attempts of admitted renders into their engine's queue (render:jobs:ssr or
render:jobs:lambda), and their entry ids onto the rows.

StartRender's order is: commit the rows, XADD their first attempts, answer. Recording the
entry id on the row (`queue_job_id`, the sweeper's bookkeeping) happens after the answer,
coalesced over batches into one UPDATE: it is off the caller's path and its fsync. If
that record is lost (a crash, a database hiccup), the row keeps a NULL queue_job_id and
the sweeper enqueues the render again after its grace; the worker's lease on the render
makes the second entry harmless (no second output, no second completion).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.batching import Batch, Batcher
from render_common.errors import Unavailable
from render_common.queue import QueuedAttempt, enqueue_attempts
from render_common.renders import queries as renders

log = logging.getLogger(__name__)

RECORD_BATCH = 500


@dataclass(frozen=True, slots=True)
class FirstAttempt:
    """A newly admitted render and the trace its stream entry continues."""

    render_id: str
    traceparent: str
    engine: str  # "ssr" | "lambda": the queue its entry goes to


class Enqueuer:
    """XADDs first attempts in one pipeline; their entry ids are recorded in the background.

    The intake checks that Redis answers before it commits (`ensure_reachable`), so a
    Redis that is down or silent refuses StartRender with UNAVAILABLE and writes nothing.
    Should Redis fail between that check and the XADD, the renders concerned get None
    rather than a failed StartRender: their rows are durable and the sweeper enqueues them.
    """

    def __init__(self, redis: Redis, engine: AsyncEngine) -> None:
        self._redis = redis
        self._engine = engine
        # Pairs posted while a write is in flight go into the next one, so under load many
        # StartRender batches share one UPDATE.
        self._recorder: Batcher[tuple[str, str], None] = Batcher(
            self._record, name="entry-recorder", max_batch=RECORD_BATCH
        )

    async def ensure_reachable(self) -> None:
        """Raise Unavailable unless Redis answers a PING (within its socket timeout)."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise Unavailable("Redis is unavailable; retry", reason="REDIS_UNAVAILABLE") from exc

    async def enqueue(self, attempts: Sequence[FirstAttempt]) -> list[str | None]:
        """The entry id of each attempt in its queue, or None where Redis did not take it."""
        if not attempts:
            return []
        try:
            replies = await enqueue_attempts(
                self._redis,
                [QueuedAttempt(a.render_id, 1, a.traceparent, a.engine) for a in attempts],
            )
        except (RedisError, OSError) as exc:
            log.warning(
                "enqueue failed; the sweeper will enqueue these renders",
                extra={"renders": len(attempts), "error": str(exc)},
            )
            return [None] * len(attempts)
        entry_ids: list[str | None] = []
        for attempt, reply in zip(attempts, replies, strict=True):
            if isinstance(reply, str):
                entry_ids.append(reply)
            else:
                entry_ids.append(None)
                log.warning(
                    "enqueue refused; the sweeper will enqueue it",
                    extra={"render_id": attempt.render_id, "error": str(reply)},
                )
        for attempt, entry_id in zip(attempts, entry_ids, strict=True):
            if entry_id:
                self._recorder.post((attempt.render_id, entry_id))
        return entry_ids

    async def close(self) -> None:
        """Write the entry ids still waiting."""
        await self._recorder.close()

    async def _record(self, batch: Batch[tuple[str, str]]) -> list[None]:
        """Write entry ids onto their rows; a failure is left to the sweeper."""
        try:
            await renders.mark_enqueued_many(self._engine, batch.items)
        except (SQLAlchemyError, OSError) as exc:
            log.warning(
                "recording queue entries failed; the sweeper will enqueue them again",
                extra={"renders": len(batch.items), "error": str(exc)},
            )
        return [None] * len(batch.items)
