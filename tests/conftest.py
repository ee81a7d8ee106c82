"""Fixtures: real Redis, real PostgreSQL (throwaway database) and SQLite; render_api in-process."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from render_common.auth import mint_token
from render_common.config import Settings
from render_common.redis_client import create_redis
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.lambda_env import use_fake_lambda
from tests.support.processes import (
    RedisServer,
    ThrowawayDatabase,
    migrate_database,
    sqlite_url,
)
from tests.support.s3_server import S3Server
from tests.support.stack import StackFactory

TEST_SECRET = "test-secret-for-render-export-tests-0123456789"

# Fixtures shared by the modules of one subject (tests/support/<subject>.py), available to
# every module without importing them by name.
pytest_plugins = [
    "tests.support.caller_webhooks",
    "tests.support.deploy_lambda",
    "tests.support.edge_http",
    "tests.support.lambda_stack",
    "tests.support.migrations",
    "tests.support.progress",
    "tests.support.render_api",
]

# Isolation: every test module gets its own redis-server and its own databases (copies of
# a template migrated once), dropped when the module ends. A sweeper re-enqueues every
# unfinished row it sees and a worker takes every entry of the job stream, so one module's
# leftovers must never reach another's stacks. REDIS_URL / DATABASE_URL, when set, are
# used as they are (shared, never flushed).


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer | None]:
    """This module's own redis-server, unless REDIS_URL points at one to use."""
    if os.environ.get("REDIS_URL"):
        yield None
        return
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def redis_url(redis_server: RedisServer | None) -> str:
    """URL of the Redis the module's tests use."""
    return redis_server.url if redis_server is not None else os.environ["REDIS_URL"]


@pytest_asyncio.fixture(scope="module")
async def postgres_url() -> AsyncIterator[str]:
    """DATABASE_URL when set (PostgreSQL), else this module's throwaway database."""
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith("postgres"):
        migrate_database(configured)
        yield configured
        return
    database = ThrowawayDatabase()
    await database.create()
    yield database.url
    await database.drop()


@pytest.fixture(scope="module")
def sqlite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's directory for SQLite files."""
    return tmp_path_factory.mktemp("sqlite")


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, sqlite_dir: Path) -> str:
    """Each database backend in turn (the module's own databases)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url(sqlite_dir)


@pytest.fixture(scope="module")
def base_settings(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Settings:
    """Settings shared by the module's tests (overridden per test with `with_overrides`)."""
    data = tmp_path_factory.mktemp("data")
    return Settings(
        data_dir=str(data),
        redis_url=redis_url,
        jwt_secret=TEST_SECRET,
        bind_host="127.0.0.1",
        log_format="text",
        sweeper_interval_seconds=0.5,
        sweeper_grace_seconds=1.0,
    )


@pytest.fixture
def user() -> str:
    """A fresh user id per test (tests only ever touch their own users' rows)."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def token_for(base_settings: Settings) -> Callable[[str], str]:
    """Mint a valid token for a user."""
    return lambda user_id: mint_token(base_settings, user_id)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a bearer token."""
    return (("authorization", f"Bearer {token}"),)


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A Redis client for assertions."""
    client = create_redis(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def channel_to() -> AsyncIterator[Callable[[int], grpc.aio.Channel]]:
    """Open insecure channels to local ports; all closed at the end of the test."""
    channels: list[grpc.aio.Channel] = []

    def open_channel(port: int) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.close()


@pytest_asyncio.fixture
async def stack_factory(
    base_settings: Settings, postgres_url: str, tmp_path: Path, user: str
) -> AsyncIterator[StackFactory]:
    """Start stacks (render_api + worker) for the test's user on PostgreSQL and the test's
    data directory; all closed at the end. A module adds its own defaults by overriding
    this fixture with `stack_factory.with_defaults(...)`."""
    factory = StackFactory(
        base_settings.with_overrides(database_url=postgres_url, data_dir=str(tmp_path / "data")),
        user,
    )
    yield factory
    await factory.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A local server speaking the S3 API (moto), for the whole session."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def fake_lambda(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeRemotionLambda]:
    """A local Remotion-like Lambda function; boto3 in this process is pointed at it."""
    fake = FakeRemotionLambda(s3_server)
    use_fake_lambda(monkeypatch, fake)
    yield fake
    fake.close()
