"""XREAD over many streams on one dedicated connection, the command packed from cached parts.

Why not redis-py's `xread()`: it encodes every key and id anew on each call. A shard of the
progress hub names thousands of streams per read, many times a second; measured here for
2,500 streams, redis-py's `pack_command` took 28 ms per XREAD, joining the cached RESP
parts 0.5 ms (the same bytes: tests/test_xread.py). The reply is parsed by redis-py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis


def bulk(value: str) -> bytes:
    """One RESP bulk string (a stream key or id, kept encoded by the caller)."""
    raw = value.encode()
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


class PackedXRead:
    """`XREAD COUNT count BLOCK block_ms STREAMS keys... ids...` on its own connection."""

    def __init__(self, client: Redis, *, count: int, block_ms: int) -> None:
        """`client`'s pool lends the one connection (held until `close`)."""
        self._client = client
        self._head = b"".join(
            bulk(part) for part in ("XREAD", "COUNT", str(count), "BLOCK", str(block_ms))
        ) + bulk("STREAMS")
        self._connection: Any = None

    def pack(self, keys: Sequence[bytes], positions: Sequence[bytes]) -> bytes:
        """The command for streams `keys` from `positions` (both `bulk`-encoded, in order)."""
        return b"".join(
            (b"*%d\r\n" % (6 + len(keys) + len(positions)), self._head, *keys, *positions)
        )

    async def read(self, command: bytes) -> Any:
        """Send one packed XREAD and return its reply (None when the block time passed).

        A failed read drops the connection; the next one reconnects.
        """
        if self._connection is None:
            self._connection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        connection = self._connection
        try:
            await connection.send_packed_command(command, check_health=False)
            return await connection.read_response()
        except BaseException:
            await connection.disconnect()  # reconnects on the next send
            raise

    async def close(self) -> None:
        """Give the connection back to the client's pool, closed."""
        if self._connection is not None:
            await self._connection.disconnect()
            await self._client.connection_pool.release(self._connection)
            self._connection = None
