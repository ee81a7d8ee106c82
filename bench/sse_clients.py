"""SSE client process for bench/sse_fanout.py: many raw HTTP/1.1 event streams, one loop.

`python -m bench.sse_clients PORT TOKEN SPEC` where SPEC is a JSON list of
[render_id, watchers]. Each stream is a bare asyncio Protocol (no HTTP library: the
client must not be what is measured). It speaks the same line protocol as the gRPC client
of bench/progress_fanout.py: prints `OPEN ok failed` once every stream has its first
message, `READY` once every stream has seen the `warm` event, records until `STOP` arrives
on stdin, then prints `RESULT {"received": n, "latencies": [...ms]}`, where a latency is
the arrival time (time.time_ns(), taken when the bytes reach the protocol) minus the
publish time carried in the event's `message`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import cast

MESSAGE = b'"message":"'
OPEN_BATCH = 100


class Totals:
    """What all the streams of this process saw."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self.latencies: list[float] = []
        self.warmed = 0
        self.all_warm = asyncio.Event()
        self.measuring = False


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
        value = message[start : message.index(b'"', start)]
        totals = self.totals
        if value == b"warm":
            totals.warmed += 1
            if totals.warmed == totals.streams:
                totals.all_warm.set()
        elif totals.measuring and value.isdigit():
            totals.latencies.append((now - int(value)) / 1e6)

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
                await asyncio.wait_for(asyncio.gather(*pending), timeout=120)
                pending.clear()
    results = await asyncio.wait_for(asyncio.gather(*opened), timeout=120)
    gc.collect()
    gc.freeze()
    gc.disable()  # the client's own pauses are not the edge's latency
    print(f"OPEN {sum(results)} {len(results) - sum(results)}", flush=True)
    await asyncio.wait_for(totals.all_warm.wait(), timeout=120)
    await asyncio.sleep(0.5)
    totals.measuring = True
    print("READY", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # STOP
    totals.measuring = False
    result = {"received": len(totals.latencies), "latencies": totals.latencies}
    print("RESULT " + json.dumps(result), flush=True)
    for each in transports:
        each.close()


def main() -> None:
    """Entry point: PORT TOKEN SPEC."""
    port, token, spec = sys.argv[1:4]
    targets = [(str(r), int(c)) for r, c in json.loads(spec)]
    try:
        import uvloop

        uvloop.run(run(int(port), token, targets))
    except ImportError:
        asyncio.run(run(int(port), token, targets))


if __name__ == "__main__":
    main()
