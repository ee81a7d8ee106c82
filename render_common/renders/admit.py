"""The admit transition: new renders enter QUEUED, idempotent and within quota, in batches.

On PostgreSQL transaction-scoped advisory locks per user serialise one user's admissions
(other users proceed in parallel); on SQLite every write transaction is BEGIN IMMEDIATE.
Either way the quota counts and the insert see each other, so 100 concurrent requests
against a limit of 10 admit exactly 10, and 50 retries of one request_id create one render.

A batch commits only once `queue_ready` (awaited concurrently with the statements) has
answered: a render is admitted only when it can be queued. Enqueuing the admitted renders
(their first attempt in render:jobs) is the caller's next step, after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from render_common.batching import drop_outcome
from render_common.errors import FailedPrecondition, RenderExportError
from render_common.renders import admit_sql as sql
from render_common.renders.quota import Limits, Usage, usage_many
from render_common.renders.record import Render
from render_common.renders.states import Stage, State

log = logging.getLogger(__name__)

DEADLOCK_RETRIES = 3
_DEADLOCK_SQLSTATE = "40P01"


@dataclass(frozen=True, slots=True)
class NewRender:
    """A render to admit: its owner, idempotency key and the request's fingerprint, and the
    columns that describe it (built by render_api from the validated request; the state
    columns, id and times are the transition's)."""

    user_id: str
    request_id: str | None
    fingerprint: str | None
    columns: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Admission:
    """The render (new, or the earlier one for a retried request_id)."""

    render: Render
    created: bool


Outcome = Admission | RenderExportError
_Key = tuple[str, str]


async def admit(
    engine: AsyncEngine,
    requests: Sequence[NewRender],
    limits: Limits,
    *,
    queue_ready: Callable[[], Awaitable[None]],
) -> list[Outcome]:
    """Admit each request in order, in one transaction (again if PostgreSQL breaks a
    deadlock by aborting it): its Admission, or the error that refused it (quota,
    request_id reused). Raises what `queue_ready` raises, with nothing written."""
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        ready = asyncio.ensure_future(queue_ready())
        ready.add_done_callback(drop_outcome)  # not awaited when nothing is admitted
        try:
            return await _transaction(engine, requests, limits, ready)
        except DBAPIError as exc:
            if attempt == DEADLOCK_RETRIES or not _is_deadlock(exc):
                raise
            log.warning("admit batch deadlocked; retrying", extra={"attempt": attempt})
        finally:
            ready.cancel()  # a no-op once it is done
    raise AssertionError("unreachable")


async def _transaction(
    engine: AsyncEngine,
    requests: Sequence[NewRender],
    limits: Limits,
    queue_ready: asyncio.Future[None],
) -> list[Outcome]:
    now = datetime.now(UTC)
    users = sorted({request.user_id for request in requests})
    keyed = [(r.user_id, r.request_id) for r in requests if r.request_id]
    async with engine.begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            # Sorted, so concurrent batches (here or in other processes) never deadlock.
            await connection.execute(sql.LOCK_USERS, {"users": users})
        batch = _Batch(limits, await usage_many(connection, users, now), now)
        batch.existing = await _existing_many(connection, keyed)
        results = [batch.decide(request) for request in requests]
        if batch.rows:
            if postgres:
                columns = tuple(batch.rows[0])
                await connection.execute(
                    sql.insert_many(columns), sql.as_columns(columns, batch.rows)
                )
            else:
                await connection.execute(sql.INSERT, batch.rows)
            await queue_ready  # raises: the transaction rolls back
    return results


class _Batch:
    """What one transaction has seen and admitted so far: later requests of a user see the
    earlier ones of the same batch."""

    def __init__(self, limits: Limits, counts: dict[str, Usage], now: datetime) -> None:
        self.limits = limits
        self.counts = counts
        self.now = now
        self.existing: dict[_Key, Mapping[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []

    def decide(self, request: NewRender) -> Outcome:
        """One request's outcome: the earlier render, a new QUEUED one, or a refusal."""
        key = (request.user_id, request.request_id or "")
        earlier = self.existing.get(key) if request.request_id else None
        if earlier is not None:
            if earlier["request_hash"] != request.fingerprint:
                return FailedPrecondition(
                    "request_id was already used for a different request",
                    reason="REQUEST_ID_REUSED",
                    subject=f"request_id:{request.request_id}",
                    metadata={"render_id": earlier["id"]},
                )
            return Admission(render=Render.from_row(earlier), created=False)
        used = self.counts[request.user_id]
        try:
            self.limits.check(request.user_id, used)
        except RenderExportError as exc:
            return exc
        row = _queued_row(request, self.now)
        self.rows.append(row)
        self.counts[request.user_id] = used.plus_one()
        if request.request_id:
            self.existing[key] = row
        return Admission(render=Render.from_row(row), created=True)


def _queued_row(request: NewRender, now: datetime) -> dict[str, Any]:
    """The new row: the request's columns and the state of a render nobody has touched."""
    return {
        **request.columns,
        "id": str(uuid.uuid4()),
        "user_id": request.user_id,
        "request_id": request.request_id,
        "request_hash": request.fingerprint,
        "status": State.QUEUED,
        "stage": Stage.QUEUED,
        "progress": 0.0,
        "attempt": 0,
        "retry_count": 0,
        "cancel_requested": False,
        "created_at": now,
        "updated_at": now,
    }


async def _existing_many(
    connection: AsyncConnection, keyed: list[tuple[str, str]]
) -> dict[_Key, Mapping[str, Any]]:
    """Earlier renders with the batch's (user, request_id) pairs."""
    if not keyed:
        return {}
    if connection.dialect.name == "postgresql":
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


def _is_deadlock(exc: DBAPIError) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock."""
    return getattr(exc.orig, "sqlstate", None) == _DEADLOCK_SQLSTATE or "deadlock" in str(exc)
