"""The worker's side of the render row: its conditional updates (the storage layer of
render_common.renders.attempts, which adds each transition's event and Redis writes).

A worker holds a render while the row says `status = running` and `worker_id = <it>` for
the attempt it claimed. Every later write is conditioned on that lease, so a worker that
lost the render (reclaimed after a crash or stall, or cancelled) writes nothing, and a
redelivered entry can never complete a render twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.db.schema import video_renders
from render_common.renders import queries as renders
from render_common.renders.record import LAMBDA_COLUMNS, Render
from render_common.renders.states import Stage, State

c = video_renders.c
# A batch's progress: one statement, executed for many (render, stage, progress) rows.
_PROGRESS = (
    update(video_renders)
    .where(c.id == bindparam("rid"))
    .values(stage=bindparam("stage_now"), progress=bindparam("progress_now"))
)
HEARTBEAT_SECONDS = 1.0  # how often a running attempt renews its lease
ERRORS_CLEARED = dict.fromkeys(("error_reason", "error_message", "error_stack", "error_retryable"))


class Lease(StrEnum):
    """What a heartbeat found: the render is still ours, its owner cancelled it, or it is
    no longer ours (cancelled while queued, taken over, ended)."""

    HELD = "held"
    CANCEL_REQUESTED = "cancel_requested"
    LOST = "lost"


class Heartbeat(NamedTuple):
    """One running render's lease renewal, with the progress to record if `changed`."""

    render_id: str
    stage: str
    progress: float
    changed: bool = True


def _lease(cancel_requested: bool | None) -> Lease:
    """A renewal's answer: no row (None) = lost."""
    if cancel_requested is None:
        return Lease.LOST
    return Lease.CANCEL_REQUESTED if cancel_requested else Lease.HELD


