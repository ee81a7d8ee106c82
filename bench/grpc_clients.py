"""gRPC client process of the fan-out benches: many WatchRender streams on one loop.

`python -m bench.grpc_clients PORT TOKEN SPEC` where SPEC is a JSON list of
[render_id, watchers]. The streams are spread over CHANNELS channels; each stream's first
message opens it, and every later one is timed by its `message` (bench/client_process.py
has the protocol: OPEN, READY, STOP, RESULT).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import grpc
from render.v1 import progress_service_pb2, progress_service_pb2_grpc

from bench.client_process import OPEN_TIMEOUT, Totals, client_arguments, report

CHANNELS = 16


async def _watch(call: Any, totals: Totals, opened: asyncio.Future[bool]) -> None:
    """One stream: its first message opens it, the others arrive."""
    try:
        async for response in call:
            now = time.time_ns()
            if not opened.done():
                opened.set_result(True)
            else:
                totals.arrived(now, response.event.message)
    except (grpc.aio.AioRpcError, asyncio.CancelledError):
        if not opened.done():
            opened.set_result(False)


async def run(port: int, token: str, targets: list[tuple[str, int]]) -> None:
    """Open every watcher, then speak the client protocol; close everything."""
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.so_reuseport", 0)])
        for _ in range(CHANNELS)
    ]
    stubs = [progress_service_pb2_grpc.ProgressServiceStub(c) for c in channels]
    totals = Totals(sum(count for _, count in targets))
    metadata = (("authorization", f"Bearer {token}"),)
    loop = asyncio.get_running_loop()
    calls: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    opened: list[asyncio.Future[bool]] = []
    for render_id, count in targets:
        request = progress_service_pb2.WatchRenderRequest(render_id=render_id)
        for _ in range(count):
            call = stubs[len(calls) % CHANNELS].WatchRender(request, metadata=metadata)
            future: asyncio.Future[bool] = loop.create_future()
            calls.append(call)
            opened.append(future)
            tasks.append(asyncio.create_task(_watch(call, totals, future)))
            if len(calls) % 500 == 0:
                await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*opened), timeout=OPEN_TIMEOUT)
    await report(totals, results)
    for call in calls:
        call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()


if __name__ == "__main__":
    asyncio.run(run(*client_arguments(sys.argv[1:])))
