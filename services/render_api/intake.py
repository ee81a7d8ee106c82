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

from sqlalchemy import (
    BigInteger,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from render_common.db.schema import ACTIVE_STATES, QUEUED, video_renders
from render_common.errors import FailedPrecondition, QuotaExceeded
from services.render_api.validation import RenderSpec

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 7))")

# Statements of the hot path, built once (building Core statements per call costs more
# CPU than executing them; compiled forms are cached by the engine).
_DAILY_USED = (
    select(func.count())
    .select_from(video_renders)
    .where(
        video_renders.c.user_id == bindparam("user_id"),
        video_renders.c.created_at >= bindparam("day_start"),
    )
    .scalar_subquery()
)
_CONCURRENT_ACTIVE = (
    select(func.count())
    .select_from(video_renders)
    .where(
        video_renders.c.user_id == bindparam("user_id"),
        # Constants inline: no expanding parameter to process on every execution.
        video_renders.c.status.in_([literal_column(f"'{state}'") for state in ACTIVE_STATES]),
    )
    .scalar_subquery()
)
_USAGE = select(_DAILY_USED, _CONCURRENT_ACTIVE)
_EXISTING = select(video_renders).where(
    video_renders.c.user_id == bindparam("user_id"),
    video_renders.c.request_id == bindparam("request_id"),
)
_INSERT = insert(video_renders)
_INSERTED_COLUMNS = (
    "id",
    "user_id",
    "project_id",
    "request_id",
    "request_hash",
    "status",
    "stage",
    "progress",
    "format",
    "quality",
    "engine",
    "requested_engine",
    "spec",
    "scene_count",
    "frames_total",
    "attempt",
    "retry_count",
    "cancel_requested",
    "cost_estimate",
    "cost_estimate_usd",
    "created_at",
    "updated_at",
)


def _count_and_insert() -> Any:
    """PostgreSQL: the quota counts and the insert if both are under their limits, one statement.

    Runs after the advisory lock, so its snapshot sees every earlier intake of the user,
    exactly as a count then an insert would; it returns the counts (for the error) and
    whether the row was inserted.
    """
    counts = select(
        _DAILY_USED.label("daily_used"), _CONCURRENT_ACTIVE.label("concurrent_active")
    ).cte("counts")
    values = [bindparam(name, type_=video_renders.c[name].type) for name in _INSERTED_COLUMNS]
    inserted = (
        insert(video_renders)
        .from_select(
            list(_INSERTED_COLUMNS),
            select(*values).where(
                counts.c.daily_used < bindparam("daily_limit", type_=BigInteger),
                counts.c.concurrent_active < bindparam("concurrent_limit", type_=BigInteger),
            ),
        )
        .returning(video_renders.c.id)
        .cte("inserted")
    )
    return select(counts.c.daily_used, counts.c.concurrent_active, exists(select(inserted.c.id)))


_COUNT_AND_INSERT = _count_and_insert()


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
        await connection.execute(_USAGE, {"user_id": user_id, "day_start": start_of_day(now)})
    ).one()
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
                            _EXISTING, {"user_id": user_id, "request_id": spec.request_id}
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
            if self._postgres:
                # One round trip for the counts and the conditional insert.
                daily, active, inserted = (
                    await connection.execute(
                        _COUNT_AND_INSERT,
                        {
                            **row,
                            "day_start": start_of_day(now),
                            "daily_limit": self._daily_limit,
                            "concurrent_limit": self._concurrent_limit,
                        },
                    )
                ).one()
                if not inserted:
                    self._check_limits(user_id, Usage(int(daily), int(active)))
                    raise AssertionError("the insert was refused under the limits")
            else:
                self._check_limits(user_id, await usage(connection, user_id, now))
                await connection.execute(_INSERT, row)
        return Admission(row=_complete(row), created=True)

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


_ALL_COLUMNS = tuple(column.name for column in video_renders.columns)


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """A freshly inserted row with every column present (None for unset ones)."""
    return {name: row.get(name) for name in _ALL_COLUMNS}
