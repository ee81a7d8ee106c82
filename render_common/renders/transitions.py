"""The render's transitions: each one a conditional update of its row, its progress event
and its Redis bookkeeping, together.

A transition names the state it leaves; its UPDATE is conditioned on the row still being
in it (and, for a worker, on the worker's lease), so a transition that lost a race writes
nothing and returns None. Otherwise it returns the row as the update left it, publishes
the event that announces the new state, and writes what Redis must know (cancel flag,
entries). The row is the truth: it is written first, Redis follows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.queue import current_traceparent
from render_common.renders import queries as renders
from render_common.renders.bookkeeping import Bookkeeping
from render_common.renders.record import Render
from render_common.renders.routing import enqueue_routed
from render_common.renders.states import Stage, State

c = video_renders.c


async def update_returning(engine: AsyncEngine, statement: Any) -> Render | None:
    """Run a conditional UPDATE ... RETURNING in its own transaction; the row it changed."""
    async with engine.begin() as connection:
        row = (await connection.execute(statement.returning(*video_renders.columns))).mappings()
        first = row.first()
    return Render.from_row(first) if first is not None else None


class Transitions:
    """The transitions render_api drives: CancelRender's and the sweeper's."""

    def __init__(self, settings: Settings, engine: AsyncEngine, redis: Redis) -> None:
        self._engine = engine
        self.side = Bookkeeping(settings, redis)

    async def cancel_queued(self, render_id: str) -> Render | None:
        """QUEUED -> CANCELLED at once: no worker holds it, any entry left for it is skipped.

        Flags the cancel in Redis (a worker claiming it meanwhile stops) and publishes the
        terminal event.
        """
        now = datetime.now(UTC)
        render = await update_returning(
            self._engine,
            update(video_renders)
            .where(c.id == render_id, c.status == State.QUEUED)
            .values(
                status=State.CANCELLED,
                stage=Stage.DONE,
                cancel_requested=True,
                completed_at=now,
                updated_at=now,
            ),
        )
        if render is None:
            return None
        await self.side.signal_cancel(render_id)
        return await self.side.announce(
            render,
            State.CANCELLED,
            Stage.DONE,
            durable=True,
            progress=render.progress,
            message="cancelled before it started",
        )

    async def cancel_running(self, render_id: str) -> Render | None:
        """RUNNING stays RUNNING with `cancel_requested`; the worker holding it is told (cancel
        flag and channel) and ends it CANCELLED within a second (`Lease.CANCEL_REQUESTED`)."""
        render = await update_returning(
            self._engine,
            update(video_renders)
            .where(c.id == render_id, c.status == State.RUNNING)
            .values(cancel_requested=True, updated_at=datetime.now(UTC)),
        )
        if render is not None:
            await self.side.signal_cancel(render_id)
        return render

    async def hand_back_silent(
        self, render_id: str, worker_id: str | None, attempt: int, older_than: datetime
    ) -> Render | None:
        """RUNNING -> QUEUED, attempt unspent, for a render whose worker has been silent
        since `older_than` (and whose entry Redis no longer holds: the caller checked).

        A worker that was merely slow finds its lease gone. The caller re-enqueues the
        attempt (`reenqueue`); watchers are told it is queued again.
        """
        render = await update_returning(
            self._engine,
            update(video_renders)
            .where(
                c.id == render_id,
                c.status == State.RUNNING,
                c.attempt == attempt,
                c.worker_id.is_(None) if worker_id is None else c.worker_id == worker_id,
                c.updated_at < older_than,
            )
            .values(
                status=State.QUEUED,
                stage=Stage.QUEUED,
                progress=0.0,
                attempt=attempt - 1,
                queue_job_id=None,
                worker_id=None,
                updated_at=datetime.now(UTC),
            ),
        )
        return await self.side.announce(
            render,
            State.QUEUED,
            Stage.QUEUED,
            durable=False,
            message="its worker went silent; attempt handed back to the queue",
        )

    async def forget_lost_entry(self, render_id: str, entry: str) -> bool:
        """QUEUED stays QUEUED, naming no entry, when the entry it names is gone from Redis
        (the caller re-enqueues it). Bookkeeping only: updated_at stays."""
        return await renders.forget_entry(self._engine, render_id, entry)

    async def reenqueue(self, attempts: list[tuple[str, int]]) -> list[tuple[str, str]]:
        """New entries, each in its engine's queue, for QUEUED renders' next attempts,
        (render_id, attempt) pairs, in one round trip, recorded on the rows that name none;
        the (render_id, entry id) pairs Redis took."""
        if not attempts:
            return []
        replies = await enqueue_routed(
            self._engine, self.side.redis, attempts, current_traceparent()
        )
        recorded = [
            (render_id, reply)
            for (render_id, _), reply in zip(attempts, replies, strict=True)
            if isinstance(reply, str)
        ]
        await renders.mark_enqueued_many(self._engine, recorded)
        return recorded
