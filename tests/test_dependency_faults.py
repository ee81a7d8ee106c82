"""A silent or dead dependency during an intake burst: callers get UNAVAILABLE within a
few seconds, nothing is half-written, and intake recovers by itself.

Real processes, real faults: a TCP proxy process in front of PostgreSQL that is paused
(SIGSTOP: the network goes silent) or killed; a private redis-server that is paused.
render_api runs in this process and is never restarted; clients call it over real gRPC
with a 30 s deadline, so a hang would show as DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import render_service_pb2_grpc
from sqlalchemy import select
from sqlalchemy.engine import make_url

from render_common import streams
from render_common.config import Settings
from render_common.db.engine import create_engine
from render_common.db.schema import video_renders
from services.render_api import app
from tests.conftest import bearer
from tests.support.processes import RedisServer
from tests.support.redis_streams import fields as stream_fields
from tests.support.rpc import rich_error
from tests.support.scenes import start_request
from tests.support.tcp_proxy import TcpProxy

TIMEOUT_SECONDS = 2.0  # every DB_* and REDIS_* timeout setting in these tests
UNAVAILABLE_BOUND_SECONDS = 15.0  # generous: a behavioural bound, not a performance figure
CLIENT_DEADLINE_SECONDS = 30.0
BURST = 16

# Figures measured by these tests (printed with -s; quoted in reports).
FIGURES: dict[str, float] = {}


@dataclass(frozen=True)
class Call:
    """One StartRender as the client saw it."""

    request_id: str
    code: grpc.StatusCode
    reason: str
    render_id: str
    seconds: float


class Client:
    """StartRenders of one user, each with its own request_id, timed from the client."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = render_service_pb2_grpc.RenderServiceStub(channel)
        self._metadata = bearer(token)

    async def start(self, request_id: str) -> Call:
        began = time.monotonic()
        try:
            response = await self._stub.StartRender(
                start_request(request_id=request_id),
                metadata=self._metadata,
                timeout=CLIENT_DEADLINE_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            details = rich_error(exc)
            return Call(request_id, exc.code(), details.reason, "", time.monotonic() - began)
        return Call(
            request_id, grpc.StatusCode.OK, "", response.render.render_id, time.monotonic() - began
        )

    def launch(self, prefix: str, count: int = BURST) -> list[asyncio.Task[Call]]:
        return [
            asyncio.create_task(self.start(f"{prefix}-{i}-{uuid.uuid4().hex[:6]}"))
            for i in range(count)
        ]

    async def burst(self, prefix: str, count: int = BURST) -> list[Call]:
        return list(await asyncio.gather(*self.launch(prefix, count)))

    async def until_accepted(self, limit: float = 60.0) -> float:
        """Seconds until a StartRender succeeds again."""
        began = time.monotonic()
        while time.monotonic() - began < limit:
            call = await self.start(f"probe-{uuid.uuid4().hex[:8]}")
            if call.code == grpc.StatusCode.OK:
                return time.monotonic() - began
            await asyncio.sleep(0.2)
        raise AssertionError(f"intake did not recover within {limit} s")


def fault_settings(base: Settings, **overrides: Any) -> Settings:
    """Short timeouts; limits out of the way of a burst."""
    values: dict[str, Any] = {
        "db_connect_timeout_seconds": TIMEOUT_SECONDS,
        "db_statement_timeout_seconds": TIMEOUT_SECONDS,
        "db_pool_timeout_seconds": TIMEOUT_SECONDS,
        "redis_connect_timeout_seconds": TIMEOUT_SECONDS,
        "redis_socket_timeout_seconds": TIMEOUT_SECONDS,
        "daily_render_limit": 100_000,
        "concurrent_render_limit": 100_000,
    }
    values.update(overrides)
    return base.with_overrides(**values)


def through(proxy: TcpProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


@pytest_asyncio.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    """A redis-server of this test's own (paused, and its stream read whole)."""
    server = RedisServer()
    server.start()
    yield server
    server.resume()
    server.close()


@pytest_asyncio.fixture
async def pg_proxy(postgres_url: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy process in front of the test database's PostgreSQL server."""
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy
    proxy.kill()


StartApi = Callable[[Settings], Any]


@pytest_asyncio.fixture
async def running_api() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start render_api in this process (with its sweeper); stopped at the end."""
    started: list[app.RenderApi] = []

    async def start(settings: Settings) -> app.RenderApi:
        api = await app.start(settings, port=0)
        started.append(api)
        return api

    yield start
    for api in started:
        await api.stop(0)


def check_outcomes(calls: list[Call], reason: str) -> list[Call]:
    """Every call ended OK or UNAVAILABLE (never at its deadline); the refused ones."""
    codes = {call.code for call in calls}
    assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    refused = [call for call in calls if call.code == grpc.StatusCode.UNAVAILABLE]
    assert refused, "the fault was not seen by any caller"
    assert {call.reason for call in refused} == {reason}
    slowest = max(call.seconds for call in refused)
    assert slowest < UNAVAILABLE_BOUND_SECONDS, slowest
    return refused


async def check_nothing_half_written(
    database_url: str, redis_url: str, user: str, client: Client, calls: list[Call]
) -> int:
    """Every accepted render has its row and a queue entry; every refused request has
    neither once retried with its request_id (a refused call whose COMMIT reached the
    server anyway, an ambiguous outcome, is returned by that retry, not duplicated); no
    entry lacks a row. Returns how many refused calls had in fact been committed."""
    engine = create_engine(database_url, pool_size=1)
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:

        async def rows() -> dict[str, tuple[str, str | None]]:
            async with engine.connect() as connection:
                result = await connection.execute(
                    select(
                        video_renders.c.request_id, video_renders.c.id, video_renders.c.queue_job_id
                    ).where(video_renders.c.user_id == user)
                )
                return {request_id: (rid, job) for request_id, rid, job in result}

        before = await rows()
        accepted = [call for call in calls if call.code == grpc.StatusCode.OK]
        for call in accepted:
            assert before[call.request_id][0] == call.render_id
        refused = [call for call in calls if call.code != grpc.StatusCode.OK]
        ambiguous = [call for call in refused if call.request_id in before]
        retried = {call.request_id: await client.start(call.request_id) for call in refused}
        for request_id, retry in retried.items():
            assert retry.code == grpc.StatusCode.OK, retry
            if request_id in before:
                assert retry.render_id == before[request_id][0]
        after = await rows()
        assert len({rid for rid, _ in after.values()}) == len(after)
        # Queue entries: the sweeper enqueues a committed render whose XADD never happened.
        deadline = time.monotonic() + 30
        while True:
            queued = {f["render_id"] for f in await stream_fields(redis, streams.JOBS_STREAM)}
            ids = {rid for rid, _ in (await rows()).values()}
            if ids <= queued or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert ids <= queued, f"renders without a queue entry: {ids - queued}"
        # The sweeper also enqueues other tests' queued renders into this fresh Redis; no
        # entry may name a render that does not exist at all.
        async with engine.connect() as connection:
            existing = set(
                (
                    await connection.execute(
                        select(video_renders.c.id).where(video_renders.c.id.in_(queued))
                    )
                ).scalars()
            )
        assert queued <= existing, f"queue entries without a render: {queued - existing}"
        return len(ambiguous)
    finally:
        await redis.aclose()
        await engine.dispose()


async def test_silent_database_gives_unavailable_then_recovers(
    base_settings: Settings,
    postgres_url: str,
    pg_proxy: TcpProxy,
    own_redis: RedisServer,
    running_api: StartApi,
    channel_to: Any,
    user: str,
    token_for: Any,
) -> None:
    settings = fault_settings(
        base_settings, database_url=through(pg_proxy, postgres_url), redis_url=own_redis.url
    )
    api = await running_api(settings)
    client = Client(channel_to(api.port), token_for(user))
    warm = await client.burst("warm")
    assert {call.code for call in warm} == {grpc.StatusCode.OK}

    in_flight = client.launch("before-pause")
    await asyncio.sleep(0.005)
    pg_proxy.pause()
    during = await client.burst("paused") + list(await asyncio.gather(*in_flight))
    refused = check_outcomes(during, "DATABASE_UNAVAILABLE")
    FIGURES["db_paused_unavailable_max_s"] = max(call.seconds for call in refused)

    pg_proxy.resume()
    FIGURES["db_paused_recovery_s"] = await client.until_accepted()
    after = await client.burst("resumed")
    assert {call.code for call in after} == {grpc.StatusCode.OK}
    FIGURES["db_paused_ambiguous_commits"] = await check_nothing_half_written(
        postgres_url, own_redis.url, user, client, warm + during + after
    )
    print("\nfigures:", FIGURES)


async def test_dead_database_gives_unavailable_at_once_then_recovers(
    base_settings: Settings,
    postgres_url: str,
    pg_proxy: TcpProxy,
    own_redis: RedisServer,
    running_api: StartApi,
    channel_to: Any,
    user: str,
    token_for: Any,
) -> None:
    # Longer timeouts here: a refused connection must not wait for any of them.
    settings = fault_settings(
        base_settings,
        database_url=through(pg_proxy, postgres_url),
        redis_url=own_redis.url,
        db_connect_timeout_seconds=10.0,
        db_statement_timeout_seconds=10.0,
    )
    api = await running_api(settings)
    client = Client(channel_to(api.port), token_for(user))
    warm = await client.burst("warm")
    assert {call.code for call in warm} == {grpc.StatusCode.OK}

    in_flight = client.launch("before-kill")
    await asyncio.sleep(0.005)
    pg_proxy.kill()
    during = await client.burst("killed") + list(await asyncio.gather(*in_flight))
    refused = check_outcomes(during, "DATABASE_UNAVAILABLE")
    FIGURES["db_killed_unavailable_max_s"] = max(call.seconds for call in refused)
    # Refused connections answer at once, well inside the 10 s timeouts.
    assert FIGURES["db_killed_unavailable_max_s"] < 5.0

    pg_proxy.start()
    FIGURES["db_killed_recovery_s"] = await client.until_accepted()
    after = await client.burst("restarted")
    assert {call.code for call in after} == {grpc.StatusCode.OK}
    FIGURES["db_killed_ambiguous_commits"] = await check_nothing_half_written(
        postgres_url, own_redis.url, user, client, warm + during + after
    )
    print("\nfigures:", FIGURES)


async def test_silent_redis_gives_unavailable_then_recovers(
    base_settings: Settings,
    postgres_url: str,
    own_redis: RedisServer,
    running_api: StartApi,
    channel_to: Any,
    user: str,
    token_for: Any,
) -> None:
    settings = fault_settings(base_settings, database_url=postgres_url, redis_url=own_redis.url)
    api = await running_api(settings)
    client = Client(channel_to(api.port), token_for(user))
    warm = await client.burst("warm")
    assert {call.code for call in warm} == {grpc.StatusCode.OK}

    in_flight = client.launch("before-pause")
    await asyncio.sleep(0.005)
    own_redis.pause()
    during = await client.burst("paused") + list(await asyncio.gather(*in_flight))
    refused = check_outcomes(during, "REDIS_UNAVAILABLE")
    FIGURES["redis_paused_unavailable_max_s"] = max(call.seconds for call in refused)

    own_redis.resume()
    FIGURES["redis_paused_recovery_s"] = await client.until_accepted()
    after = await client.burst("resumed")
    assert {call.code for call in after} == {grpc.StatusCode.OK}
    ambiguous = await check_nothing_half_written(
        postgres_url, own_redis.url, user, client, warm + during + after
    )
    assert ambiguous == 0  # a Redis refusal happens before the commit
    print("\nfigures:", FIGURES)