class RenderLifecycle:
    """Conditional updates of video_renders for one worker."""

    def __init__(
        self,
        engine: AsyncEngine,
        worker_id: str,
        *,
        visibility_seconds: float,
        concurrency: int = 0,
    ) -> None:
        self._engine = engine
        # At most `concurrency` of these statements at once (0: no bound): hundreds of
        # Lambda renders claiming or completing together wait here, in order, instead of
        # timing out waiting for a pooled connection (DB_POOL_TIMEOUT_SECONDS).
        self._gate = asyncio.Semaphore(concurrency) if concurrency else None
        self.worker_id = worker_id
        # A RUNNING render's worker renews its lease (updated_at) every HEARTBEAT_SECONDS.
        # A reclaimed entry (Redis saw no heartbeat for VISIBILITY_TIMEOUT_SECONDS) takes
        # the render over only if the database has not seen one for this long either.
        self._lease = timedelta(seconds=min(visibility_seconds / 2, 3 * HEARTBEAT_SECONDS))

    @contextlib.asynccontextmanager
    async def _gated(self) -> AsyncIterator[None]:
        if self._gate is None:
            yield
            return
        async with self._gate:
            yield

    async def current(self, render_id: str) -> Render | None:
        """The render row as it is now."""
        async with self._gated():
            return await renders.get(self._engine, render_id)

    async def record_entry(self, render_id: str, entry_id: str) -> None:
        """Record the stream entry now carrying the render."""
        async with self._gated():
            await renders.mark_enqueued(self._engine, render_id, entry_id)

    async def record_retry_entry(self, render_id: str, entry_id: str) -> None:
        """Record the entry of a retry moved into the stream (replacing the retry marker)."""
        async with self._gated(), self._engine.begin() as connection:
            await connection.execute(
                update(video_renders)
                .where(c.id == render_id, c.status == State.QUEUED, c.queue_job_id.like("retry:%"))
                .values(queue_job_id=entry_id)
            )

    async def claim(
        self, render_id: str, attempt: int, *, reclaimed: bool, entry_id: str
    ) -> Render | None:
        """Take a render for `attempt` carried by `entry_id`; None if it is not ours to run.

        A fresh entry takes a QUEUED render whose earlier attempts are done. A reclaimed
        entry (its worker went silent past the visibility timeout) also takes over a
        RUNNING render of the same attempt, if the database agrees that its worker went
        silent (a worker that lost only Redis for a while still renews its lease). The row
        records the entry, so the sweeper can tell a running render whose entry Redis lost
        from one whose entry is pending.
        """
        now = datetime.now(UTC)
        statement = (
            update(video_renders)
            .where(
                c.id == render_id,
                c.cancel_requested.is_(False),
                _takeable(attempt, reclaimed=reclaimed, silent_since=now - self._lease),
            )
            .values(
                status=State.RUNNING,
                stage=Stage.BUNDLING,
                attempt=attempt,
                retry_count=attempt - 1,
                worker_id=self.worker_id,
                queue_job_id=entry_id,
                started_at=now,
                updated_at=now,
            )
            .returning(*video_renders.columns)
        )
        return await self._update_returning(statement)

    async def fail_crashed(
        self, render_id: str, attempt: int, reason: str, message: str
    ) -> Render | None:
        """Fail a render whose attempt was delivered too often (each delivery's worker
        died or stalled); None if that attempt is not the render's live one any more.

        Same condition as a reclaimed claim: QUEUED before this attempt, or RUNNING it
        (on whichever worker went silent).
        """
        now = datetime.now(UTC)
        statement = (
            update(video_renders)
            .where(
                c.id == render_id,
                _takeable(attempt, reclaimed=True, silent_since=now - self._lease),
            )
            .values(
                status=State.FAILED,
                stage=Stage.DONE,
                attempt=attempt,
                retry_count=attempt - 1,
                completed_at=now,
                updated_at=now,
                error_reason=reason,
                error_message=message,
                error_stack=None,
                error_retryable=False,
            )
            .returning(*video_renders.columns)
        )
        return await self._update_returning(statement)

    async def _update_returning(self, statement: Any) -> Render | None:
        async with self._gated(), self._engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return Render.from_row(row) if row is not None else None

    async def _update_owned(self, render_id: str, **values: Any) -> Render | None:
        """Update a render this worker holds; the row as updated, None if the lease is lost."""
        values.setdefault("updated_at", datetime.now(UTC))
        return await self._update_returning(
            update(video_renders)
            .where(c.id == render_id, c.status == State.RUNNING, c.worker_id == self.worker_id)
            .values(**values)
            .returning(*video_renders.columns)
        )

    async def heartbeat(self, render_id: str, stage: str, progress: float) -> Lease:
        """Record progress and renew the lease; says whether the owner asked to cancel.

        The database carries the cancel request too, so cancel reaches a running render
        within a heartbeat even while Redis (its pub/sub and flag) is away.
        """
        statement = (
            update(video_renders)
            .where(c.id == render_id, c.status == State.RUNNING, c.worker_id == self.worker_id)
            .values(stage=stage, progress=progress, updated_at=datetime.now(UTC))
            .returning(c.cancel_requested)
        )
        async with self._gated(), self._engine.begin() as connection:
            cancel_requested = (await connection.execute(statement)).scalar()
        if cancel_requested is None:
            return Lease.LOST
        return Lease.CANCEL_REQUESTED if cancel_requested else Lease.HELD

    async def heartbeat_many(self, beats: Sequence[Heartbeat]) -> dict[str, Lease]:
        """`heartbeat` for many renders in one transaction (a worker following hundreds of
        Lambda renders renews them all at once); each render's lease.

        One UPDATE renews every lease (an expanding IN, compiled once); stage and progress
        are written only for the renders whose beat says they changed (polls move a few
        renders a second, not all of them).
        """
        if not beats:
            return {}
        ids = [beat.render_id for beat in beats]
        mine = and_(c.status == State.RUNNING, c.worker_id == self.worker_id)
        renew = (
            update(video_renders)
            .where(c.id.in_(ids), mine)
            .values(updated_at=datetime.now(UTC))
            .returning(c.id, c.cancel_requested)
        )
        changed = [
            {"rid": b.render_id, "stage_now": b.stage, "progress_now": b.progress}
            for b in beats
            if b.changed
        ]
        async with self._gated(), self._engine.begin() as connection:
            held = {str(r[0]): bool(r[1]) for r in (await connection.execute(renew)).all()}
            if changed:
                await connection.execute(_PROGRESS.where(mine), changed)
        return {render_id: _lease(held.get(render_id)) for render_id in ids}

    async def record_details(self, render_id: str, values: dict[str, Any]) -> bool:
        """Record engine columns (e.g. the Lambda render id); False when the lease is lost."""
        return await self._update_owned(render_id, **values) is not None

    async def succeed(self, render_id: str, **values: Any) -> Render | None:
        """Complete the render; False if it was not ours any more (no second completion).

        An earlier attempt's error is cleared: the render succeeded.
        """
        now = datetime.now(UTC)
        return await self._update_owned(
            render_id,
            status=State.SUCCEEDED,
            stage=Stage.DONE,
            progress=1.0,
            completed_at=now,
            **{**ERRORS_CLEARED, **values},
        )

    async def fail(
        self, render_id: str, reason: str, message: str, stack: str, retryable: bool
    ) -> Render | None:
        """Fail the render for good."""
        return await self._update_owned(
            render_id,
            status=State.FAILED,
            stage=Stage.DONE,
            completed_at=datetime.now(UTC),
            error_reason=reason,
            error_message=message,
            error_stack=stack[:20_000] or None,
            error_retryable=retryable,
        )

    async def schedule_retry(
        self, render_id: str, next_attempt: int, reason: str, message: str, stack: str
    ) -> Render | None:
        """Put the render back to QUEUED, waiting for `next_attempt` in the retry set."""
        return await self._update_owned(
            render_id,
            status=State.QUEUED,
            stage=Stage.QUEUED,
            progress=0.0,
            queue_job_id=f"retry:{next_attempt}",
            # The next attempt starts its own engine work rather than following this one.
            **dict.fromkeys(LAMBDA_COLUMNS),
            error_reason=reason,
            error_message=message,
            error_stack=stack[:20_000] or None,
            error_retryable=True,
        )

    async def forget_retry_entry(self, render_id: str, next_attempt: int) -> bool:
        """The retry entry could not be written (Redis away): the row stops naming one,
        and the sweeper enqueues `next_attempt` once its grace has passed."""
        async with self._gated():
            return await renders.forget_entry(self._engine, render_id, f"retry:{next_attempt}")

    async def cancelled(self, render_id: str) -> Render | None:
        """Mark the render CANCELLED after its renderer stopped."""
        return await self._update_owned(
            render_id, status=State.CANCELLED, stage=Stage.DONE, completed_at=datetime.now(UTC)
        )

    async def hand_back(self, render_id: str, attempt: int) -> Render | None:
        """Return an unfinished attempt to the queue (shutdown), to be run again as is."""
        return await self._update_owned(
            render_id,
            status=State.QUEUED,
            stage=Stage.QUEUED,
            progress=0.0,
            attempt=attempt - 1,
            queue_job_id=None,
        )


def _takeable(attempt: int, *, reclaimed: bool, silent_since: datetime) -> Any:
    """The rows an entry of `attempt` may take: a QUEUED render whose earlier attempts are
    done, and for a reclaimed entry also the RUNNING render of that attempt whose worker
    has not renewed its lease since `silent_since`."""
    fresh = and_(c.status == State.QUEUED, c.attempt < attempt)
    if not reclaimed:
        return fresh
    abandoned = and_(c.status == State.RUNNING, c.attempt == attempt, c.updated_at < silent_since)
    return or_(fresh, abandoned)
