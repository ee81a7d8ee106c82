"""The StartRender transaction: idempotency, quotas and the insert, race-free, in batches.

On PostgreSQL transaction-scoped advisory locks per user serialise one user's intakes
(other users proceed in parallel); on SQLite every write transaction is BEGIN IMMEDIATE.
Either way the quota counts and the insert see each other, so 100 concurrent requests
against a limit of 10 admit exactly 10, and 50 retries of one request_id create one render.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from render_common.batching import Batch, Batcher, drop_outcome
from render_common.db.schema import WEBHOOK_PENDING
from render_common.errors import FailedPrecondition, QuotaExceeded, RenderExportError
from render_common.poster import resolve_poster_frame
from render_common.queue import current_traceparent
from render_common.renders.record import Render
from render_common.renders.states import Stage, State
from services.render_api import intake_sql as sql
from services.render_api.enqueuer import Enqueuer, FirstAttempt
from services.render_api.validation import RenderSpec
from services.render_api.validation_media import spec_json

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DEADLOCK_RETRIES = 3
# Under load, a batch waits up to 1 ms for more requests before it starts: larger batches
# spend less CPU per request on statements and round trips (bench: +11% throughput,
# 2,470 -> 2,749 calls/s, p50 25.5 -> 22.3 ms). A lone request never waits.
LINGER_SECONDS = 0.001
_DEADLOCK_SQLSTATE = "40P01"


@dataclass(frozen=True, slots=True)
class Usage:
    """One user's renders today (UTC) and renders queued or running now."""

    daily_used: int
    concurrent_active: int


def start_of_day(now: datetime) -> datetime:
    """UTC midnight of `now`'s day."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def next_reset(now: datetime) -> datetime:
    """The next UTC midnight, when the daily count resets."""
    return start_of_day(now) + timedelta(days=1)


async def usage(connection: AsyncConnection, user_id: str, now: datetime) -> Usage:
    """Count today's and the active renders of a user (two index-only subqueries)."""
    row = (
        await connection.execute(sql.USAGE, {"user_id": user_id, "day_start": start_of_day(now)})
    ).one()
    return Usage(daily_used=int(row[0]), concurrent_active=int(row[1]))


@dataclass(frozen=True, slots=True)
class Admission:
    """The render (new, or the earlier one for a retried request_id)."""

    render: Render
    created: bool


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """One validated StartRender of a user, with its engine and cost already decided."""

    user_id: str
    spec: RenderSpec
    engine: str
    cost_estimate: dict[str, float]
    traceparent: str


