"""One attempt of one render: claim, render, upload, complete, or retry / fail / cancel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from opentelemetry import propagate, trace

from render_common import metrics
from render_common.config import Settings
from render_common.downloads import StoredObject
from render_common.outage import REDIS_LOST
from render_common.presets import FORMAT_CONTENT_TYPES, FORMAT_EXTENSIONS
from render_common.renders.attempts import AttemptTransitions
from render_common.renders.lease import HEARTBEAT_SECONDS, Lease
from render_common.renders.record import Render
from render_common.renders.states import Stage, State
from render_common.tasks import cancelling
from services.render_worker.engines.base import (
    UPLOADING_PROGRESS,
    Engine,
    RenderJob,
    RenderOutput,
)
from services.render_worker.failures import RenderCancelled, RenderFailure
from services.render_worker.sidecar import audio_metadata, store_sidecar
from services.render_worker.storage import Storage, output_key
from services.render_worker.workdirs import WorkDirs

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
REMOTE_CANCEL_SECONDS = 10.0  # bound on an engine's remote cancel (e.g. Lambda)
CRASHED_WORKER = "RENDER_CRASHED_WORKER"


def location_columns(stored: StoredObject) -> dict[str, str]:
    """The row's columns saying where a render's objects are (links are made when read)."""
    return {"storage": stored.storage, "storage_location": stored.location}


@dataclass(frozen=True, slots=True)
class Delivery:
    """A render:jobs entry handed to this worker."""

    entry_id: str
    render_id: str
    attempt: int
    traceparent: str
    reclaimed: bool
    deliveries: int = 1  # times Redis handed this entry out (XPENDING times_delivered)

    @classmethod
    def from_entry(
        cls, entry_id: str, fields: dict[str, str], *, reclaimed: bool, deliveries: int = 1
    ) -> Delivery:
        """Decode the entry's fields."""
        return cls(
            entry_id=entry_id,
            render_id=fields.get("render_id", ""),
            attempt=int(fields.get("attempt", "1") or 1),
            traceparent=fields.get("traceparent", ""),
            reclaimed=reclaimed,
            deliveries=deliveries,
        )


