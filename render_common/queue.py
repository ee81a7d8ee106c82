"""The `render:jobs` stream: adding one attempt of a render, with its trace context."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import propagate
from redis.asyncio import Redis

from render_common import streams


def current_traceparent() -> str:
    """The W3C traceparent of the current span ('' when not tracing)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


async def enqueue_attempt(
    redis: Redis, render_id: str, attempt: int, *, traceparent: str | None = None
) -> str:
    """XADD one attempt of a render to render:jobs; returns the entry id."""
    traceparent = current_traceparent() if traceparent is None else traceparent
    [reply] = await enqueue_attempts(redis, [(render_id, attempt, traceparent)])
    if isinstance(reply, Exception):
        raise reply
    return reply


async def enqueue_attempts(
    redis: Redis, attempts: Sequence[tuple[str, int, str]]
) -> list[str | Exception]:
    """XADD (render_id, attempt, traceparent) attempts in one pipeline round trip.

    Returns each entry id, or the error Redis answered for that command; a connection
    failure raises for all of them.
    """
    pipeline = redis.pipeline(transaction=False)
    for render_id, attempt, traceparent in attempts:
        pipeline.xadd(
            streams.JOBS_STREAM,
            {"render_id": render_id, "attempt": str(attempt), "traceparent": traceparent},
            maxlen=streams.JOBS_MAXLEN,
            approximate=True,
        )
    replies = await pipeline.execute(raise_on_error=False)
    return [reply if isinstance(reply, Exception) else str(reply) for reply in replies]


async def ensure_group(redis: Redis) -> None:
    """Create the consumer group (and stream) if missing."""
    try:
        await redis.xgroup_create(streams.JOBS_STREAM, streams.JOBS_GROUP, id="0", mkstream=True)
    except Exception as exc:  # redis raises ResponseError BUSYGROUP when it exists
        if "BUSYGROUP" not in str(exc):
            raise
