"""A user's usage and limits: renders admitted today (UTC) and renders queued or running.

The admit transition (`admit`) counts and checks inside its transaction; GetQuota reads
the same counts with `usage_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from render_common.errors import QuotaExceeded
from render_common.renders import admit_sql as sql


@dataclass(frozen=True, slots=True)
class Usage:
    """One user's renders today (UTC) and renders queued or running now."""

    daily_used: int
    concurrent_active: int

    def plus_one(self) -> Usage:
        """The usage once one more render is admitted."""
        return Usage(self.daily_used + 1, self.concurrent_active + 1)


@dataclass(frozen=True, slots=True)
class Limits:
    """DAILY (USER_DAILY_EXPORT_LIMIT) and CONCURRENT_RENDER_LIMIT."""

    daily: int
    concurrent: int

    def check(self, user_id: str, used: Usage) -> None:
        """Raise QuotaExceeded when the daily or the concurrent limit is reached."""
        if used.daily_used >= self.daily:
            raise QuotaExceeded(
                f"daily render limit of {self.daily} reached; resets at UTC midnight",
                subject=f"user:{user_id}",
                reason="DAILY_RENDER_LIMIT",
                limit=self.daily,
            )
        if used.concurrent_active >= self.concurrent:
            raise QuotaExceeded(
                f"{used.concurrent_active} renders are already queued or running; "
                f"the limit is {self.concurrent}",
                subject=f"user:{user_id}",
                reason="CONCURRENT_RENDER_LIMIT",
                limit=self.concurrent,
            )


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


async def usage_of(engine: AsyncEngine, user_id: str, now: datetime) -> Usage:
    """`usage` in a connection of its own (GetQuota)."""
    async with engine.connect() as connection:
        return await usage(connection, user_id, now)


async def usage_many(
    connection: AsyncConnection, users: list[str], now: datetime
) -> dict[str, Usage]:
    """The usage of each user (one statement on PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        return {user: await usage(connection, user, now) for user in users}
    result = await connection.execute(
        sql.USAGE_MANY, {"users": users, "day_start": start_of_day(now)}
    )
    return {user: Usage(int(daily), int(active)) for user, daily, active in result}
