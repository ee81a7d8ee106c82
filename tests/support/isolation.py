"""Old names of the per-module isolation, for modules that still import them.

tests/conftest.py now gives every test module its own redis-server and databases, so a
module no longer opts in: these fixtures only hand on conftest's. Remove a module's
`from tests.support import isolation` lines when next touching it; then this module.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from render_common.config import Settings
from tests.support.processes import RedisServer


@pytest.fixture(scope="module")
def module_redis(redis_server: RedisServer | None) -> RedisServer | None:
    """The module's redis-server (conftest's `redis_server`)."""
    return redis_server


@pytest.fixture(scope="module")
def postgres_url(postgres_url: str) -> str:
    """The module's PostgreSQL database (conftest's)."""
    return postgres_url


@pytest.fixture(scope="module")
def base_settings(base_settings: Settings) -> Settings:
    """The module's settings (conftest's)."""
    return base_settings


@pytest.fixture
def redis(redis: Redis) -> Redis:
    """A client of the module's Redis (conftest's)."""
    return redis
