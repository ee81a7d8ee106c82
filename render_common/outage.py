"""Riding out a Redis outage: retry one call with bounded exponential backoff.

Redis carries work and events, not the truth (the database does). A worker that loses its
Redis connection mid-render keeps rendering; the Redis side of each step (an event, a
retry entry, a dead letter, an acknowledgement) is retried here until Redis answers or
the bound passes, and the caller then decides what is left for the sweeper to restore.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from render_common.retry import retry_call

T = TypeVar("T")

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
    return await retry_call(
        call,
        on=REDIS_DOWN,
        within=within,
        first=FIRST_DELAY_SECONDS,
        most=MAX_DELAY_SECONDS,
        what=what,
    )
