"""Running an engine under watch: it stops on cancel, on timeout, or when the lease ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from opentelemetry import trace

from render_common.renders.lease import Lease
from services.render_worker.engines.base import Engine, ProgressReport, RenderJob, RenderOutput
from services.render_worker.failures import RenderCancelled, RenderFailure
from services.render_worker.leases import HeldLease

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
REMOTE_CANCEL_SECONDS = 10.0  # bound on an engine's remote cancel (e.g. Lambda)


async def render_watched(
    engine: Engine,
    job: RenderJob,
    report: ProgressReport,
    cancel: asyncio.Event,
    held: HeldLease,
    timeout_seconds: float,
) -> RenderOutput:
    """Run the engine until it ends, its owner cancels (pub/sub `cancel`, or the lease
    keeper's heartbeat finding the request in the database), the lease is lost (stop
    quietly: another worker has it), or `timeout_seconds` pass.

    Waiting costs nothing while the render runs: no periodic wake-up per render.
    """
    with tracer.start_as_current_span(
        f"engine.{engine.name}.render", attributes={"render.id": job.render_id}
    ):
        # The task copies the current context, so the engine's own calls nest here.
        task = asyncio.create_task(engine.render(job, report))
    cancelled = asyncio.create_task(cancel.wait())
    try:
        waited: set[asyncio.Future[Any]] = {task, cancelled, held.ended}
        await asyncio.wait(
            waited,
            timeout=timeout_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if task.done():
            return task.result()
        lease = held.ended.result() if held.ended.done() else None
        if cancel.is_set() or lease is Lease.CANCEL_REQUESTED:
            await stop_remote(engine, job)
            raise RenderCancelled()
        if lease is Lease.LOST:
            raise RenderCancelled()  # cancelled while queued, or taken over: stop quietly
        await stop_remote(engine, job)
        raise RenderFailure(
            "RENDER_TIMEOUT", f"render exceeded {timeout_seconds:g}s", retryable=False
        )
    finally:
        cancelled.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RenderCancelled, RenderFailure):
                await task


async def stop_remote(engine: Engine, job: RenderJob) -> None:
    """Ask the engine to stop work running elsewhere; bounded, never raises."""
    try:
        async with asyncio.timeout(REMOTE_CANCEL_SECONDS):
            await engine.cancel(job)
    except Exception:
        log.warning("engine cancel failed", exc_info=True, extra={"render_id": job.render_id})
