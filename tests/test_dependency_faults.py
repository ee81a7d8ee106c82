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
from collections.abc import AsyncIterator, Awaitable, Callable
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


StartClient = Callable[[Settings], Awaitable[Client]]


@pytest_asyncio.fixture
async def client_for(
    channel_to: Callable[[int], grpc.aio.Channel], user: str, token_for: Callable[[str], str]
) -> AsyncIterator[StartClient]:
    """Start render_api in this process (with its sweeper) on some settings and return a
    client of the test's user; every render_api started is stopped at the end."""
    started: list[app.RenderApi] = []

    async def start(settings: Settings) -> Client:
        api = await app.start(settings, port=0)
        started.append(api)
        return Client(channel_to(api.port), token_for(user))

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


@dataclass(frozen=True)
class Fault:
    """A dependency fault: how to cause it, how to end it, and the reason callers see."""

    name: str  # prefix of the figures it measures
    reason: str
    inject: Callable[[], object]
    recover: Callable[[], object]


async def burst_through(client: Client, fault: Fault) -> list[Call]:
    """A burst before, during (some calls already in flight when it starts) and after the
    fault: every call ends OK or UNAVAILABLE with the fault's reason, within the bound, and
    intake recovers by itself. Returns every call made."""
    warm = await client.burst("warm")
    assert {call.code for call in warm} == {grpc.StatusCode.OK}
    in_flight = client.launch("before-fault")
    await asyncio.sleep(0.005)
    fault.inject()
    during = await client.burst("during") + list(await asyncio.gather(*in_flight))
    refused = check_outcomes(during, fault.reason)
    FIGURES[f"{fault.name}_unavailable_max_s"] = max(call.seconds for call in refused)
    fault.recover()
    FIGURES[f"{fault.name}_recovery_s"] = await client.until_accepted()
    after = await client.burst("after")
    assert {call.code for call in after} == {grpc.StatusCode.OK}
    return warm + during + after


class Rows:
    """The user's renders as (request_id → (render id, queue job id)) in the database."""

    def __init__(self, database_url: str, user: str) -> None:
        self.engine = create_engine(database_url, pool_size=1)
        self.user = user

    async def by_request(self) -> dict[str, tuple[str, str | None]]:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                select(
                    video_renders.c.request_id, video_renders.c.id, video_renders.c.queue_job_id
                ).where(video_renders.c.user_id == self.user)
            )
            return {request_id: (rid, job) for request_id, rid, job in result}

    async def ids(self) -> set[str]:
        return {rid for rid, _ in (await self.by_request()).values()}

    async def existing(self, ids: set[str]) -> set[str]:
        """Which of `ids` name a render (anyone's) at all."""
        async with self.engine.connect() as connection:
            found = await connection.execute(
                select(video_renders.c.id).where(video_renders.c.id.in_(ids))
            )
            return set(found.scalars())


async def check_retries(rows: Rows, client: Client, calls: list[Call]) -> int:
    """Every accepted render has its row; every refused request succeeds once retried with
    its request_id (a refused call whose COMMIT reached the server anyway, an ambiguous
    outcome, is returned by that retry, not duplicated). Returns how many were ambiguous."""
    before = await rows.by_request()
    for call in calls:
        if call.code == grpc.StatusCode.OK:
            assert before[call.request_id][0] == call.render_id
    refused = [call for call in calls if call.code != grpc.StatusCode.OK]
    for call in refused:
        retry = await client.start(call.request_id)
        assert retry.code == grpc.StatusCode.OK, retry
        if call.request_id in before:
            assert retry.render_id == before[call.request_id][0]
    after = await rows.by_request()
    assert len({rid for rid, _ in after.values()}) == len(after)
    return sum(call.request_id in before for call in refused)


async def check_queue_entries(rows: Rows, redis_url: str) -> None:
    """Every render gets a queue entry (the sweeper enqueues a committed render whose XADD
    never happened) and no entry names a render that does not exist."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            queued = {f["render_id"] for f in await stream_fields(redis, streams.SSR_JOBS_STREAM)}
            ids = await rows.ids()
            if ids <= queued or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
    finally:
        await redis.aclose()
    assert ids <= queued, f"renders without a queue entry: {ids - queued}"
    missing = queued - await rows.existing(queued)
    assert not missing, f"queue entries without a render: {missing}"


async def check_nothing_half_written(
    database_url: str, redis_url: str, user: str, client: Client, calls: list[Call]
) -> int:
    """Nothing half-written after a burst through a fault (check_retries and
    check_queue_entries). Returns how many refused calls had in fact been committed."""
    rows = Rows(database_url, user)
    try:
        ambiguous = await check_retries(rows, client, calls)
        await check_queue_entries(rows, redis_url)
        return ambiguous
    finally:
        await rows.engine.dispose()


async def through_fault_and_back(
    client: Client, fault: Fault, database_url: str, redis_url: str, user: str
) -> int:
    """burst_through the fault, then check_nothing_half_written; the figures are recorded
    and printed. Returns how many refused calls had in fact been committed."""
    calls = await burst_through(client, fault)
    ambiguous = await check_nothing_half_written(database_url, redis_url, user, client, calls)
    FIGURES[f"{fault.name}_ambiguous_commits"] = ambiguous
    print("\nfigures:", FIGURES)
    return ambiguous


async def test_silent_database_gives_unavailable_then_recovers(
    base_settings: Settings,
    postgres_url: str,
    pg_proxy: TcpProxy,
    own_redis: RedisServer,
    client_for: StartClient,
    user: str,
) -> None:
    settings = fault_settings(
        base_settings, database_url=through(pg_proxy, postgres_url), redis_url=own_redis.url
    )
    client = await client_for(settings)
    fault = Fault("db_paused", "DATABASE_UNAVAILABLE", pg_proxy.pause, pg_proxy.resume)
    await through_fault_and_back(client, fault, postgres_url, own_redis.url, user)


async def test_dead_database_gives_unavailable_at_once_then_recovers(
    base_settings: Settings,
    postgres_url: str,
    pg_proxy: TcpProxy,
    own_redis: RedisServer,
    client_for: StartClient,
    user: str,
) -> None:
    # Longer timeouts here: a refused connection must not wait for any of them.
    settings = fault_settings(
        base_settings,
        database_url=through(pg_proxy, postgres_url),
        redis_url=own_redis.url,
        db_connect_timeout_seconds=10.0,
        db_statement_timeout_seconds=10.0,
    )
    client = await client_for(settings)
    fault = Fault("db_killed", "DATABASE_UNAVAILABLE", pg_proxy.kill, pg_proxy.start)
    await through_fault_and_back(client, fault, postgres_url, own_redis.url, user)
    # Refused connections answer at once, well inside the 10 s timeouts.
    assert FIGURES["db_killed_unavailable_max_s"] < 5.0


async def test_silent_redis_gives_unavailable_then_recovers(
    base_settings: Settings,
    postgres_url: str,
    own_redis: RedisServer,
    client_for: StartClient,
    user: str,
) -> None:
    settings = fault_settings(base_settings, database_url=postgres_url, redis_url=own_redis.url)
    client = await client_for(settings)
    fault = Fault("redis_paused", "REDIS_UNAVAILABLE", own_redis.pause, own_redis.resume)
    ambiguous = await through_fault_and_back(client, fault, postgres_url, own_redis.url, user)
    assert ambiguous == 0  # a Redis refusal happens before the commit
