"""Redis clients with the timeouts the services expect: every call is bounded."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from render_common.config import Settings


def create_redis(
    url: str,
    *,
    connect_timeout: float = 2.0,
    socket_timeout: float = 3.0,
    block_seconds: float = 0.0,
) -> Redis:
    """A client returning str values; fails fast when Redis is down or silent.

    `connect_timeout` bounds connecting, `socket_timeout` each reply. A client for
    blocking reads (XREAD/XREADGROUP with BLOCK, BLMOVE) passes the longest block it uses
    as `block_seconds`: its replies may then take that much longer. Pub/sub listening is
    not bounded by it (redis-py waits for messages without a timeout).
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout + block_seconds,
        # One retry on a broken connection (a restarted Redis); none on a timeout: a
        # silent Redis would only double the wait before the caller hears UNAVAILABLE.
        retry=Retry(
            ExponentialBackoff(cap=0.5, base=0.05),
            retries=1,
            supported_errors=(RedisConnectionError,),
        ),
        health_check_interval=30,
        max_connections=512,
    )


def redis_for(settings: Settings, *, block_seconds: float = 0.0) -> Redis:
    """`create_redis` with REDIS_URL, REDIS_CONNECT_TIMEOUT_SECONDS and
    REDIS_SOCKET_TIMEOUT_SECONDS."""
    return create_redis(
        settings.redis_url,
        connect_timeout=settings.redis_connect_timeout_seconds,
        socket_timeout=settings.redis_socket_timeout_seconds,
        block_seconds=block_seconds,
    )
