"""The StartRender transaction: idempotency, quotas and the insert, race-free.

On PostgreSQL a transaction-scoped advisory lock per user serialises one user's intakes
(other users proceed in parallel); on SQLite every write transaction is BEGIN IMMEDIATE.
Either way the quota counts and the insert see each other, so 100 concurrent requests
against a limit of 10 admit exactly 10, and 50 retries of one request_id create one render.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from render_common.db.schema import ACTIVE_STATES, QUEUED, video_renders
from render_common.errors import FailedPrecondition, QuotaExceeded
from services.render_api.validation import RenderSpec

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 7))")


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
    daily = (
        select(func.count())
        .select_from(video_renders)
        .where(video_renders.c.user_id == user_id, video_renders.c.created_at >= start_of_day(now))
        .scalar_subquery()
    )
    active = (
        select(func.count())
        .select_from(video_renders)
        .where(video_renders.c.user_id == user_id, video_renders.c.status.in_(ACTIVE_STATES))
        .scalar_subquery()
    )
    row = (await connection.execute(select(daily, active))).one()
    return Usage(daily_used=int(row[0]), concurrent_active=int(row[1]))


@dataclass(frozen=True, slots=True)
class Admission:
    """The render row (new, or the earlier one for a retried request_id)."""

    row: dict[str, Any]
    created: bool


class Intake:
    """Admits renders into the database."""

    def __init__(self, engine: AsyncEngine, *, daily_limit: int, concurrent_limit: int) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._daily_limit = daily_limit
        self._concurrent_limit = concurrent_limit

    async def admit(
        self,
        user_id: str,
        spec: RenderSpec,
        *,
        engine: str,
        cost_estimate: dict[str, float],
    ) -> Admission:
        """Insert a QUEUED render unless it is a retry or a limit is reached."""
        now = datetime.now(UTC)
        fingerprint = spec.fingerprint() if spec.request_id else None
        async with self._engine.begin() as connection:
            if self._postgres:
                await connection.execute(_ADVISORY_LOCK, {"key": user_id})
            if spec.request_id:
                existing = (
                    (
                        await connection.execute(
                            select(video_renders).where(
                                video_renders.c.user_id == user_id,
                                video_renders.c.request_id == spec.request_id,
                            )
                        )
                    )
                    .mappings()
                    .first()
                )
                if existing is not None:
                    if existing["request_hash"] != fingerprint:
                        raise FailedPrecondition(
                            "request_id was already used for a different request",
                            reason="REQUEST_ID_REUSED",
                            subject=f"request_id:{spec.request_id}",
                            metadata={"render_id": existing["id"]},
                        )
                    return Admission(row=dict(existing), created=False)
            counts = await usage(connection, user_id, now)
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
            row = {
                "id": str(uuid.uuid4()),
                "user_id": user_id,
                "project_id": spec.project_id,
                "request_id": spec.request_id or None,
                "request_hash": fingerprint,
                "status": QUEUED,
                "stage": "queued",
                "progress": 0.0,
                "format": spec.format,
                "quality": spec.quality,
                "engine": engine,
                "requested_engine": spec.requested_engine or "default",
                "spec": {"scenes": spec.scenes},
                "scene_count": len(spec.scenes),
                "frames_total": spec.frames_total,
                "attempt": 0,
                "retry_count": 0,
                "cancel_requested": False,
                "cost_estimate": cost_estimate,
                "cost_estimate_usd": cost_estimate["total_usd"],
                "created_at": now,
                "updated_at": now,
            }
            await connection.execute(insert(video_renders), row)
        return Admission(row=_complete(row), created=True)


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """A freshly inserted row with every column present (None for unset ones)."""
    return {column.name: row.get(column.name) for column in video_renders.columns}
