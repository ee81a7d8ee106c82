"""Reading Redis streams in tests, typed: redis-py types stream replies loosely (Any, None)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

Entry = tuple[str, dict[str, str]]


async def entries(redis: Redis, key: str, *, count: int | None = None) -> list[Entry]:
    """XRANGE of `key` (oldest first) on a client made with decode_responses=True."""
    return cast(list[Entry], await redis.xrange(key, count=count))


async def fields(redis: Redis, key: str) -> list[dict[str, str]]:
    """The fields of every entry of `key`, oldest first."""
    return [values for _, values in await entries(redis, key)]
