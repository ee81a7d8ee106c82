"""The `render:jobs` stream: adding one attempt of a render, with its trace context."""

from __future__ import annotations

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
    fields = {
        "render_id": render_id,
        "attempt": str(attempt),
        "traceparent": current_traceparent() if traceparent is None else traceparent,
    }
    entry_id = await redis.xadd(
        streams.JOBS_STREAM,
        fields,  # type: ignore[arg-type]
        maxlen=streams.JOBS_MAXLEN,
        approximate=True,
    )
    return str(entry_id)


async def ensure_group(redis: Redis) -> None:
    """Create the consumer group (and stream) if missing."""
    try:
        await redis.xgroup_create(streams.JOBS_STREAM, streams.JOBS_GROUP, id="0", mkstream=True)
    except Exception as exc:  # redis raises ResponseError BUSYGROUP when it exists
        if "BUSYGROUP" not in str(exc):
            raise
