"""Caller webhook bookkeeping: claiming due deliveries, recording attempts, signing secrets.

Delivery columns of `video_renders` (`webhook_*`) are written here only, and never the
render's state: a render's transitions do not know webhooks exist. A delivery is due once
its render is terminal and `webhook_next_at` (null: at once) has passed. A claim takes a
lease (`webhook_lease_until`, `webhook_claim`) so that several processes never send the
same delivery at once; a process killed mid-send leaves a lease that simply runs out.
On PostgreSQL the claim locks with `FOR UPDATE SKIP LOCKED`; on SQLite the statement runs
in a BEGIN IMMEDIATE transaction (render_common.db.engine), which serialises claims.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from render_common.db.schema import (
    WEBHOOK_DELIVERED,
    WEBHOOK_FAILED,
    WEBHOOK_PENDING,
    video_renders,
    webhook_secrets,
)
from render_common.renders.record import Render, as_utc
from render_common.renders.states import TERMINAL
from render_common.webhook_signing import new_secret

_R = video_renders.c


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this process holds the lease of: the render's row and the claim token."""

    row: Render
    token: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt went. `next_at` None with `delivered` False means: give up."""

    delivered: bool
    status_code: int | None = None
    error: str = ""
    next_at: datetime | None = None


def _due(now: datetime) -> Any:
    return (
        _R.webhook_state == WEBHOOK_PENDING,
        _R.status.in_(TERMINAL),
        or_(_R.webhook_next_at.is_(None), _R.webhook_next_at <= now),
        or_(_R.webhook_lease_until.is_(None), _R.webhook_lease_until < now),
    )


async def claim_due(
    engine: AsyncEngine, *, limit: int, now: datetime, lease_seconds: float
) -> list[Claim]:
    """Lease up to `limit` due deliveries (counting the attempt); their rows and token."""
    if limit < 1:
        return []
    token = str(uuid.uuid4())
    due = select(_R.id).where(*_due(now)).order_by(_R.webhook_next_at).limit(limit)
    if engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (
        update(video_renders)
        .where(_R.id.in_(due.scalar_subquery()), *_due(now))
        .values(
            webhook_claim=token,
            webhook_lease_until=now + timedelta(seconds=lease_seconds),
            webhook_attempts=_R.webhook_attempts + 1,
            webhook_last_attempt_at=now,
        )
        .returning(*video_renders.c)
    )
    async with engine.begin() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Claim(Render.from_row(row), token) for row in rows]


async def record_outcome(
    engine: AsyncEngine, claim: Claim, outcome: Outcome, now: datetime
) -> bool:
    """Record an attempt's outcome and release the lease; False if the lease was lost."""
    values: dict[str, Any] = {
        "webhook_claim": None,
        "webhook_lease_until": None,
        "webhook_last_status": outcome.status_code,
        "webhook_last_error": outcome.error or None,
        "webhook_next_at": outcome.next_at,
    }
    if outcome.delivered:
        values.update(webhook_state=WEBHOOK_DELIVERED, webhook_delivered_at=now)
    elif outcome.next_at is None:
        values["webhook_state"] = WEBHOOK_FAILED
    async with engine.begin() as connection:
        result = await connection.execute(
            update(video_renders)
            .where(_R.id == claim.row.id, _R.webhook_claim == claim.token)
            .values(**values)
        )
    return bool(result.rowcount)


@dataclass(frozen=True, slots=True)
class SigningSecret:
    """A user's webhook secret, and the previous one while its grace period lasts."""

    secret: str
    created_at: datetime
    previous_secret: str | None = None
    previous_expires_at: datetime | None = None

    def in_force(self, now: datetime) -> list[str]:
        """The secrets to sign with now: the current one, then the previous one in grace."""
        expires = as_utc(self.previous_expires_at)
        if self.previous_secret and expires is not None and expires > now:
            return [self.secret, self.previous_secret]
        return [self.secret]

    @classmethod
    def from_row(cls, row: Any) -> SigningSecret:
        """From a `webhook_secrets` row."""
        return cls(
            secret=row["secret"],
            created_at=as_utc(row["created_at"]) or row["created_at"],
            previous_secret=row["previous_secret"],
            previous_expires_at=as_utc(row["previous_expires_at"]),
        )


async def _ensure_secret(connection: AsyncConnection, user_id: str, now: datetime) -> None:
    dialect_insert: Any = postgresql.insert if connection.dialect.name == "postgresql" else None
    if dialect_insert is None:
        dialect_insert = sqlite.insert
    await connection.execute(
        dialect_insert(webhook_secrets)
        .values(user_id=user_id, secret=new_secret(), created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )


async def signing_secret(engine: AsyncEngine, user_id: str, now: datetime) -> SigningSecret:
    """The user's secret, created on first use (concurrent first uses agree on one)."""
    query = select(webhook_secrets).where(webhook_secrets.c.user_id == user_id)
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().first()
    if row is not None:
        return SigningSecret.from_row(row)
    async with engine.begin() as connection:
        await _ensure_secret(connection, user_id, now)
        row = (await connection.execute(query)).mappings().one()
    return SigningSecret.from_row(row)


async def rotate_secret(
    engine: AsyncEngine, user_id: str, grace: timedelta, now: datetime
) -> SigningSecret:
    """Replace the user's secret; the old one keeps signing for `grace`."""
    async with engine.begin() as connection:
        await _ensure_secret(connection, user_id, now)
        row = (
            (
                await connection.execute(
                    update(webhook_secrets)
                    .where(webhook_secrets.c.user_id == user_id)
                    .values(
                        previous_secret=webhook_secrets.c.secret,
                        previous_expires_at=now + grace,
                        secret=new_secret(),
                        created_at=now,
                    )
                    .returning(*webhook_secrets.c)
                )
            )
            .mappings()
            .one()
        )
    return SigningSecret.from_row(row)
