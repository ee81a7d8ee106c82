"""Reads and small updates of `video_renders` shared by the services."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, Text, and_, bindparam, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.db.schema import video_renders
from render_common.renders.record import Render
from render_common.renders.states import State

c = video_renders.c


async def get_for_user(engine: AsyncEngine, render_id: str, user_id: str) -> Render | None:
    """The render if it exists and belongs to `user_id`; None otherwise (no leak either way)."""
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    select(video_renders).where(
                        video_renders.c.id == render_id, video_renders.c.user_id == user_id
                    )
                )
            )
            .mappings()
            .first()
        )
    return Render.from_row(row) if row is not None else None


async def get(engine: AsyncEngine, render_id: str) -> Render | None:
    """The render, whoever owns it (workers)."""
    async with engine.connect() as connection:
        row = (
            (await connection.execute(select(video_renders).where(video_renders.c.id == render_id)))
            .mappings()
            .first()
        )
    return Render.from_row(row) if row is not None else None


async def list_for_user(
    engine: AsyncEngine,
    user_id: str,
    *,
    limit: int,
    project_id: str = "",
    states: Collection[str] = (),
    after: tuple[datetime, str] | None = None,
) -> list[Render]:
    """A page of a user's renders, newest first (keyset paging on created_at, id)."""
    query = select(video_renders).where(video_renders.c.user_id == user_id)
    if project_id:
        query = query.where(video_renders.c.project_id == project_id)
    if states:
        query = query.where(video_renders.c.status.in_(list(states)))
    if after is not None:
        created, render_id = after
        query = query.where(
            or_(
                video_renders.c.created_at < created,
                and_(video_renders.c.created_at == created, video_renders.c.id < render_id),
            )
        )
    query = query.order_by(video_renders.c.created_at.desc(), video_renders.c.id.desc()).limit(
        limit
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [Render.from_row(r) for r in rows]


async def list_changed_for_user(
    engine: AsyncEngine,
    user_id: str,
    *,
    since: datetime,
    limit: int,
    project_id: str = "",
    active: Collection[str] = (),
) -> list[Render]:
    """A user's renders updated at or after `since`, or in one of the `active` states.

    Oldest update first (at most `limit`, the most recently updated): what a dashboard that
    missed events since then needs to catch up.
    """
    changed = video_renders.c.updated_at >= since
    query = select(video_renders).where(
        video_renders.c.user_id == user_id,
        or_(changed, video_renders.c.status.in_(list(active))) if active else changed,
    )
    if project_id:
        query = query.where(video_renders.c.project_id == project_id)
    query = query.order_by(video_renders.c.updated_at.desc(), video_renders.c.id.desc()).limit(
        limit
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [Render.from_row(r) for r in reversed(rows)]


async def mark_enqueued(engine: AsyncEngine, render_id: str, entry_id: str) -> bool:
    """Record the stream entry of a queued render (only if none is recorded yet)."""
    return await mark_enqueued_many(engine, [(render_id, entry_id)]) == 1


async def mark_enqueued_many(engine: AsyncEngine, entries: Sequence[tuple[str, str]]) -> int:
    """Record the stream entries of queued renders, (render_id, entry_id) pairs.

    Only renders without an entry yet are updated; returns how many were.
    Queue bookkeeping, not a change of the resource: updated_at stays as it was. On
    PostgreSQL one statement over arrays, in autocommit mode: atomic all the same,
    without the BEGIN and COMMIT round trips (StartRender's hot path).
    """
    if not entries:
        return 0
    if engine.dialect.name == "postgresql":
        parameters = {"ids": [r for r, _ in entries], "entry_ids": [e for _, e in entries]}
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            result = await connection.execute(_MARK_ENQUEUED_MANY, parameters)
            return int(result.rowcount)
    updated = 0
    async with engine.begin() as connection:
        for render_id, entry_id in entries:
            result = await connection.execute(
                _MARK_ENQUEUED, {"render_id": render_id, "entry_id": entry_id}
            )
            updated += int(result.rowcount)
    return updated


_MARK_ENQUEUED = (
    update(video_renders)
    .where(
        video_renders.c.id == bindparam("render_id"),
        video_renders.c.queue_job_id.is_(None),
    )
    .values(queue_job_id=bindparam("entry_id"))
)
# By primary key only (`id = ANY`, no status condition): with one, a generic plan built
# while the table was small walked the status index over every queued render (1.9 ms a
# batch at 20k queued, growing). Recording the entry of a render that has meanwhile
# started or ended is harmless.
_MARK_ENQUEUED_MANY = text(
    "UPDATE video_renders SET queue_job_id = (:entry_ids)[array_position(:ids, id)]"
    " WHERE id = ANY(:ids) AND queue_job_id IS NULL"
).bindparams(bindparam("ids", type_=ARRAY(Text)), bindparam("entry_ids", type_=ARRAY(Text)))


# The sweeper's reconciliation of rows with Redis (services/render_api/sweeper.py): which
# renders that are not terminal may lack a queue entry, and the transitions that restore
# one. Every update is conditional on the row being as it was read.


class QueuedEntry(NamedTuple):
    """A QUEUED render naming an entry, as the sweeper checks it."""

    id: str
    entry: str  # a stream id, or `retry:<attempt>`
    attempt: int  # the last attempt started; the entry carries attempt + 1
    engine: str  # whose queue holds the entry
    updated_at: datetime  # the entry was written at or after this


async def queued_with_entry(
    engine: AsyncEngine,
    *,
    older_than: datetime,
    after_id: str,
    limit: int,
    since: datetime | None = None,
) -> list[QueuedEntry]:
    """QUEUED renders naming an entry (`<stream id>` or `retry:<attempt>`), untouched since
    `older_than` (and, given `since`, last touched at or after it), by id after `after_id`
    (keyset pages)."""
    query = (
        select(c.id, c.queue_job_id, c.attempt, c.engine, c.updated_at)
        .where(
            c.status == State.QUEUED,
            c.queue_job_id.is_not(None),
            c.updated_at < older_than,
            c.id > after_id,
        )
        .order_by(c.id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(c.updated_at >= since)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [QueuedEntry(str(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4]) for r in rows]


async def queued_without_entry(
    engine: AsyncEngine, *, older_than: datetime, limit: int
) -> list[tuple[str, int]]:
    """QUEUED renders with no entry recorded, untouched since `older_than`: (id, attempt)."""
    query = (
        select(video_renders.c.id, video_renders.c.attempt)
        .where(
            video_renders.c.status == State.QUEUED,
            video_renders.c.queue_job_id.is_(None),
            video_renders.c.updated_at < older_than,
        )
        .order_by(video_renders.c.updated_at)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [(str(r[0]), int(r[1])) for r in rows]


class SilentRender(NamedTuple):
    """A RUNNING render whose worker has not renewed its lease."""

    id: str
    entry: str | None
    worker_id: str | None
    attempt: int
    engine: str  # whose queue's group may hold the entry pending


async def running_silent(
    engine: AsyncEngine, *, older_than: datetime, limit: int
) -> list[SilentRender]:
    """RUNNING renders whose worker has not renewed its lease since `older_than`."""
    query = (
        select(c.id, c.queue_job_id, c.worker_id, c.attempt, c.engine)
        .where(c.status == State.RUNNING, c.updated_at < older_than)
        .order_by(c.updated_at)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [SilentRender(str(r[0]), r[1], r[2], int(r[3]), str(r[4])) for r in rows]


async def forget_entry(engine: AsyncEngine, render_id: str, entry: str) -> bool:
    """A QUEUED render's recorded entry is gone from Redis: record none (the caller
    enqueues a new one). Bookkeeping only: updated_at stays."""
    return await _changed(
        engine,
        update(video_renders)
        .where(
            video_renders.c.id == render_id,
            video_renders.c.status == State.QUEUED,
            video_renders.c.queue_job_id == entry,
        )
        .values(queue_job_id=None),
    )


async def _changed(engine: AsyncEngine, statement: Any) -> bool:
    """Run a conditional update in its own transaction; whether it changed a row."""
    async with engine.begin() as connection:
        result = await connection.execute(statement)
    return bool(result.rowcount)
