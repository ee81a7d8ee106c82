"""Redis clients with the timeouts the services expect."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


def create_redis(url: str, *, socket_timeout: float | None = 5.0) -> Redis:
    """A client returning str values; fails fast (short connect timeout) when Redis is down.

    Blocking readers (XREAD/XREADGROUP with BLOCK) pass `socket_timeout=None`.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
        health_check_interval=30,
        max_connections=512,
    )
