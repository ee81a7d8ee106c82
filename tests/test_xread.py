"""services/progress/xread.py: the hand-packed XREAD is exactly redis-py's, and reads for real."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from services.progress.xread import PackedXRead, bulk
from tests.support.processes import RedisServer


def test_packed_command_is_the_same_bytes_redis_py_would_send() -> None:
    keys = ["render:events:a", "render:events:ünïcode", "k" * 300]
    ids = ["0-0", "1700000000000-1", "42-7"]
    xread = PackedXRead(Redis(), count=128, block_ms=100)
    packed = xread.pack([bulk(k) for k in keys], [bulk(i) for i in ids])
    expected = b"".join(
        Connection().pack_command("XREAD", "COUNT", 128, "BLOCK", 100, "STREAMS", *keys, *ids)
    )
    assert packed == expected


@pytest_asyncio.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_reads_entries_times_out_empty_and_reconnects(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    reader = Redis.from_url(redis_server.url, decode_responses=True, max_connections=1)
    xread = PackedXRead(reader, count=10, block_ms=50)
    try:
        first = await client.xadd("s1", {"n": "1"})
        await client.xadd("s2", {"n": "2"})
        reply = await xread.read(xread.pack([bulk("s1"), bulk("s2")], [bulk("0-0"), bulk("0-0")]))
        streams = dict(reply.items()) if isinstance(reply, dict) else dict(reply)
        assert [entry[0] for entry in streams["s1"]] == [first]
        assert sorted(streams) == ["s1", "s2"]
        # Nothing after the newest: the block time passes and the reply is empty.
        newest = bulk(str(streams["s1"][-1][0]))
        assert not await xread.read(xread.pack([bulk("s1")], [newest]))
        # Redis restarts: the read fails, the next one reconnects on the same pool slot.
        redis_server.stop()
        with pytest.raises((RedisConnectionError, OSError)):
            await xread.read(xread.pack([bulk("s1")], [newest]))
        redis_server.start()
        assert not await xread.read(xread.pack([bulk("s1")], [bulk("$")]))
    finally:
        await xread.close()
        await client.aclose()
        await reader.aclose()
