"""One attempt of one render: claim, render, upload, complete, or retry / fail / cancel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from redis.asyncio import Redis

from render_common import metrics, streams
from render_common.config import Settings
from render_common.db.schema import LAMBDA_COLUMNS
from render_common.events import ProgressEvent, publish_event
from render_common.presets import FORMAT_CONTENT_TYPES, FORMAT_EXTENSIONS
from render_common.queue import enqueue_attempt
from render_common.tasks import cancelling
from services.render_worker.engines.base import (
    UPLOADING_PROGRESS,
    Engine,
    RenderJob,
    RenderOutput,
)
from services.render_worker.failures import RenderCancelled, RenderFailure
from services.render_worker.lifecycle import RenderLifecycle
from services.render_worker.storage import Storage, output_key

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
HEARTBEAT_SECONDS = 1.0
REMOTE_CANCEL_SECONDS = 10.0  # bound on an engine's remote cancel (e.g. Lambda)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A render:jobs entry handed to this worker."""

    entry_id: str
    render_id: str
    attempt: int
    traceparent: str
    reclaimed: bool

    @classmethod
    def from_entry(cls, entry_id: str, fields: dict[str, str], *, reclaimed: bool) -> Delivery:
        """Decode the entry's fields."""
        return cls(
            entry_id=entry_id,
            render_id=fields.get("render_id", ""),
            attempt=int(fields.get("attempt", "1") or 1),
            traceparent=fields.get("traceparent", ""),
            reclaimed=reclaimed,
        )


