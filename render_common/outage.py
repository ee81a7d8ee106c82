"""Riding out a Redis outage: retry one call with bounded exponential backoff.

Redis carries work and events, not the truth (the database does). A worker that loses its
Redis connection mid-render keeps rendering; the Redis side of each step (an event, a
retry entry, a dead letter, an acknowledgement) is retried here until Redis answers or
the bound passes, and the caller then decides what is left for the sweeper to restore.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")
log = logging.getLogger(__name__)

# What a dropped, refused or silent connection raises (redis-py's own errors, including
# BusyLoadingError while Redis replays its AOF, and the OS's). Not ResponseError: Redis
# answered, and asking again would get the same answer.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
# The same, raised by redis-py only (an OSError may come from a disk or another peer).
REDIS_LOST = (RedisConnectionError, RedisTimeoutError)
FIRST_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 1.0


async def ride_out(call: Callable[[], Awaitable[T]], *, within: float, what: str) -> T:
    """`await call()`, retried on Redis and socket errors for up to `within` seconds.

    The delay doubles from 50 ms up to 1 s. Raises the last error once `within` has
    passed (`within=0`: one try). Cancellation is never swallowed.
    """
    deadline = time.monotonic() + within
    delay = FIRST_DELAY_SECONDS
    failures = 0
    while True:
        try:
            result = await call()
        except REDIS_DOWN as exc:
            failures += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            if failures == 1:
                log.warning("redis unavailable; retrying", extra={"what": what, "error": str(exc)})
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, MAX_DELAY_SECONDS)
            continue
        if failures:
            log.info("redis answered again", extra={"what": what, "failures": failures})
        return result
