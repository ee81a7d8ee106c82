"""What the fan-out benches (progress_fanout, sse_fanout) set up alike: the renders' rows,
the wait for a server, the steady publisher and the wall-clock bound of a whole run."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.client_process import Child
from tests.support.processes import RedisServer

JWT_SECRET = "bench-secret-for-render-export-progress-0123456789"
USER = "bench-user"


async def steady(rate: float, seconds: float, emit: Callable[[int], Any]) -> int:
    """Call emit(i) at `rate` per second for `seconds`, in 5 ms ticks; returns the count."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        while sent < due:
            result = emit(sent)
            if asyncio.iscoroutine(result):
                await result
            sent += 1
        await asyncio.sleep(0.005)
    return sent


class Publisher:
    """Publishes timed and warm-up events to Redis as a worker would (`publish_event`)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.sent: list[tuple[int, str]] = []  # (publish time ns, render id) of the last steady

    async def one(self, render_id: str, message: str) -> None:
        """One `running` event carrying `message`."""
        from render_common.events import ProgressEvent, publish_event

        event = ProgressEvent(
            render_id=render_id, state="running", stage="rendering", progress=0.5, message=message
        )
        await publish_event(self.redis, event, user_id=USER)

    async def warm(self, render_ids: list[str]) -> None:
        """One untimed event (`warm`) per render."""
        for render_id in render_ids:
            await self.one(render_id, "warm")

    async def steady(self, render_ids: list[str], rate: float, seconds: float) -> int:
        """Timed events round-robin over the renders, each carrying its publish time."""

        self.sent = []

        def emit(index: int) -> Any:
            render_id, published = render_ids[index % len(render_ids)], time.time_ns()
            self.sent.append((published, render_id))
            return self.one(render_id, str(published))

        return await steady(rate, seconds, emit)


async def wait_serving(port: int, limit: float = 30) -> None:
    """Wait until the gRPC server on `port` answers its health check SERVING."""
    deadline = time.monotonic() + limit
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} did not start")
            await asyncio.sleep(0.1)


async def create_rows(database_url: str, render_ids: list[str]) -> None:
    """Migrate the database and add one running render of USER per id."""
    from sqlalchemy import insert

    from render_common.db.engine import create_engine
    from render_common.db.migrate import migrate
    from render_common.db.schema import video_renders

    await migrate(database_url)
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    rows = [
        {
            "id": render_id,
            "user_id": USER,
            "project_id": "bench",
            "status": "running",
            "stage": "rendering",
            "progress": 0.0,
            "format": "mp4",
            "quality": "low",
            "engine": "ssr",
            "requested_engine": "default",
            "spec": {"scenes": []},
            "scene_count": 1,
            "frames_total": 300,
            "attempt": 1,
            "retry_count": 0,
            "cancel_requested": False,
            "created_at": now,
            "updated_at": now,
        }
        for render_id in render_ids
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(video_renders), rows)
    await engine.dispose()


@dataclass
class Stack:
    """A bench's private redis-server, SQLite database and working directory, and the
    child processes it started (stopped when the stack closes)."""

    workdir: Path
    redis_server: RedisServer
    redis: Any = None  # a client of redis_server, for publishing and CLIENT LIST
    children: list[Child] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        """The renders' SQLite database."""
        return f"sqlite+aiosqlite:///{self.workdir / 'render.db'}"

    @property
    def redis_pid(self) -> int:
        """The redis-server's process id."""
        assert self.redis_server.process is not None
        return self.redis_server.process.pid

    def env(self, **more: str) -> dict[str, str]:
        """The environment of a service under test (`more`: e.g. PROGRESS_PORT)."""
        return {
            **os.environ,
            "REDIS_URL": self.redis_server.url,
            "DATABASE_URL": self.database_url,
            "BIND_HOST": "127.0.0.1",
            "JWT_SECRET": JWT_SECRET,
            "RENDER_DATA_DIR": str(self.workdir),
            "LOG_LEVEL": "WARNING",
            **more,
        }

    async def start(self, *args: str, env: dict[str, str] | None = None) -> Child:
        """A child process (see `Child.start`), stopped with the stack."""
        child = await Child.start(*args, env=env)
        self.children.append(child)
        return child


@asynccontextmanager
async def opened(prefix: str, render_ids: list[str]) -> AsyncIterator[Stack]:
    """A Stack whose database holds a running render of USER per id; everything is
    stopped and removed on exit."""
    from render_common.redis_client import create_redis

    redis_server = RedisServer()
    redis_server.start()
    stack = Stack(Path(tempfile.mkdtemp(prefix=prefix)), redis_server)
    try:
        stack.redis = create_redis(redis_server.url)
        await create_rows(stack.database_url, render_ids)
        yield stack
    finally:
        for child in stack.children:
            await child.stop()
        if stack.redis is not None:
            await stack.redis.aclose()
        redis_server.close()
        shutil.rmtree(stack.workdir, ignore_errors=True)


def bench_arguments(description: str, *, renders: int, limit: float) -> argparse.ArgumentParser:
    """The options both fan-out benches take (each adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--renders", type=int, default=renders)
    parser.add_argument("--watchers", type=int, default=10, help="streams per render")
    parser.add_argument("--rate", type=float, default=200.0, help="timed events per second")
    parser.add_argument("--seconds", type=float, default=8.0, help="of timed events")
    parser.add_argument("--limit", type=float, default=limit, help="wall-clock limit (s)")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a MISS")
    return parser


def run_bounded(
    run: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run a bench within `args.limit` seconds; its exit status (1 past the limit)."""

    async def bounded() -> int:
        return await asyncio.wait_for(run(args), timeout=args.limit)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        print(f"benchmark exceeded its {args.limit:.0f} s limit", flush=True)
        return 1
