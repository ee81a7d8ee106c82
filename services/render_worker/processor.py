"""One attempt of one render: claim, render, upload, complete, or retry / fail / cancel."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Mapping
from functools import partial
from typing import Any

from opentelemetry import propagate, trace

from render_common import metrics
from render_common.config import Settings
from render_common.outage import REDIS_LOST
from render_common.renders.attempts import AttemptTransitions
from render_common.renders.record import Render
from render_common.renders.states import Stage, State
from render_common.tasks import cancelling
from services.render_worker.delivery import Delivery, Running
from services.render_worker.engines.base import UPLOADING_PROGRESS, Engine, RenderJob
from services.render_worker.failures import RenderCancelled, RenderFailure
from services.render_worker.leases import HeldLease, LeaseKeeper
from services.render_worker.outputs import store_output
from services.render_worker.sidecar import store_sidecar
from services.render_worker.storage import Storage
from services.render_worker.watch import render_watched
from services.render_worker.workdirs import WorkDirs

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
CRASHED_WORKER = "RENDER_CRASHED_WORKER"
EVENT_INTERVAL_SECONDS = 0.25  # at most one progress event per render this often


class RenderProcessor:
    """Runs attempts on an engine and records their outcome."""

    def __init__(
        self,
        settings: Settings,
        transitions: AttemptTransitions,
        engines: dict[str, Engine],
        storage: Storage,
        work_dirs: WorkDirs,
        leases: LeaseKeeper,
    ) -> None:
        self._settings = settings
        self._transitions = transitions
        self._engines = engines
        self._storage = storage
        self._work_dirs = work_dirs
        self._leases = leases

    async def process(self, running: Running) -> bool:
        """Run one delivery to its end; True when the caller should acknowledge the entry,
        False to leave it pending (a reclaimed entry whose render still looks alive).
        Marks `running.claimed` once the render is taken (a cancellation from then on
        hands the attempt back)."""
        delivery = running.delivery
        context = (
            propagate.extract({"traceparent": delivery.traceparent})
            if delivery.traceparent
            else None
        )
        with tracer.start_as_current_span(
            "render.attempt",
            context=context,
            kind=trace.SpanKind.CONSUMER,
            attributes={"render.id": delivery.render_id, "render.attempt": delivery.attempt},
        ):
            if delivery.deliveries > self._settings.max_deliveries:
                return await self._crashed(delivery)
            row = await self._transitions.claim(
                delivery.render_id,
                delivery.attempt,
                reclaimed=delivery.reclaimed,
                entry_id=delivery.entry_id,
            )
            if row is None:
                return await self._skip(delivery)
            running.claimed = True
            enqueued_ms = int(delivery.entry_id.split("-", 1)[0] or 0)
            metrics.queue_lag.record(
                max(0.0, time.time() - enqueued_ms / 1000), {"engine": row.engine}
            )
            held = self._leases.hold(row.id)
            try:
                await self._run(delivery, row, running.cancel, held)
            finally:
                self._leases.release(held)
            return True

    async def _crashed(self, delivery: Delivery) -> bool:
        """An attempt whose every delivery stopped its worker (killed, out of memory, or
        silent past the visibility timeout): fail the render rather than deliver it again."""
        message = (
            f"attempt {delivery.attempt} was delivered {delivery.deliveries} times and each "
            f"worker running it stopped (crashed, killed or stalled) before finishing; "
            f"MAX_DELIVERIES is {self._settings.max_deliveries}"
        )
        row = await self._transitions.fail_crashed(
            delivery.render_id, delivery.attempt, CRASHED_WORKER, message
        )
        log.error(
            "render keeps stopping its workers; failed",
            extra={"render_id": delivery.render_id, "deliveries": delivery.deliveries},
        )
        if row is None:
            return await self._skip(delivery)
        metrics.render_failures.add(1, {"reason": CRASHED_WORKER, "retryable": "false"})
        return True

    async def _skip(self, delivery: Delivery) -> bool:
        """An entry that is not ours to run: a duplicate, a stale retry or a cancelled
        render (dropped: True), or a reclaimed entry whose render is RUNNING that attempt
        and still renews its lease in the database (its worker lost Redis for a while):
        left pending (False), for its worker's heartbeat to take back, or for a later
        reclaim once the lease is really abandoned."""
        current = await self._transitions.rows.current(delivery.render_id)
        alive = (
            delivery.reclaimed
            and current is not None
            and current.status == State.RUNNING
            and current.attempt == delivery.attempt
        )
        log.info(
            "skipping entry",
            extra={
                "render_id": delivery.render_id,
                "attempt": delivery.attempt,
                "reclaimed": delivery.reclaimed,
                "status": current.status if current else None,
                "worker": current.worker_id if current else None,
                "left_pending": alive,
            },
        )
        return not alive

    def _reporter(self, row: Render, held: HeldLease) -> Any:
        """The engine's progress callback: the lease's next heartbeat records it; events
        go out at most every EVENT_INTERVAL_SECONDS (and for the last frame)."""
        last_event = 0.0

        async def report(stage: str, progress: float, frames: int) -> None:
            nonlocal last_event
            held.stage, held.progress, held.frames = stage, progress, frames
            now = time.monotonic()
            if now - last_event >= EVENT_INTERVAL_SECONDS or frames >= row.frames_total:
                last_event = now
                await self._transitions.progress(row, stage, progress, frames)

        return report

    def _job(self, delivery: Delivery, row: Render, work_dir: Any) -> RenderJob:
        return RenderJob(
            render_id=row.id,
            project_id=row.project_id,
            scenes=row.scenes,
            format=row.format,
            quality=row.quality,
            frames_total=row.frames_total,
            attempt=delivery.attempt,
            work_dir=work_dir,
            resume=row.lambda_details,
            record=partial(self._record_details, row.id),
            soundtrack=row.soundtrack,
            captions=row.captions,
            poster_frame=row.poster_frame,
            shape=row.shape,
        )

    async def _run(
        self, delivery: Delivery, row: Render, cancel: asyncio.Event, held: HeldLease
    ) -> None:
        work_dir = self._work_dirs.create(row.id)
        labels = {"engine": row.engine, "quality": row.quality}
        started = time.monotonic()
        outcome = State.FAILED
        metrics.active_renders.add(1, labels)
        try:
            outcome = await self._attempt(delivery, row, cancel, held, work_dir)
        finally:
            self._work_dirs.release(work_dir)
            metrics.active_renders.add(-1, labels)
            metrics.render_duration.record(
                time.monotonic() - started, {**labels, "outcome": outcome}
            )

    async def _attempt(
        self, delivery: Delivery, row: Render, cancel: asyncio.Event, held: HeldLease, work_dir: Any
    ) -> State:
        """Render, store and complete; every way it can end, recorded. The outcome."""
        try:
            engine = self._engines.get(row.engine)
            if engine is None:
                raise RenderFailure(
                    "ENGINE_UNAVAILABLE",
                    f"engine {row.engine!r} is not enabled on this worker",
                    retryable=False,
                )
            report = self._reporter(row, held)
            job = self._job(delivery, row, work_dir)
            output = await render_watched(
                engine, job, report, cancel, held, self._settings.render_timeout_seconds
            )
            self._leases.release(held)
            await report(Stage.UPLOADING, UPLOADING_PROGRESS, row.frames_total)
            values = await store_output(self._storage, row, output)
            values.update(
                await store_sidecar(row, output, values, work_dir, self._storage, self._settings)
            )
            if await self._transitions.succeed(row, values):
                log.info("render succeeded", extra={"render_id": row.id})
            return State.SUCCEEDED
        except RenderCancelled:
            await self._transitions.cancelled(row, held.progress, held.frames)
            return State.CANCELLED
        except RenderFailure as exc:
            await self._failed(delivery, row, exc)
        except asyncio.CancelledError:
            # Worker shutdown past its grace period: give the attempt back as it was.
            await asyncio.shield(self._hand_back(delivery, row))
            raise
        except REDIS_LOST as exc:
            # Redis went away under a step that needed it: not the render's fault, so the
            # attempt goes back to the queue as it was and costs no retry.
            log.warning("redis away mid-attempt; handing it back", extra={"error": str(exc)})
            await self._hand_back(delivery, row)
        except Exception as exc:
            if cancelling():
                # Shutdown's cancellation, turned into its own error by a driver: hand the
                # attempt back as for a plain cancellation, rather than spend a retry on it.
                await asyncio.shield(self._hand_back(delivery, row))
                raise asyncio.CancelledError from exc
            log.exception("render crashed", extra={"render_id": row.id})
            failure = RenderFailure(
                "INTERNAL", f"internal error: {exc}", retryable=True, stack=traceback.format_exc()
            )
            await self._failed(delivery, row, failure)
        return State.FAILED

    async def _record_details(self, render_id: str, values: Mapping[str, Any]) -> None:
        """Record engine columns while the attempt runs; lost lease: stop the attempt."""
        if not await self._transitions.rows.record_details(render_id, dict(values)):
            raise RenderCancelled()

    async def _failed(self, delivery: Delivery, row: Render, failure: RenderFailure) -> None:
        attempt = delivery.attempt
        metrics.render_failures.add(
            1, {"reason": failure.reason, "retryable": str(failure.retryable).lower()}
        )
        log.warning(
            "render attempt failed",
            extra={
                "render_id": row.id,
                "attempt": attempt,
                "reason": failure.reason,
                "retryable": failure.retryable,
            },
        )
        if failure.retryable and attempt < self._settings.max_attempts:
            await self._transitions.schedule_retry(
                row,
                attempt,
                failure.reason,
                failure.message,
                failure.stack,
                traceparent=delivery.traceparent,
            )
            return
        await self._transitions.fail(
            row, attempt, failure.reason, failure.message, failure.stack, failure.retryable
        )

    async def _hand_back(self, delivery: Delivery, row: Render) -> None:
        """Give the attempt back as it was (no retry spent); a new entry carries it."""
        await self._transitions.hand_back(
            delivery.render_id, row.user_id, delivery.attempt, delivery.traceparent, row.engine
        )
