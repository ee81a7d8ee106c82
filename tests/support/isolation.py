"""Fixtures that put one test module on its own Redis and database.

Import them into a module (`from tests.support.isolation import ...`) whose stacks run a
worker or sweeper: a sweeper re-enqueues every unfinished row it sees, and a worker takes
every entry of the job stream, so other modules' leftovers must not share its Redis or
database. These override conftest's session-wide fixtures of the same names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from render_common.config import Settings
from render_common.redis_client import create_redis
from tests.support.processes import RedisServer, ThrowawayDatabase


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    """This module's own redis-server."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest_asyncio.fixture(scope="module")
async def postgres_url() -> AsyncIterator[str]:
    """This module's own throwaway PostgreSQL database, migrated."""
    database = ThrowawayDatabase()
    await database.create()
    yield database.url
    await database.drop()


@pytest.fixture
def base_settings(base_settings: Settings, module_redis: RedisServer) -> Settings:
    """The session's settings on this module's Redis."""
    return base_settings.with_overrides(redis_url=module_redis.url)


@pytest_asyncio.fixture
async def redis(module_redis: RedisServer) -> AsyncIterator[Redis]:
    """A client of this module's Redis, for assertions."""
    client = create_redis(module_redis.url)
    yield client
    await client.aclose()
