"""The render row's transitions as a worker drives them, each one conditional.

A worker holds a render while the row says `status = running` and `worker_id = <it>` for
the attempt it claimed. Every later write is conditioned on that lease, so a worker that
lost the render (reclaimed after a crash or stall, or cancelled) writes nothing, and a
redelivered entry can never complete a render twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.db import renders
from render_common.db.schema import (
    CANCELLED,
    FAILED,
    LAMBDA_COLUMNS,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    video_renders,
)

c = video_renders.c


class RenderLifecycle:
    """Conditional updates of video_renders for one worker."""

    def __init__(self, engine: AsyncEngine, worker_id: str) -> None:
        self._engine = engine
        self.worker_id = worker_id

    async def current(self, render_id: str) -> dict[str, Any] | None:
        """The render row as it is now."""
        return await renders.get(self._engine, render_id)

    async def record_entry(self, render_id: str, entry_id: str) -> None:
        """Record the stream entry now carrying the render."""
        await renders.mark_enqueued(self._engine, render_id, entry_id)

    async def record_retry_entry(self, render_id: str, entry_id: str) -> None:
        """Record the entry of a retry moved into the stream (replacing the retry marker)."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(video_renders)
                .where(c.id == render_id, c.status == QUEUED, c.queue_job_id.like("retry:%"))
                .values(queue_job_id=entry_id)
            )

    async def claim(
        self, render_id: str, attempt: int, *, reclaimed: bool
    ) -> dict[str, Any] | None:
        """Take a render for `attempt`; None if it is not ours to run.

        A fresh entry takes a QUEUED render whose earlier attempts are done. A reclaimed
        entry (its worker went silent past the visibility timeout) also takes over a
        RUNNING render of the same attempt.
        """
        now = datetime.now(UTC)
        fresh = and_(c.status == QUEUED, c.attempt < attempt)
        condition = (
            or_(fresh, and_(c.status == RUNNING, c.attempt == attempt)) if reclaimed else fresh
        )
        statement = (
            update(video_renders)
            .where(c.id == render_id, c.cancel_requested.is_(False), condition)
            .values(
                status=RUNNING,
                stage="bundling",
                attempt=attempt,
                retry_count=attempt - 1,
                worker_id=self.worker_id,
                started_at=now,
                updated_at=now,
            )
            .returning(*video_renders.columns)
        )
        async with self._engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return dict(row) if row is not None else None

    async def _update_owned(self, render_id: str, **values: Any) -> bool:
        values.setdefault("updated_at", datetime.now(UTC))
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(video_renders)
                .where(c.id == render_id, c.status == RUNNING, c.worker_id == self.worker_id)
                .values(**values)
            )
        return bool(result.rowcount)

    async def progress(self, render_id: str, stage: str, progress: float) -> bool:
        """Record progress (also the heartbeat); False when the lease is lost."""
        return await self._update_owned(render_id, stage=stage, progress=progress)

    async def record_details(self, render_id: str, values: dict[str, Any]) -> bool:
        """Record engine columns (e.g. the Lambda render id); False when the lease is lost."""
        return await self._update_owned(render_id, **values)

    async def succeed(self, render_id: str, **values: Any) -> bool:
        """Complete the render; False if it was not ours any more (no second completion)."""
        now = datetime.now(UTC)
        return await self._update_owned(
            render_id, status=SUCCEEDED, stage="done", progress=1.0, completed_at=now, **values
        )

    async def fail(
        self, render_id: str, reason: str, message: str, stack: str, retryable: bool
    ) -> bool:
        """Fail the render for good."""
        return await self._update_owned(
            render_id,
            status=FAILED,
            stage="done",
            completed_at=datetime.now(UTC),
            error_reason=reason,
            error_message=message,
            error_stack=stack[:20_000] or None,
            error_retryable=retryable,
        )

    async def schedule_retry(
        self, render_id: str, next_attempt: int, reason: str, message: str, stack: str
    ) -> bool:
        """Put the render back to QUEUED, waiting for `next_attempt` in the retry set."""
        return await self._update_owned(
            render_id,
            status=QUEUED,
            stage="queued",
            progress=0.0,
            queue_job_id=f"retry:{next_attempt}",
            # The next attempt starts its own engine work rather than following this one.
            **dict.fromkeys(LAMBDA_COLUMNS),
            error_reason=reason,
            error_message=message,
            error_stack=stack[:20_000] or None,
            error_retryable=True,
        )

    async def cancelled(self, render_id: str) -> bool:
        """Mark the render CANCELLED after its renderer stopped."""
        return await self._update_owned(
            render_id, status=CANCELLED, stage="done", completed_at=datetime.now(UTC)
        )

    async def hand_back(self, render_id: str, attempt: int) -> bool:
        """Return an unfinished attempt to the queue (shutdown), to be run again as is."""
        return await self._update_owned(
            render_id,
            status=QUEUED,
            stage="queued",
            progress=0.0,
            attempt=attempt - 1,
            queue_job_id=None,
        )