class RenderProcessor:
    """Runs attempts on an engine and records their outcome."""

    def __init__(
        self,
        settings: Settings,
        transitions: AttemptTransitions,
        engines: dict[str, Engine],
        storage: Storage,
        work_dirs: WorkDirs,
    ) -> None:
        self._settings = settings
        self._transitions = transitions
        self._engines = engines
        self._storage = storage
        self._work_dirs = work_dirs

    async def process(self, delivery: Delivery, cancel: asyncio.Event) -> bool:
        """Run one delivery to its end; True when the caller should acknowledge the entry,
        False to leave it pending (a reclaimed entry whose render still looks alive)."""
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
            enqueued_ms = int(delivery.entry_id.split("-", 1)[0] or 0)
            metrics.queue_lag.record(
                max(0.0, time.time() - enqueued_ms / 1000), {"engine": row.engine}
            )
            await self._run(delivery, row, cancel)
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

    async def _run(self, delivery: Delivery, row: Render, cancel: asyncio.Event) -> None:
        render_id = row.id
        frames_total = row.frames_total
        engine = self._engines.get(row.engine)
        work_dir = self._work_dirs.create(render_id)
        state: dict[str, Any] = {"stage": Stage.BUNDLING, "progress": 0.0, "frames": 0}
        last_event = 0.0
        labels = {"engine": row.engine, "quality": row.quality}
        started = time.monotonic()
        outcome = State.FAILED
        metrics.active_renders.add(1, labels)

        async def report(stage: str, progress: float, frames: int) -> None:
            nonlocal last_event
            state.update(stage=stage, progress=progress, frames=frames)
            now = time.monotonic()
            if now - last_event >= 0.25 or frames >= frames_total:
                last_event = now
                await self._transitions.progress(row, stage, progress, frames)

        try:
            if engine is None:
                raise RenderFailure(
                    "ENGINE_UNAVAILABLE",
                    f"engine {row.engine!r} is not enabled on this worker",
                    retryable=False,
                )
            job = RenderJob(
                render_id=render_id,
                project_id=row.project_id,
                scenes=row.scenes,
                format=row.format,
                quality=row.quality,
                frames_total=frames_total,
                attempt=delivery.attempt,
                work_dir=work_dir,
                resume=row.lambda_details,
                record=partial(self._record_details, render_id),
                soundtrack=row.soundtrack,
                captions=row.captions,
                poster_frame=row.poster_frame,
                shape=row.shape,
            )
            output = await self._render_watched(engine, job, report, cancel, state)
            await report(Stage.UPLOADING, UPLOADING_PROGRESS, frames_total)
            values = await self._store(row, output)
            values.update(
                await store_sidecar(row, output, values, work_dir, self._storage, self._settings)
            )
            outcome = State.SUCCEEDED
            if await self._transitions.succeed(row, values):
                log.info(
                    "render succeeded",
                    extra={
                        "render_id": render_id,
                        "key": values.get("output_key") or values.get("output_url"),
                    },
                )
        except RenderCancelled:
            outcome = State.CANCELLED
            await self._transitions.cancelled(row, float(state["progress"]), int(state["frames"]))
        except RenderFailure as exc:
            await self._failed(delivery, row, exc)
        except asyncio.CancelledError:
            # Worker shutdown past its grace period: give the attempt back as it was.
            await asyncio.shield(self._hand_back(delivery, row.user_id))
            raise
        except REDIS_LOST as exc:
            # Redis went away under a step that needed it: not the render's fault, so the
            # attempt goes back to the queue as it was and costs no retry.
            log.warning("redis away mid-attempt; handing it back", extra={"error": str(exc)})
            await self._hand_back(delivery, row.user_id)
        except Exception as exc:
            if cancelling():
                # Shutdown's cancellation, turned into its own error by a driver: hand the
                # attempt back as for a plain cancellation, rather than spend a retry on it.
                await asyncio.shield(self._hand_back(delivery, row.user_id))
                raise asyncio.CancelledError from exc
            log.exception("render crashed", extra={"render_id": render_id})
            failure = RenderFailure(
                "INTERNAL", f"internal error: {exc}", retryable=True, stack=traceback.format_exc()
            )
            await self._failed(delivery, row, failure)
        finally:
            self._work_dirs.release(work_dir)
            metrics.active_renders.add(-1, labels)
            metrics.render_duration.record(
                time.monotonic() - started, {**labels, "outcome": outcome}
            )

    async def _render_watched(
        self,
        engine: Engine,
        job: RenderJob,
        report: Any,
        cancel: asyncio.Event,
        state: dict[str, Any],
    ) -> RenderOutput:
        """Run the engine, stopping it on cancel, on timeout, or when the lease is lost."""
        with tracer.start_as_current_span(
            f"engine.{engine.name}.render", attributes={"render.id": job.render_id}
        ):
            # The task copies the current context, so the engine's own calls nest here.
            task = asyncio.create_task(engine.render(job, report))
        deadline = time.monotonic() + self._settings.render_timeout_seconds
        cancelled = asyncio.create_task(cancel.wait())
        try:
            while True:
                # A cancel message (pub/sub) ends the wait at once, whatever the engine is
                # doing (prefetching, starting the host, rendering); the heartbeat finds a
                # cancel request in the database within a second even without Redis.
                await asyncio.wait(
                    {task, cancelled},
                    timeout=HEARTBEAT_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if task.done():
                    return task.result()
                lease = Lease.CANCEL_REQUESTED
                if not cancel.is_set():
                    lease = await self._transitions.renew_lease(
                        job.render_id, state["stage"], float(state["progress"])
                    )
                if lease is Lease.CANCEL_REQUESTED:
                    await self._stop_remote(engine, job)
                    raise RenderCancelled()
                if lease is Lease.LOST:
                    raise RenderCancelled()  # cancelled while queued, or taken over: stop quietly
                if time.monotonic() > deadline:
                    await self._stop_remote(engine, job)
                    raise RenderFailure(
                        "RENDER_TIMEOUT",
                        f"render exceeded {self._settings.render_timeout_seconds:g}s",
                        retryable=False,
                    )
        finally:
            cancelled.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RenderCancelled, RenderFailure):
                    await task

    async def _stop_remote(self, engine: Engine, job: RenderJob) -> None:
        """Ask the engine to stop work running elsewhere; bounded, never raises."""
        try:
            async with asyncio.timeout(REMOTE_CANCEL_SECONDS):
                await engine.cancel(job)
        except Exception:
            log.warning("engine cancel failed", exc_info=True, extra={"render_id": job.render_id})

    async def _record_details(self, render_id: str, values: Mapping[str, Any]) -> None:
        """Record engine columns while the attempt runs; lost lease: stop the attempt."""
        if not await self._transitions.rows.record_details(render_id, dict(values)):
            raise RenderCancelled()

    async def _store(self, row: Render, output: RenderOutput) -> dict[str, Any]:
        """Upload output and thumbnail; the row's output columns."""
        probe = output.probe
        metadata = {
            "duration": float(probe.get("durationSec", 0.0) or 0.0),
            "fileSize": int(probe.get("sizeBytes", 0) or 0),
            "resolution": {
                "width": int(probe.get("width", 0) or 0),
                "height": int(probe.get("height", 0) or 0),
            },
            "fps": float(probe.get("fps", 0.0) or 0.0),
            "codec": str(probe.get("codec", "")),
            "bitrate": int(probe.get("bitrate", 0) or 0),
            **audio_metadata(probe),
        }
        values: dict[str, Any] = {"metadata": metadata, **output.details}
        if output.stored is not None:  # stored by the engine (a private Lambda output)
            values.update(location_columns(output.stored), output_key=output.stored.key)
            return values
        if output.output_url:  # a URL that never expires (a public Lambda output)
            values["output_url"] = output.output_url
            return values
        assert output.output_path is not None
        extension = FORMAT_EXTENSIONS[row.format]
        object_metadata = {
            "format": row.format,
            "quality": row.quality,
            "fileSize": str(metadata["fileSize"] or output.output_path.stat().st_size),
            "duration": f"{metadata['duration']:.3f}",
            "render-id": row.id,
            "project-id": row.project_id,
        }
        stored = await self._storage.put(
            output.output_path,
            output_key(row.project_id, row.id, extension),
            content_type=FORMAT_CONTENT_TYPES[row.format],
            metadata=object_metadata,
            download_name=f"{row.project_id}-{int(time.time())}.{extension}",
        )
        values.update(location_columns(stored), output_key=stored.key)
        if output.thumbnail_path is not None and output.thumbnail_path.exists():
            thumb = await self._storage.put(
                output.thumbnail_path,
                output_key(row.project_id, row.id, "jpg"),
                content_type="image/jpeg",
                metadata={"render-id": row.id, "project-id": row.project_id},
                download_name=f"{row.project_id}-thumbnail.jpg",
            )
            values["thumbnail_key"] = thumb.key  # same storage and location as the output
        if not metadata["fileSize"]:
            metadata["fileSize"] = output.output_path.stat().st_size
        return values

    async def _failed(self, delivery: Delivery, row: Render, failure: RenderFailure) -> None:
        render_id = row.id
        attempt = delivery.attempt
        metrics.render_failures.add(
            1, {"reason": failure.reason, "retryable": str(failure.retryable).lower()}
        )
        log.warning(
            "render attempt failed",
            extra={
                "render_id": render_id,
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

    async def _hand_back(self, delivery: Delivery, user_id: str) -> None:
        """Give the attempt back as it was (no retry spent); a new entry carries it."""
        await self._transitions.hand_back(
            delivery.render_id, user_id, delivery.attempt, delivery.traceparent
        )
