"""StartRender's intake: concurrent requests admitted together, then enqueued.

The admit transition (render_common.renders.admit) does the race-free part: idempotency,
quotas and the insert, in one transaction per batch. This module groups concurrent
requests into those batches (render_common.batching), turns each validated request into
the columns of its new render, and after the commit XADDs the new renders' first attempts
in one pipeline. Under load that is six round trips per batch instead of five per request;
a quiet server still runs batches of one without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.batching import Batch, Batcher
from render_common.db.schema import WEBHOOK_PENDING
from render_common.poster import resolve_poster_frame
from render_common.queue import current_traceparent
from render_common.renders.admit import Admission, NewRender, Outcome, admit
from render_common.renders.quota import Limits
from services.render_api.enqueuer import Enqueuer, FirstAttempt
from services.render_api.validation import RenderSpec
from services.render_api.validation_media import spec_json

tracer = trace.get_tracer(__name__)

# Under load, a batch waits up to 1 ms for more requests before it starts: larger batches
# spend less CPU per request on statements and round trips (bench: +11% throughput,
# 2,470 -> 2,749 calls/s, p50 25.5 -> 22.3 ms). A lone request never waits.
LINGER_SECONDS = 0.001


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """One validated StartRender of a user, with its engine and cost already decided."""

    user_id: str
    spec: RenderSpec
    engine: str
    cost_estimate: dict[str, float]
    traceparent: str


class Intake:
    """Admits renders and enqueues them, concurrent requests together."""

    def __init__(
        self,
        engine: AsyncEngine,
        enqueuer: Enqueuer,
        *,
        daily_limit: int,
        concurrent_limit: int,
        max_batch: int = 64,
    ) -> None:
        self._engine = engine
        self._enqueuer = enqueuer
        self._limits = Limits(daily=daily_limit, concurrent=concurrent_limit)
        self._batcher: Batcher[IntakeRequest, Admission] = Batcher(
            self._admit_batch, name="intake", max_batch=max_batch, linger=LINGER_SECONDS
        )

    async def admit(
        self,
        user_id: str,
        spec: RenderSpec,
        *,
        engine: str,
        cost_estimate: dict[str, float],
    ) -> Admission:
        """Insert and enqueue a QUEUED render unless it is a retry or a limit is reached.

        A new render whose XADD failed comes back with no queue_job_id (the sweeper will
        enqueue it).
        """
        request = IntakeRequest(user_id, spec, engine, cost_estimate, current_traceparent())
        return await self._batcher.submit(request)

    async def close(self) -> None:
        """Wait for the batches in flight and the entry ids still to record."""
        await self._batcher.close()
        await self._enqueuer.close()

    async def _admit_batch(self, batch: Batch[IntakeRequest]) -> list[Outcome]:
        """Admit a batch in one transaction, then enqueue the renders it created."""
        with batch.span(tracer, "render.intake.batch"):
            results = await admit(
                self._engine,
                [new_render(request) for request in batch.items],
                self._limits,
                queue_ready=self._enqueuer.ensure_reachable,
            )
            created = [
                (index, result, request)
                for index, (result, request) in enumerate(zip(results, batch.items, strict=True))
                if isinstance(result, Admission) and result.created
            ]
            entry_ids = await self._enqueuer.enqueue(
                [
                    FirstAttempt(a.render.id, request.traceparent, a.render.engine)
                    for _, a, request in created
                ]
            )
            for (index, admission, _), entry_id in zip(created, entry_ids, strict=True):
                results[index] = replace(
                    admission, render=admission.render.with_values(queue_job_id=entry_id)
                )
            return results


def new_render(request: IntakeRequest) -> NewRender:
    """The render to admit for a validated request."""
    spec = request.spec
    return NewRender(
        user_id=request.user_id,
        request_id=spec.request_id or None,
        fingerprint=spec.fingerprint() if spec.request_id else None,
        columns=_columns(request),
    )


def _columns(request: IntakeRequest) -> dict[str, Any]:
    """What the request asks for, as columns of its row."""
    spec = request.spec
    return {
        "project_id": spec.project_id,
        "format": spec.format,
        "quality": spec.quality,
        "engine": request.engine,
        "requested_engine": spec.requested_engine or "default",
        "spec": spec_json(spec),
        "scene_count": len(spec.scenes),
        "frames_total": spec.frames_total,
        "cost_estimate": request.cost_estimate,
        "cost_estimate_usd": request.cost_estimate["total_usd"],
        "client_metadata": spec.metadata or None,
        "webhook_url": spec.webhook_url or None,
        "webhook_state": WEBHOOK_PENDING if spec.webhook_url else None,
        "poster_frame": resolve_poster_frame(spec.poster_frame, spec.frames_total, spec.output.fps),
        **spec.output.columns(),
    }