class RenderProcessor:
    """Runs attempts on an engine and records their outcome."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        lifecycle: RenderLifecycle,
        engines: dict[str, Engine],
        storage: Storage,
        work_root: Path,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._lifecycle = lifecycle
        self._engines = engines
        self._storage = storage
        self._work_root = work_root
        work_root.mkdir(parents=True, exist_ok=True)

    async def publish(self, render_id: str, user_id: str, **fields: Any) -> None:
        """Append a progress event for a render (and to its owner's stream)."""
        await publish_event(
            self._redis,
            ProgressEvent(render_id=render_id, **fields),
            maxlen=self._settings.events_maxlen,
            ttl_seconds=self._settings.events_ttl_seconds,
            user_id=user_id,
        )

    async def process(self, delivery: Delivery, cancel: asyncio.Event) -> None:
        """Run one delivery to its end. The caller acknowledges the entry afterwards."""
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
            row = await self._lifecycle.claim(
                delivery.render_id, delivery.attempt, reclaimed=delivery.reclaimed
            )
            if row is None:
                await self._skip(delivery)
                return
            enqueued_ms = int(delivery.entry_id.split("-", 1)[0] or 0)
            metrics.queue_lag.record(
                max(0.0, time.time() - enqueued_ms / 1000), {"engine": row["engine"]}
            )
            if await self._redis.exists(streams.cancel_flag(delivery.render_id)):
                cancel.set()
            await self._run(delivery, row, cancel)

    async def _skip(self, delivery: Delivery) -> None:
        """An entry that is not ours to run: a duplicate, a stale retry or a cancelled render."""
        current = await self._lifecycle.current(delivery.render_id)
        if current is not None and current["status"] == "queued" and current["cancel_requested"]:
            return
        log.info(
            "skipping entry",
            extra={
                "render_id": delivery.render_id,
                "attempt": delivery.attempt,
                "status": current["status"] if current else None,
            },
        )

    async def _run(self, delivery: Delivery, row: dict[str, Any], cancel: asyncio.Event) -> None:
        render_id = row["id"]
        frames_total = int(row["frames_total"])
        engine = self._engines.get(row["engine"])
        work_dir = Path(tempfile.mkdtemp(prefix=f"render-{render_id[:8]}-", dir=self._work_root))
        state: dict[str, Any] = {"stage": "bundling", "progress": 0.0, "frames": 0}
        await self.publish(
            render_id,
            row["user_id"],
            state="running",
            stage="bundling",
            frames_total=frames_total,
            message=f"attempt {delivery.attempt} of {self._settings.max_attempts} started",
        )
        last_event = 0.0
        labels = {"engine": row["engine"], "quality": row["quality"]}
        started = time.monotonic()
        outcome = "failed"
        metrics.active_renders.add(1, labels)

        async def report(stage: str, progress: float, frames: int) -> None:
            nonlocal last_event
            state.update(stage=stage, progress=progress, frames=frames)
            now = time.monotonic()
            if now - last_event >= 0.25 or frames >= frames_total:
                last_event = now
                await self.publish(
                    render_id,
                    row["user_id"],
                    state="running",
                    stage=stage,
                    progress=progress,
                    frames_rendered=frames,
                    frames_total=frames_total,
                )

        try:
            if engine is None:
                raise RenderFailure(
                    "ENGINE_UNAVAILABLE",
                    f"engine {row['engine']!r} is not enabled on this worker",
                    retryable=False,
                )
            job = RenderJob(
                render_id=render_id,
                project_id=row["project_id"],
                scenes=list(row["spec"]["scenes"]),
                format=row["format"],
                quality=row["quality"],
                frames_total=frames_total,
                attempt=delivery.attempt,
                work_dir=work_dir,
                resume={k: row[k] for k in LAMBDA_COLUMNS if row.get(k)},
                record=partial(self._record_details, render_id),
            )
            output = await self._render_watched(engine, job, report, cancel, state)
            await report("uploading", UPLOADING_PROGRESS, frames_total)
            values = await self._store(row, output)
            outcome = "succeeded"
            if await self._lifecycle.succeed(render_id, **values):
                await self.publish(
                    render_id,
                    row["user_id"],
                    state="succeeded",
                    stage="done",
                    progress=1.0,
                    frames_rendered=frames_total,
                    frames_total=frames_total,
                )
                log.info(
                    "render succeeded", extra={"render_id": render_id, "url": values["output_url"]}
                )
        except RenderCancelled:
            outcome = "cancelled"
            if await self._lifecycle.cancelled(render_id):
                await self.publish(
                    render_id,
                    row["user_id"],
                    state="cancelled",
                    stage="done",
                    progress=float(state["progress"]),
                    frames_rendered=int(state["frames"]),
                    frames_total=frames_total,
                    message="cancelled while running",
                )
        except RenderFailure as exc:
            await self._failed(delivery, row, exc)
        except asyncio.CancelledError:
            # Worker shutdown past its grace period: give the attempt back as it was.
            await asyncio.shield(self._hand_back(delivery, row["user_id"]))
            raise
        except Exception as exc:
            if cancelling():
                # Shutdown's cancellation, turned into its own error by a driver: hand the
                # attempt back as for a plain cancellation, rather than spend a retry on it.
                await asyncio.shield(self._hand_back(delivery, row["user_id"]))
                raise asyncio.CancelledError from exc
            log.exception("render crashed", extra={"render_id": render_id})
            failure = RenderFailure(
                "INTERNAL", f"internal error: {exc}", retryable=True, stack=traceback.format_exc()
            )
            await self._failed(delivery, row, failure)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
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
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_SECONDS)
                if done:
                    return task.result()
                if cancel.is_set() or await self._redis.exists(streams.cancel_flag(job.render_id)):
                    await self._stop_remote(engine, job)
                    raise RenderCancelled()
                if time.monotonic() > deadline:
                    await self._stop_remote(engine, job)
                    raise RenderFailure(
                        "RENDER_TIMEOUT",
                        f"render exceeded {self._settings.render_timeout_seconds:g}s",
                        retryable=False,
                    )
                if not await self._lifecycle.progress(
                    job.render_id, state["stage"], float(state["progress"])
                ):
                    raise RenderCancelled()  # cancelled or taken over: stop quietly
        finally:
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
        if not await self._lifecycle.record_details(render_id, dict(values)):
            raise RenderCancelled()

    async def _store(self, row: dict[str, Any], output: RenderOutput) -> dict[str, Any]:
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
        }
        values: dict[str, Any] = {"metadata": metadata, **output.details}
        if output.output_url:
            values["output_url"] = output.output_url
            return values
        assert output.output_path is not None
        extension = FORMAT_EXTENSIONS[row["format"]]
        object_metadata = {
            "format": row["format"],
            "quality": row["quality"],
            "fileSize": str(metadata["fileSize"] or output.output_path.stat().st_size),
            "duration": f"{metadata['duration']:.3f}",
            "render-id": row["id"],
            "project-id": row["project_id"],
        }
        stored = await self._storage.put(
            output.output_path,
            output_key(row["project_id"], row["id"], extension),
            content_type=FORMAT_CONTENT_TYPES[row["format"]],
            metadata=object_metadata,
            download_name=f"{row['project_id']}-{int(time.time())}.{extension}",
        )
        values.update(output_url=stored.url, output_key=stored.key)
        if output.thumbnail_path is not None and output.thumbnail_path.exists():
            thumb = await self._storage.put(
                output.thumbnail_path,
                output_key(row["project_id"], row["id"], "jpg"),
                content_type="image/jpeg",
                metadata={"render-id": row["id"], "project-id": row["project_id"]},
                download_name=f"{row['project_id']}-thumbnail.jpg",
            )
            values.update(thumbnail_url=thumb.url, thumbnail_key=thumb.key)
        if not metadata["fileSize"]:
            metadata["fileSize"] = output.output_path.stat().st_size
        return values

    async def _failed(
        self, delivery: Delivery, row: dict[str, Any], failure: RenderFailure
    ) -> None:
        render_id = row["id"]
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
            delay = self._settings.retry_base_delay_seconds * 2 ** (attempt - 1)
            if await self._lifecycle.schedule_retry(
                render_id, attempt + 1, failure.reason, failure.message, failure.stack
            ):
                member = json.dumps(
                    {
                        "render_id": render_id,
                        "attempt": attempt + 1,
                        "traceparent": delivery.traceparent,
                    }
                )
                await self._redis.zadd(streams.RETRY_ZSET, {member: time.time() + delay})
                await self.publish(
                    render_id,
                    row["user_id"],
                    state="queued",
                    stage="queued",
                    frames_total=int(row["frames_total"]),
                    message=f"attempt {attempt} failed ({failure.reason}); retrying in {delay:g}s "
                    f"(attempt {attempt + 1} of {self._settings.max_attempts})",
                )
            return
        if await self._lifecycle.fail(
            render_id, failure.reason, failure.message, failure.stack, failure.retryable
        ):
            await self._redis.xadd(
                streams.DEAD_STREAM,
                {
                    "render_id": render_id,
                    "attempt": str(attempt),
                    "reason": failure.reason,
                    "message": failure.message[:2000],
                    "retryable": "1" if failure.retryable else "0",
                },
                maxlen=streams.DEAD_MAXLEN,
                approximate=True,
            )
            await self.publish(
                render_id,
                row["user_id"],
                state="failed",
                stage="done",
                frames_total=int(row["frames_total"]),
                error_reason=failure.reason,
                error_message=failure.message,
                error_retryable=failure.retryable,
            )

    async def _hand_back(self, delivery: Delivery, user_id: str) -> None:
        with contextlib.suppress(Exception):
            if await self._lifecycle.hand_back(delivery.render_id, delivery.attempt):
                entry_id = await enqueue_attempt(
                    self._redis,
                    delivery.render_id,
                    delivery.attempt,
                    traceparent=delivery.traceparent,
                )
                await self._lifecycle.record_entry(delivery.render_id, entry_id)
                await self.publish(
                    delivery.render_id,
                    user_id,
                    state="queued",
                    stage="queued",
                    message="worker stopping; handed back",
                )
