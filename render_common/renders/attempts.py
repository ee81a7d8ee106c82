"""The transitions a worker drives over one attempt of a render: claim, progress, succeed,
fail, schedule a retry, cancelled while running, hand back, fail a crashing attempt, and
re-enqueue a due retry. Each does the conditional update (render_common.renders.lease),
then the event and the Redis bookkeeping (render_common.renders.bookkeeping), and returns
the row as the update left it, or None when the update was refused (the worker no longer
holds the render, or it is no longer in the state the transition leaves).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from render_common.config import Settings
from render_common.renders.bookkeeping import Bookkeeping
from render_common.renders.lease import Heartbeat, Lease, RenderLifecycle
from render_common.renders.record import Render
from render_common.renders.states import Stage, State


class AttemptTransitions:
    """One worker's transitions; `rows` holds its lease, `side` writes Redis."""

    def __init__(self, settings: Settings, rows: RenderLifecycle, side: Bookkeeping) -> None:
        self._settings = settings
        self.rows = rows
        self.side = side

    async def claim(
        self, render_id: str, attempt: int, *, reclaimed: bool, entry_id: str
    ) -> Render | None:
        """QUEUED (or RUNNING on a silent worker, for a reclaimed entry) -> RUNNING here;
        announces the attempt (a progress event)."""
        render = await self.rows.claim(render_id, attempt, reclaimed=reclaimed, entry_id=entry_id)
        if render is not None:
            await self.progress(
                render,
                Stage.BUNDLING,
                message=f"attempt {attempt} of {self._settings.max_attempts} started",
            )
        return render

    async def progress(
        self,
        render: Render,
        stage: str,
        progress: float = 0.0,
        frames: int = 0,
        *,
        message: str = "",
    ) -> None:
        """RUNNING stays RUNNING: a progress event, best effort (the next one supersedes
        it). The row's progress is written by `renew_lease`, once a heartbeat."""
        await self.side.event(
            render.id,
            render.user_id,
            durable=False,
            state=State.RUNNING,
            stage=stage,
            progress=progress,
            frames_rendered=frames,
            frames_total=render.frames_total,
            message=message,
        )

    async def renew_lease(self, render_id: str, stage: str, progress: float) -> Lease:
        """Record progress and renew the lease; whether it is held, cancelled or lost."""
        return await self.rows.heartbeat(render_id, stage, progress)

    async def renew_leases(self, beats: Sequence[Heartbeat]) -> dict[str, Lease]:
        """`renew_lease` for many renders in one statement; each render's lease."""
        return await self.rows.heartbeat_many(beats)

    async def succeed(self, render: Render, values: dict[str, Any]) -> Render | None:
        """RUNNING here -> SUCCEEDED with the output columns `values`; the terminal event."""
        return await self.side.announce(
            await self.rows.succeed(render.id, **values),
            State.SUCCEEDED,
            Stage.DONE,
            durable=True,
            progress=1.0,
            frames_rendered=render.frames_total,
        )

    async def cancelled(self, render: Render, progress: float, frames: int) -> Render | None:
        """RUNNING here -> CANCELLED once its renderer stopped; the terminal event."""
        return await self.side.announce(
            await self.rows.cancelled(render.id),
            State.CANCELLED,
            Stage.DONE,
            durable=True,
            progress=progress,
            frames_rendered=frames,
            message="cancelled while running",
        )

    async def fail(
        self, render: Render, attempt: int, reason: str, message: str, stack: str, retryable: bool
    ) -> Render | None:
        """RUNNING here -> FAILED for good: the dead letter and the terminal event."""
        done = await self.rows.fail(render.id, reason, message, stack, retryable)
        if done is not None:
            await self._failed(done, attempt, reason, message, retryable)
        return done

    async def fail_crashed(
        self, render_id: str, attempt: int, reason: str, message: str
    ) -> Render | None:
        """An attempt delivered too often (each worker died or stalled) -> FAILED, not
        retryable: the dead letter and the terminal event."""
        done = await self.rows.fail_crashed(render_id, attempt, reason, message)
        if done is not None:
            await self._failed(done, attempt, reason, message, False)
        return done

    async def schedule_retry(
        self,
        render: Render,
        attempt: int,
        reason: str,
        message: str,
        stack: str,
        *,
        traceparent: str,
    ) -> Render | None:
        """RUNNING here -> QUEUED for `attempt + 1`, whose entry waits out its backoff in
        render:retry (the row names it `retry:<attempt>`).

        If Redis cannot take the entry, the row stops naming it and the sweeper enqueues
        the next attempt from the database after its grace.
        """
        delay = self._settings.retry_base_delay_seconds * 2 ** (attempt - 1)
        queued = await self.rows.schedule_retry(render.id, attempt + 1, reason, message, stack)
        if queued is None:
            return None
        if not await self.side.retry_entry(
            render.id, attempt + 1, traceparent, delay, render.engine
        ):
            await self.rows.forget_retry_entry(render.id, attempt + 1)
        return await self.side.announce(
            queued,
            State.QUEUED,
            Stage.QUEUED,
            durable=True,
            message=f"attempt {attempt} failed ({reason}); retrying in {delay:g}s "
            f"(attempt {attempt + 1} of {self._settings.max_attempts})",
        )

    async def hand_back(
        self, render_id: str, user_id: str, attempt: int, traceparent: str, engine: str
    ) -> Render | None:
        """RUNNING here -> QUEUED with `attempt` unspent (shutdown, Redis lost mid-attempt):
        a new entry carries it (or the sweeper, if Redis is away). Never raises."""
        with contextlib.suppress(Exception):
            queued = await self.rows.hand_back(render_id, attempt)
            if queued is None:
                return None
            entry_id = await self.side.requeue(render_id, attempt, traceparent, engine, within=2.0)
            if entry_id is not None:
                await self.rows.record_entry(render_id, entry_id)
            await self.side.event(
                render_id,
                user_id,
                durable=False,
                state=State.QUEUED,
                stage=Stage.QUEUED,
                message="attempt handed back to the queue",
            )
            return queued
        return None

    async def reenqueue_retry(self, render_id: str, entry_id: str) -> None:
        """A due retry moved from render:retry into the stream: the row names its entry
        (QUEUED stays QUEUED)."""
        await self.rows.record_retry_entry(render_id, entry_id)

    async def _failed(
        self, render: Render, attempt: int, reason: str, message: str, retryable: bool
    ) -> None:
        await self.side.dead_letter(render.id, attempt, reason, message, retryable=retryable)
        await self.side.announce(
            render,
            State.FAILED,
            Stage.DONE,
            durable=True,
            error_reason=reason,
            error_message=message,
            error_retryable=retryable,
        )
