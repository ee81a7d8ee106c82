"""The Redis side of a render's transitions: events, the retry entry, the dead letter, the
cancel flag, a handed-back entry. Every call tolerates a Redis outage.

The database row is written first and is the truth; what is written here follows it.
Progress events are best effort (a missed one is superseded by the next). What ends a
step (a terminal event, a retry entry, a dead letter, a new entry) is retried for up to
REDIS_OUTAGE_SECONDS; if Redis is still away, the method says so and the caller leaves
the row such that the sweeper restores the missing entry from the database.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from redis.asyncio import Redis

from render_common import streams
from render_common.config import Settings
from render_common.events import ProgressEvent, publish_event
from render_common.outage import REDIS_DOWN, ride_out
from render_common.queue import enqueue_attempt
from render_common.renders.record import Render
from render_common.renders.states import Stage, State

log = logging.getLogger(__name__)


class Bookkeeping:
    """Writes a render's Redis bookkeeping, riding out outages within a bound."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._settings = settings
        self._redis = redis
        self.redis = redis
        self._within = settings.redis_outage_seconds

    async def event(self, render_id: str, user_id: str, *, durable: bool, **fields: Any) -> bool:
        """Append a progress event (and to its owner's stream); False if Redis was away.

        `durable`: retried within the outage bound (terminal and state-changing events);
        otherwise tried once (progress, superseded by the next one).
        """
        event = ProgressEvent(render_id=render_id, **fields)

        async def publish() -> str:
            return await publish_event(
                self._redis,
                event,
                maxlen=self._settings.events_maxlen,
                ttl_seconds=self._settings.events_ttl_seconds,
                user_id=user_id,
            )

        what = f"event {event.state}/{event.stage} of {render_id}"
        if durable:
            return await self._attempt(publish, what, within=self._within)
        try:
            await publish()
        except REDIS_DOWN:
            log.debug("redis away; progress event skipped", extra={"render_id": render_id})
            return False
        return True

    async def announce(
        self, render: Render | None, state: State, stage: Stage, *, durable: bool, **fields: Any
    ) -> Render | None:
        """After a conditional update: when it applied (`render` is the row it left), the
        event of the state it moved to, for the render's owner, with the row's frames_total
        unless `fields` says otherwise. Returns `render`, for the transition to return."""
        if render is not None:
            fields.setdefault("frames_total", render.frames_total)
            await self.event(
                render.id, render.user_id, durable=durable, state=state, stage=stage, **fields
            )
        return render

    async def retry_entry(
        self, render_id: str, attempt: int, traceparent: str, delay: float, engine: str
    ) -> bool:
        """Schedule `attempt` in render:retry after `delay` seconds, for `engine`'s queue;
        False if not written."""
        member = json.dumps(
            {
                "render_id": render_id,
                "attempt": attempt,
                "traceparent": traceparent,
                "engine": engine,
            }
        )

        async def add() -> int:
            await self._redis.zadd(streams.RETRY_ZSET, {member: time.time() + delay})
            return 1

        return await self._attempt(add, f"retry entry of {render_id}", within=self._within)

    async def dead_letter(
        self, render_id: str, attempt: int, reason: str, message: str, *, retryable: bool
    ) -> bool:
        """Record a render that failed for good in render:dead, with its reason."""
        fields: dict[Any, Any] = {
            "render_id": render_id,
            "attempt": str(attempt),
            "reason": reason,
            "message": message[:2000],
            "retryable": "1" if retryable else "0",
        }

        async def add() -> str:
            return str(
                await self._redis.xadd(
                    streams.DEAD_STREAM, fields, maxlen=streams.DEAD_MAXLEN, approximate=True
                )
            )

        return await self._attempt(add, f"dead letter of {render_id}", within=self._within)

    async def requeue(
        self, render_id: str, attempt: int, traceparent: str, engine: str, *, within: float
    ) -> str | None:
        """A new entry for `attempt` in `engine`'s queue (a hand-back); None if Redis was
        away."""
        try:
            return await ride_out(
                lambda: enqueue_attempt(
                    self._redis, render_id, attempt, engine, traceparent=traceparent
                ),
                within=within,
                what=f"entry of {render_id}",
            )
        except REDIS_DOWN:
            log.warning("redis away; the sweeper will enqueue it", extra={"render_id": render_id})
            return None

    async def signal_cancel(self, render_id: str) -> None:
        """Flag the render and tell every worker, which stops it within a second."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(streams.cancel_flag(render_id), "1", ex=streams.CANCEL_FLAG_TTL_SECONDS)
            pipe.publish(streams.CANCEL_CHANNEL, render_id)
            await pipe.execute()

    async def _attempt(self, call: Any, what: str, *, within: float) -> bool:
        try:
            await ride_out(call, within=within, what=what)
        except REDIS_DOWN as exc:
            log.warning("redis away; not written", extra={"what": what, "error": str(exc)})
            return False
        return True
