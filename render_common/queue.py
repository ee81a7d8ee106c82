"""The `render:jobs` stream: adding one attempt of a render, with its trace context."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import propagate
from redis.asyncio import Redis
from redis.exceptions import ResponseError

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


async def ensure_group(redis: Redis) -> bool:
    """Create the consumer group (and the stream) if missing; True if it was created.

    Idempotent (BUSYGROUP is success), so anyone may call it: workers at start-up and
    whenever Redis answers NOGROUP (it restarted without its data), the sweeper on every
    pass. The group starts at id 0, so entries added before it existed are delivered.
    """
    try:
        await redis.xgroup_create(streams.JOBS_STREAM, streams.JOBS_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def is_missing_group(exc: BaseException) -> bool:
    """Whether Redis answered NOGROUP (the stream or its consumer group is gone)."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")
