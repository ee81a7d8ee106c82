"""render_common.retry / outage.ride_out: retried while Redis is down, bounded, then raised."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from render_common.outage import ride_out
from render_common.retry import retry_call
from tests.support.processes import RedisServer


def client(server: RedisServer) -> Redis:
    return Redis.from_url(server.url, decode_responses=True, socket_connect_timeout=1)


async def test_rides_out_a_redis_that_comes_up_later() -> None:
    server = RedisServer()  # its port is chosen, nothing listens on it yet
    redis = client(server)
    tries = 0

    async def ping() -> bool:
        nonlocal tries
        tries += 1
        return bool(await redis.ping())

    starter = asyncio.get_running_loop().call_later(0.5, server.start)
    try:
        assert await ride_out(ping, within=30, what="ping") is True
        assert tries > 1  # refused at first, then answered
    finally:
        starter.cancel()
        await redis.aclose()
        server.stop()


async def test_gives_up_at_the_bound_with_the_last_error() -> None:
    redis = client(RedisServer())  # never started
    started = time.monotonic()
    try:
        with pytest.raises(RedisConnectionError):
            await ride_out(redis.ping, within=0.6, what="ping")
    finally:
        await redis.aclose()
    assert time.monotonic() - started >= 0.6


async def test_one_try_when_there_is_no_time_and_no_retry_of_an_answer() -> None:
    tries = 0

    async def refused() -> None:
        nonlocal tries
        tries += 1
        raise ResponseError("WRONGTYPE")  # Redis answered: asking again gets the same answer

    with pytest.raises(ResponseError):
        await retry_call(
            refused, on=(RedisConnectionError,), within=5, first=0.01, most=0.1, what="x"
        )
    assert tries == 1
    with pytest.raises(RedisConnectionError):
        await retry_call(
            _refuse, on=(RedisConnectionError,), within=0, first=0.01, most=0.1, what="x"
        )


async def _refuse() -> None:
    raise RedisConnectionError("refused")


async def test_a_cancelled_retry_stops() -> None:
    task = asyncio.create_task(
        retry_call(_refuse, on=(RedisConnectionError,), within=60, first=0.05, most=0.1, what="x")
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
