"""The job queues (render:jobs:ssr, render:jobs:lambda): adding attempts of renders to
their engine's queue, with their trace context, and creating the consumer groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from opentelemetry import propagate
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from render_common import streams


class QueuedAttempt(NamedTuple):
    """One attempt of a render, for its engine's queue."""

    render_id: str
    attempt: int
    traceparent: str
    engine: str  # "ssr" | "lambda": which queue carries it


def current_traceparent() -> str:
    """The W3C traceparent of the current span ('' when not tracing)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def entry_fields(render_id: str, attempt: int, traceparent: str) -> dict[str, str]:
    """The fields of a queue entry."""
    return {"render_id": render_id, "attempt": str(attempt), "traceparent": traceparent}


async def enqueue_attempt(
    redis: Redis, render_id: str, attempt: int, engine: str, *, traceparent: str | None = None
) -> str:
    """XADD one attempt of a render to its engine's queue; returns the entry id."""
    traceparent = current_traceparent() if traceparent is None else traceparent
    [reply] = await enqueue_attempts(
        redis, [QueuedAttempt(render_id, attempt, traceparent, engine)]
    )
    if isinstance(reply, Exception):
        raise reply
    return reply


async def enqueue_attempts(
    redis: Redis, attempts: Sequence[QueuedAttempt]
) -> list[str | Exception]:
    """XADD attempts, each to its engine's queue, in one pipeline round trip.

    Returns each entry id, or the error Redis answered for that command; a connection
    failure raises for all of them.
    """
    pipeline = redis.pipeline(transaction=False)
    for render_id, attempt, traceparent, engine in attempts:
        pipeline.xadd(
            streams.job_queue(engine).stream,
            entry_fields(render_id, attempt, traceparent),  # type: ignore[arg-type]
            maxlen=streams.JOBS_MAXLEN,
            approximate=True,
        )
    replies = await pipeline.execute(raise_on_error=False)
    return [reply if isinstance(reply, Exception) else str(reply) for reply in replies]


async def ensure_group(redis: Redis, queue: streams.JobQueue | None = None) -> bool:
    """Create the consumer group of `queue` (every queue when None) and its stream if
    missing; True if one was created.

    Idempotent (BUSYGROUP is success), so anyone may call it: workers at start-up and
    whenever Redis answers NOGROUP (it restarted without its data), the sweeper on every
    pass. A group starts at id 0, so entries added before it existed are delivered.
    """
    created = False
    for each in streams.JOB_QUEUES if queue is None else (queue,):
        try:
            await redis.xgroup_create(each.stream, each.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            continue
        created = True
    return created


def is_missing_group(exc: BaseException) -> bool:
    """Whether Redis answered NOGROUP (the stream or its consumer group is gone)."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")
