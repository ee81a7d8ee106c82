"""The baseline of bench/progress_fanout.py: a bare grpc.aio server pushing events itself.

`python -m bench.bare_server PORT`: the same WatchRender RPC with the same server options
as progress, but no interceptor, no Redis and no database. Every stream registers under its
render and gets a first (opening) message; commands on stdin push to them:

- `warm`: one untimed event (`message` "warm") to every watched render; answers DONE;
- `push RATE SECONDS`: events round-robin over the watched renders at RATE per second,
  each carrying its push time (time.time_ns()) in `message`; answers DONE.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
from render.v1 import progress_service_pb2, progress_service_pb2_grpc

from bench.fanout_stack import steady
from render_common.config import Settings
from render_common.server import server_options

Response = progress_service_pb2.WatchRenderResponse
Watchers = dict[str, list[asyncio.Queue[Response]]]


class Bare(progress_service_pb2_grpc.ProgressServiceServicer):
    """WatchRender from in-process queues, one per stream."""

    def __init__(self) -> None:
        self.watchers: Watchers = {}

    async def WatchRender(self, request: Any, context: Any) -> AsyncIterator[Response]:
        """An opening message, then whatever is pushed to the render."""
        queue: asyncio.Queue[Response] = asyncio.Queue()
        self.watchers.setdefault(request.render_id, []).append(queue)
        try:
            yield Response(event=progress_service_pb2.RenderEvent(render_id=request.render_id))
            while True:
                yield await queue.get()
        finally:
            self.watchers[request.render_id].remove(queue)
            if not self.watchers[request.render_id]:
                del self.watchers[request.render_id]

    def push_nth(self, render_ids: list[str], index: int) -> None:
        """The index-th timed event, round-robin over `render_ids`."""
        self.push(render_ids[index % len(render_ids)], index)

    async def WatchRenders(self, request: Any, context: Any) -> Any:
        """Not part of this bench."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this bench")
        yield  # an async generator, like WatchRender

    def push(self, render_id: str, index: int, message: str = "") -> None:
        """One event to every stream of the render (`message`: the push time by default)."""
        response = Response(
            event=progress_service_pb2.RenderEvent(
                event_id=f"{index}-0", render_id=render_id, message=message or str(time.time_ns())
            )
        )
        for queue in self.watchers.get(render_id, ()):
            queue.put_nowait(response)


async def serve(port: int) -> None:
    """Serve on `port` until stdin closes, running its commands."""
    bare = Bare()
    server = grpc.aio.server(options=server_options(Settings()))
    progress_service_pb2_grpc.add_ProgressServiceServicer_to_server(bare, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    gc.freeze()  # as services.progress does
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("READY", flush=True)
    while line := (await reader.readline()).decode().strip():
        command, *args = line.split()
        if command == "warm":
            for render_id in list(bare.watchers):
                bare.push(render_id, 0, "warm")
        if command == "push":
            rate, seconds = float(args[0]), float(args[1])
            await steady(rate, seconds, partial(bare.push_nth, list(bare.watchers)))
        print("DONE", flush=True)
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
