"""SSE client process for bench/sse_fanout.py: many raw HTTP/1.1 event streams, one loop.

`python -m bench.sse_clients PORT TOKEN SPEC` where SPEC is a JSON list of
[render_id, watchers]. Each stream is a bare asyncio Protocol (no HTTP library: the
client must not be what is measured). It speaks the protocol of bench/client_process.py, as
the gRPC client (bench/grpc_clients.py) does; a stream's arrival time is taken when the
bytes reach the protocol.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import cast

from bench.client_process import OPEN_TIMEOUT, Totals, client_arguments, report

MESSAGE = b'"message":"'
OPEN_BATCH = 100


class SseStream(asyncio.Protocol):
    """One text/event-stream response: status check, then messages split on blank lines."""

    def __init__(self, request: bytes, totals: Totals, opened: asyncio.Future[bool]) -> None:
        self.request = request
        self.totals = totals
        self.opened = opened
        self.buffer = b""
        self.head_done = False
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        cast(asyncio.Transport, transport).write(self.request)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        self.buffer += data
        if not self.head_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = self.buffer.startswith(b"HTTP/1.1 200")
            self.head_done = True
            self.buffer = self.buffer[end + 4 :]
            if not ok and not self.opened.done():
                self.opened.set_result(False)
        while (end := self.buffer.find(b"\n\n")) >= 0:
            message, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            self.message(message, now)

    def message(self, message: bytes, now: int) -> None:
        if not self.opened.done() and b"event: snapshot" in message:
            self.opened.set_result(True)
            return
        if b"event: event" not in message or (start := message.find(MESSAGE)) < 0:
            return
        start += len(MESSAGE)
        self.totals.arrived(now, message[start : message.index(b'"', start)])

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(False)


async def run(port: int, token: str, targets: list[tuple[str, int]]) -> None:
    """Open every stream, warm up, measure until STOP, print the result."""
    loop = asyncio.get_running_loop()
    totals = Totals(sum(count for _, count in targets))
    transports: list[asyncio.BaseTransport] = []
    opened: list[asyncio.Future[bool]] = []
    pending: list[asyncio.Future[bool]] = []
    for render_id, count in targets:
        request = (
            f"GET /v1/renders/{render_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        for _ in range(count):
            future: asyncio.Future[bool] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda f=future, r=request: SseStream(r, totals, f),  # type: ignore[misc]
                "127.0.0.1",
                port,
            )
            transports.append(transport)
            opened.append(future)
            pending.append(future)
            if len(pending) >= OPEN_BATCH:  # pace the opening: the edge opens upstreams
                await asyncio.wait_for(asyncio.gather(*pending), timeout=OPEN_TIMEOUT)
                pending.clear()
    results = await asyncio.wait_for(asyncio.gather(*opened), timeout=OPEN_TIMEOUT)
    await report(totals, results)
    for each in transports:
        each.close()


def main() -> None:
    """Entry point: PORT TOKEN SPEC."""
    port, token, targets = client_arguments(sys.argv[1:])
    try:
        import uvloop

        uvloop.run(run(port, token, targets))
    except ImportError:
        asyncio.run(run(port, token, targets))


if __name__ == "__main__":
    main()
