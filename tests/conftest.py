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
from sqlalchemy import text

from render_common import streams
from render_common.auth import mint_token
from render_common.config import Settings
from render_common.db.engine import create_engine
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

TEST_SECRET = "test-secret-for-render-export-tests-0123456789"
# The session-wide databases and Redis the tests created themselves (never a configured one).
_SHARED_DATABASES: list[str] = []
_SHARED_REDIS: list[str] = []


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A private redis-server, unless REDIS_URL points at one to use."""
    if os.environ.get("REDIS_URL"):
        yield None
        return
    server = RedisServer()
    server.start()
    _SHARED_REDIS.append(server.url)
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    """URL of the Redis the tests use."""
    return redis_server.url if redis_server is not None else os.environ["REDIS_URL"]


@pytest_asyncio.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """DATABASE_URL when set (PostgreSQL), else a throwaway database dropped at the end."""
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith("postgres"):
        migrate_database(configured)
        yield configured
        return
    database = ThrowawayDatabase()
    await database.create()
    _SHARED_DATABASES.append(database.url)
    yield database.url
    await database.drop()


@pytest.fixture(scope="session")
def sqlite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for SQLite files."""
    return tmp_path_factory.mktemp("sqlite")


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, sqlite_dir: Path) -> str:
    """Each database backend in turn."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    url = sqlite_url(sqlite_dir)
    _SHARED_DATABASES.append(url)
    return url


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Settings:
    """Settings shared by the tests (overridden per test with `with_overrides`)."""
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


@pytest.fixture(scope="session")
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


@pytest_asyncio.fixture(scope="module", autouse=True)
async def _leave_no_unfinished_render() -> AsyncIterator[None]:
    """After each module, end the renders it left unfinished in the session-wide databases
    and drop its queue entries: every stack's sweeper re-enqueues unfinished rows, and the
    next module's worker would spend its slot on them."""
    yield
    for url in _SHARED_DATABASES:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "UPDATE video_renders SET status = 'cancelled'"
                        " WHERE status IN ('queued', 'running')"
                    )
                )
        finally:
            await engine.dispose()
    for url in _SHARED_REDIS:
        client = create_redis(url)
        try:
            await client.delete(streams.JOBS_STREAM, streams.RETRY_ZSET)
        finally:
            await client.aclose()