class Intake:
    """Admits renders into the database and enqueues them, concurrent requests together.

    Concurrent StartRenders are grouped (render_common.batching): one transaction locks
    the batch's users, reads their usage and earlier request_ids in one statement each,
    decides every request in order (so later requests of a user see the earlier ones of
    the same batch), and inserts the admitted rows in one executemany; after the commit
    one pipeline XADDs the new renders' first attempts. Under load that is six round trips
    per batch instead of five per request; a quiet server still runs batches of one
    without waiting.
    """

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
        self._postgres = engine.dialect.name == "postgresql"
        self._daily_limit = daily_limit
        self._concurrent_limit = concurrent_limit
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

    async def _admit_batch(self, batch: Batch[IntakeRequest]) -> list[Admission | Exception]:
        """Admit a batch in one transaction, then enqueue the renders it created."""
        with batch.span(tracer, "render.intake.batch"):
            results = await self._admit_with_retries(batch.items)
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
                    admission, render=replace(admission.render, queue_job_id=entry_id)
                )
            return results

    async def _admit_with_retries(
        self, requests: list[IntakeRequest]
    ) -> list[Admission | Exception]:
        """The transaction, run again when PostgreSQL breaks a deadlock by aborting it."""
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                return await self._admit_in_transaction(requests)
            except DBAPIError as exc:
                if attempt == DEADLOCK_RETRIES or not _is_deadlock(exc):
                    raise
                log.warning("intake batch deadlocked; retrying", extra={"attempt": attempt})
        raise AssertionError("unreachable")

    async def _admit_in_transaction(
        self, requests: list[IntakeRequest]
    ) -> list[Admission | Exception]:
        """One transaction; it commits only if Redis answered a PING meanwhile (a render is
        admitted only when it can be queued), so a silent Redis writes nothing."""
        redis_check = asyncio.ensure_future(self._enqueuer.ensure_reachable())
        redis_check.add_done_callback(drop_outcome)  # not awaited when nothing is admitted
        try:
            return await self._transaction(requests, redis_check)
        finally:
            redis_check.cancel()  # a no-op once it is done

    async def _transaction(
        self, requests: list[IntakeRequest], redis_check: asyncio.Future[None]
    ) -> list[Admission | Exception]:
        now = datetime.now(UTC)
        users = sorted({request.user_id for request in requests})
        keyed = [(r.user_id, r.spec.request_id) for r in requests if r.spec.request_id]
        async with self._engine.begin() as connection:
            if self._postgres:
                # Sorted, so concurrent batches (here or in other processes) never deadlock.
                await connection.execute(sql.LOCK_USERS, {"users": users})
            counts = await self._usage_many(connection, users, now)
            existing = await self._existing_many(connection, keyed)
            rows: list[dict[str, Any]] = []
            results: list[Admission | Exception] = []
            for request in requests:
                try:
                    results.append(self._decide(request, counts, existing, rows, now))
                except RenderExportError as exc:
                    results.append(exc)
            if rows and self._postgres:
                await connection.execute(sql.INSERT_MANY, sql.as_columns(rows))
            elif rows:
                await connection.execute(sql.INSERT, rows)
            if rows:
                await redis_check  # raises Unavailable: the transaction rolls back
        return results

    def _decide(
        self,
        request: IntakeRequest,
        counts: dict[str, Usage],
        existing: dict[tuple[str, str], dict[str, Any]],
        rows: list[dict[str, Any]],
        now: datetime,
    ) -> Admission:
        """One request's outcome given what the transaction has seen and admitted so far."""
        spec = request.spec
        fingerprint = spec.fingerprint() if spec.request_id else None
        key = (request.user_id, spec.request_id)
        earlier = existing.get(key) if spec.request_id else None
        if earlier is not None:
            if earlier["request_hash"] != fingerprint:
                raise FailedPrecondition(
                    "request_id was already used for a different request",
                    reason="REQUEST_ID_REUSED",
                    subject=f"request_id:{spec.request_id}",
                    metadata={"render_id": earlier["id"]},
                )
            return Admission(render=Render.from_row(earlier), created=False)
        used = counts[request.user_id]
        self._check_limits(request.user_id, used)
        row = _new_row(request, fingerprint, now)
        rows.append(row)
        counts[request.user_id] = Usage(used.daily_used + 1, used.concurrent_active + 1)
        if spec.request_id:
            existing[key] = row
        return Admission(render=Render.from_row(row), created=True)

    async def _usage_many(
        self, connection: AsyncConnection, users: list[str], now: datetime
    ) -> dict[str, Usage]:
        """The usage of each user (one statement on PostgreSQL)."""
        if not self._postgres:
            return {user: await usage(connection, user, now) for user in users}
        result = await connection.execute(
            sql.USAGE_MANY, {"users": users, "day_start": start_of_day(now)}
        )
        return {user: Usage(int(daily), int(active)) for user, daily, active in result}

    async def _existing_many(
        self, connection: AsyncConnection, keyed: list[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Earlier renders with the batch's (user, request_id) pairs."""
        if not keyed:
            return {}
        if self._postgres:
            result = await connection.execute(
                sql.EXISTING_MANY,
                {"users": [u for u, _ in keyed], "request_ids": [r for _, r in keyed]},
            )
            rows = [dict(row) for row in result.mappings()]
        else:
            rows = []
            for user_id, request_id in keyed:
                found = await connection.execute(
                    sql.EXISTING, {"user_id": user_id, "request_id": request_id}
                )
                rows.extend(dict(row) for row in found.mappings())
        wanted = set(keyed)
        return {
            (row["user_id"], row["request_id"]): row
            for row in rows
            if (row["user_id"], row["request_id"]) in wanted
        }

    def _check_limits(self, user_id: str, counts: Usage) -> None:
        """Raise QuotaExceeded when the daily or the concurrent limit is reached."""
        if counts.daily_used >= self._daily_limit:
            raise QuotaExceeded(
                f"daily render limit of {self._daily_limit} reached; resets at UTC midnight",
                subject=f"user:{user_id}",
                reason="DAILY_RENDER_LIMIT",
                limit=self._daily_limit,
            )
        if counts.concurrent_active >= self._concurrent_limit:
            raise QuotaExceeded(
                f"{counts.concurrent_active} renders are already queued or running; "
                f"the limit is {self._concurrent_limit}",
                subject=f"user:{user_id}",
                reason="CONCURRENT_RENDER_LIMIT",
                limit=self._concurrent_limit,
            )


def _new_row(request: IntakeRequest, fingerprint: str | None, now: datetime) -> dict[str, Any]:
    """The QUEUED row of an admitted request."""
    spec = request.spec
    return {
        "id": str(uuid.uuid4()),
        "user_id": request.user_id,
        "project_id": spec.project_id,
        "request_id": spec.request_id or None,
        "request_hash": fingerprint,
        "status": State.QUEUED,
        "stage": Stage.QUEUED,
        "progress": 0.0,
        "format": spec.format,
        "quality": spec.quality,
        "engine": request.engine,
        "requested_engine": spec.requested_engine or "default",
        "spec": spec_json(spec),
        "scene_count": len(spec.scenes),
        "frames_total": spec.frames_total,
        "attempt": 0,
        "retry_count": 0,
        "cancel_requested": False,
        "cost_estimate": request.cost_estimate,
        "cost_estimate_usd": request.cost_estimate["total_usd"],
        "created_at": now,
        "updated_at": now,
        "client_metadata": spec.metadata or None,
        "webhook_url": spec.webhook_url or None,
        "webhook_state": WEBHOOK_PENDING if spec.webhook_url else None,
        "poster_frame": resolve_poster_frame(spec.poster_frame, spec.frames_total, spec.output.fps),
        **spec.output.columns(),
    }


def _is_deadlock(exc: DBAPIError) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock."""
    return getattr(exc.orig, "sqlstate", None) == _DEADLOCK_SQLSTATE or "deadlock" in str(exc)
