"""Progress fan-out benchmark: the progress service beside a bare grpc.aio push server.

`python -m bench.progress_fanout` (also run by `make bench`). Processes:

- progress (`python -m services.progress`) on a private redis-server and an SQLite file
  holding the renders' rows (a temporary directory, removed at the end);
- a bare grpc.aio server (`--bare-server`) with the same server options speaking the same
  WatchRender RPC, no interceptor and no Redis: it pushes events it makes itself;
- a client process (`--client`) holding all the watchers (spread over 16 channels); it
  measures, per received event, now minus the send timestamp carried in the event's
  `message` (nanoseconds since the epoch, taken just before the XADD, or just before the
  bare server's push);
- this process: sets everything up, publishes events like a worker (`publish_event`) at
  a steady rate, reads Redis' CLIENT LIST and the servers' RSS, prints the table.

Two patterns, on each server: "spread" (RENDERS renders x WATCHERS watchers each, events
round-robin over the renders at RATE per second) and "burst" (1,000 watchers of one
render, one event every 0.5 s). Targets (ARCHITECTURE.md): spread p99 under 5 ms; burst
p99 within 1.5x of the bare server's; Redis connections constant as watchers grow.

Options: `--renders N --watchers N --rate N --seconds S --burst-watchers N --bursts N`,
`--strict` (exit 1 on a MISS). Bounded: every wait has a deadline and the whole run a
wall-clock limit (`--limit`, 170 s), after which every child is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from render.v1 import progress_service_pb2, progress_service_pb2_grpc

from render_common.auth import mint_token
from render_common.config import ROOT, Settings
from tests.support.processes import RedisServer, free_port

JWT_SECRET = "bench-secret-for-render-export-progress-0123456789"
USER = "bench-user"
CHANNELS = 16
RESULT_LINE_LIMIT = 256 * 1024 * 1024  # bytes of one line from a client process
SPREAD_P99_TARGET_MS = 5.0
BURST_RATIO_TARGET = 1.5


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# ------------------------------------------------------------------------ bare server


async def _serve_bare(port: int) -> None:
    """WatchRender with no Redis: streams register per render; stdin commands push."""
    from render_common.server import server_options

    watchers: dict[str, list[asyncio.Queue[progress_service_pb2.WatchRenderResponse]]] = {}

    class Bare(progress_service_pb2_grpc.ProgressServiceServicer):
        async def WatchRender(self, request: Any, context: Any) -> Any:
            queue: asyncio.Queue[progress_service_pb2.WatchRenderResponse] = asyncio.Queue()
            watchers.setdefault(request.render_id, []).append(queue)
            try:
                yield progress_service_pb2.WatchRenderResponse(
                    event=progress_service_pb2.RenderEvent(render_id=request.render_id)
                )
                while True:
                    yield await queue.get()
            finally:
                watchers[request.render_id].remove(queue)
                if not watchers[request.render_id]:
                    del watchers[request.render_id]

        async def WatchRenders(self, request: Any, context: Any) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this bench")
            yield  # an async generator, like WatchRender

    server = grpc.aio.server(options=server_options(Settings()))
    progress_service_pb2_grpc.add_ProgressServiceServicer_to_server(Bare(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    gc.freeze()  # as services.progress does
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("READY", flush=True)
    while line := (await reader.readline()).decode().strip():
        command, *args = line.split()
        if command == "warm":  # one untimed event to every watched render
            for render_id in list(watchers):
                _bare_push(watchers, render_id, 0, "warm")
            print("DONE", flush=True)
        if command == "push":  # push <rate per second> <seconds>
            rate, seconds = float(args[0]), float(args[1])
            await _steady(rate, seconds, partial(_bare_push_nth, watchers, list(watchers)))
            print("DONE", flush=True)
    await server.stop(0)


def _bare_push_nth(watchers: dict[str, list[Any]], ids: list[str], index: int) -> None:
    _bare_push(watchers, ids[index % len(ids)], index)


def _bare_push(
    watchers: dict[str, list[Any]], render_id: str, index: int, message: str = ""
) -> None:
    response = progress_service_pb2.WatchRenderResponse(
        event=progress_service_pb2.RenderEvent(
            event_id=f"{index}-0", render_id=render_id, message=message or str(time.time_ns())
        )
    )
    for queue in watchers.get(render_id, ()):
        queue.put_nowait(response)


async def _steady(rate: float, seconds: float, emit: Any) -> int:
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


# ----------------------------------------------------------------------------- client


async def _client(port: int, token: str, targets: list[tuple[str, int]]) -> None:
    """Open every watcher, report READY, record latencies until STOP, print a summary."""
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.so_reuseport", 0)])
        for _ in range(CHANNELS)
    ]
    stubs = [progress_service_pb2_grpc.ProgressServiceStub(c) for c in channels]
    latencies: list[float] = []
    received = 0
    warmed = 0
    all_warm = asyncio.Event()
    measuring = False
    metadata = (("authorization", f"Bearer {token}"),)

    async def run(call: Any, opened: asyncio.Future[bool]) -> None:
        nonlocal received, warmed
        try:
            first = True
            async for response in call:
                if first:
                    opened.set_result(True)
                    first = False
                    continue
                now = time.time_ns()
                if response.event.message == "warm":
                    warmed += 1
                    if warmed == len(calls):
                        all_warm.set()
                    continue
                if measuring and response.event.message:
                    latencies.append((now - int(response.event.message)) / 1e6)
                    received += 1
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            if not opened.done():
                opened.set_result(False)

    calls: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    opened: list[asyncio.Future[bool]] = []
    index = 0
    loop = asyncio.get_running_loop()
    for render_id, count in targets:
        for _ in range(count):
            call = stubs[index % CHANNELS].WatchRender(
                progress_service_pb2.WatchRenderRequest(render_id=render_id), metadata=metadata
            )
            future: asyncio.Future[bool] = loop.create_future()
            calls.append(call)
            opened.append(future)
            tasks.append(asyncio.create_task(run(call, future)))
            index += 1
            if index % 500 == 0:
                await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*opened), timeout=90)
    gc.collect()
    gc.freeze()  # the measuring client's own pauses are not the server's latency
    gc.disable()
    print(f"OPEN {sum(results)} {len(results) - sum(results)}", flush=True)
    # Warm-up: one event per render reaches every watcher before measuring, so the
    # servers have finished opening (history replay) when the figures start.
    await asyncio.wait_for(all_warm.wait(), timeout=90)
    await asyncio.sleep(0.5)
    measuring = True
    print("READY", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # STOP
    measuring = False
    summary = {
        "received": received,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "latencies": latencies,  # for a caller merging several clients (bench/sse_fanout)
    }
    print("RESULT " + json.dumps(summary), flush=True)
    for call in calls:
        call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()


# ------------------------------------------------------------------------- orchestration


class Child:
    """A child process speaking line commands over stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
            # RESULT carries every latency (sse_fanout pools them): megabytes on one line.
            limit=RESULT_LINE_LIMIT,
        )
        return cls(process)

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, prefix: str, limit: float) -> str:
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), limit)
            if not raw:
                raise RuntimeError(f"child exited while waiting for {prefix}")
            line = raw.decode().strip()
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def _wait_serving(port: int, limit: float = 30) -> None:
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


async def _create_rows(database_url: str, render_ids: list[str]) -> None:
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


async def _phase(
    name: str,
    client_args: list[str],
    token: str,
    targets: list[tuple[str, int]],
    push: Any,
    warm: Any,
    server_pid: int,
    count_redis: Any,
) -> dict[str, Any]:
    """Open the watchers in a client process, push, and collect the client's figures."""
    spec = json.dumps(targets)
    client = await Child.start("-m", "bench.progress_fanout", "--client", *client_args, token, spec)
    try:
        ready = (await client.expect("OPEN", 120)).split()
        ok, failed = int(ready[0]), int(ready[1])
        await warm()
        await client.expect("READY", 120)
        rss = _rss_mb(server_pid)
        connections = await count_redis()
        sent = await push()
        await asyncio.sleep(1.0)  # let the last events land
        await client.send("STOP")
        result = json.loads(await client.expect("RESULT", 60))
    finally:
        await client.stop()
    watchers = sum(count for _, count in targets)
    expected = sent * (watchers // len(targets))
    return {
        "phase": name,
        "open": ok,
        "failed": failed,
        "expected": expected,
        **result,
        "rss_mb": rss,
        "redis_connections": connections,
    }


async def run(args: argparse.Namespace) -> int:
    """The whole benchmark; returns the exit status."""
    from render_common.events import ProgressEvent, publish_event
    from render_common.redis_client import create_redis

    workdir = Path(tempfile.mkdtemp(prefix="bench-progress-"))
    redis_server = RedisServer()
    redis_server.start()
    children: list[Child] = []
    redis = create_redis(redis_server.url)
    try:
        database_url = f"sqlite+aiosqlite:///{workdir / 'render.db'}"
        spread_ids = [str(uuid.uuid4()) for _ in range(args.renders)]
        burst_id = str(uuid.uuid4())
        await _create_rows(database_url, [*spread_ids, burst_id])
        settings = Settings(jwt_secret=JWT_SECRET)
        token = mint_token(settings, USER)

        async def redis_clients() -> int:
            return len(await redis.client_list()) - 1  # minus this process' own

        async def publish_steady(render_ids: list[str], rate: float, seconds: float) -> int:
            def emit(index: int) -> Any:
                return publish_event(
                    redis,
                    ProgressEvent(
                        render_id=render_ids[index % len(render_ids)],
                        state="running",
                        stage="rendering",
                        progress=0.5,
                        message=str(time.time_ns()),
                    ),
                    user_id=USER,
                )

            return await _steady(rate, seconds, emit)

        progress_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "REDIS_URL": redis_server.url,
            "DATABASE_URL": database_url,
            "PROGRESS_PORT": str(progress_port),
            "BIND_HOST": "127.0.0.1",
            "JWT_SECRET": JWT_SECRET,
            "RENDER_DATA_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
        }
        progress = await Child.start("-m", "services.progress", env=env)
        children.append(progress)
        bare = await Child.start("-m", "bench.progress_fanout", "--bare-server", str(bare_port))
        children.append(bare)
        await _wait_serving(progress_port)
        await bare.expect("READY", 30)
        idle_connections = await redis_clients()
        idle_rss = {"progress": _rss_mb(progress.process.pid), "bare": _rss_mb(bare.process.pid)}

        async def bare_warm() -> None:
            await bare.send("warm")
            await bare.expect("DONE", 60)

        async def publish_warm(render_ids: list[str]) -> None:
            for render_id in render_ids:
                await publish_event(
                    redis,
                    ProgressEvent(
                        render_id=render_id, state="running", stage="rendering", message="warm"
                    ),
                    user_id=USER,
                )

        async def bare_push(rate: float, seconds: float) -> int:
            await bare.send(f"push {rate} {seconds}")
            await bare.expect("DONE", seconds + 60)
            return int(rate * seconds)

        spread_targets = [(r, args.watchers) for r in spread_ids]
        burst_targets = [(burst_id, args.burst_watchers)]
        burst_rate, burst_seconds = 2.0, args.bursts / 2.0
        rows = []
        for label, port, pid, push_spread, push_burst in (
            (
                "bare",
                bare_port,
                bare.process.pid,
                lambda: bare_push(args.rate, args.seconds),
                lambda: bare_push(burst_rate, burst_seconds),
            ),
            (
                "progress",
                progress_port,
                progress.process.pid,
                lambda: publish_steady(spread_ids, args.rate, args.seconds),
                lambda: publish_steady([burst_id], burst_rate, burst_seconds),
            ),
        ):
            for phase, targets, push in (
                ("spread", spread_targets, push_spread),
                ("burst", burst_targets, push_burst),
            ):
                print(f"-- {label} {phase}: {sum(c for _, c in targets)} watchers", flush=True)
                ids = [render_id for render_id, _ in targets]
                warm = bare_warm if label == "bare" else partial(publish_warm, ids)
                row = await _phase(
                    phase, [str(port)], token, targets, push, warm, pid, redis_clients
                )
                row["server"] = label
                rows.append(row)
        return _report(rows, idle_connections, idle_rss, args)
    finally:
        for child in children:
            await child.stop()
        await redis.aclose()
        redis_server.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _report(
    rows: list[dict[str, Any]],
    idle_connections: int,
    idle_rss: dict[str, float],
    args: argparse.Namespace,
) -> int:
    print()
    print(
        f"{'server':<9}{'phase':<8}{'watchers':>9}{'failed':>7}{'received':>10}{'expected':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'RSS MB':>9}{'redis conns':>12}"
    )
    by = {(r["server"], r["phase"]): r for r in rows}
    for r in rows:
        conns = r["redis_connections"] if r["server"] == "progress" else "-"
        print(
            f"{r['server']:<9}{r['phase']:<8}{r['open']:>9}{r['failed']:>7}{r['received']:>10}"
            f"{r['expected']:>10}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['max']:>9.1f}"
            f"{r['rss_mb']:>9.0f}{conns!s:>12}"
        )
    print(
        f"idle: RSS progress {idle_rss['progress']:.0f} MB, bare {idle_rss['bare']:.0f} MB; "
        f"redis connections held by progress {idle_connections}"
    )
    spread, burst = by[("progress", "spread")], by[("progress", "burst")]
    bare_spread, bare_burst = by[("bare", "spread")], by[("bare", "burst")]
    watchers = spread["open"]
    per_stream_kb = (spread["rss_mb"] - idle_rss["progress"]) * 1024 / max(watchers, 1)
    print(f"progress memory per open stream: {per_stream_kb:.1f} KB")
    checks = [
        (
            "spread p99 < 5 ms",
            spread["p99"] < SPREAD_P99_TARGET_MS,
            f"{spread['p99']:.2f} ms (bare {bare_spread['p99']:.2f} ms, "
            f"ratio {spread['p99'] / bare_spread['p99']:.2f}x)",
        ),
        (
            "burst p99 <= 1.5x bare",
            burst["p99"] <= BURST_RATIO_TARGET * bare_burst["p99"],
            f"{burst['p99']:.2f} ms vs bare {bare_burst['p99']:.2f} ms "
            f"(ratio {burst['p99'] / bare_burst['p99']:.2f}x)",
        ),
        (
            "redis connections constant",
            len({idle_connections, spread["redis_connections"], burst["redis_connections"]}) <= 1
            or max(spread["redis_connections"], burst["redis_connections"])
            <= Settings().progress_readers + Settings().progress_redis_pool_size,
            f"idle {idle_connections}, {watchers} watchers {spread['redis_connections']}, "
            f"burst {burst['redis_connections']}",
        ),
        (
            "no loss",
            all(r["received"] == r["expected"] and r["failed"] == 0 for r in rows),
            ", ".join(f"{r['server']}/{r['phase']} {r['received']}/{r['expected']}" for r in rows),
        ),
    ]
    missed = False
    for name, ok, detail in checks:
        missed |= not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {detail}")
    return 1 if missed and args.strict else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (also the child modes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare-server", action="store_true")
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--renders", type=int, default=1000)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="spread events per second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--burst-watchers", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=12)
    parser.add_argument("--limit", type=float, default=170.0, help="wall-clock limit (s)")
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args(argv)
    if args.bare_server:
        asyncio.run(_serve_bare(int(args.rest[0])))
        return 0
    if args.client:
        port, token, spec = args.rest
        targets = [(str(r), int(c)) for r, c in json.loads(spec)]
        asyncio.run(_client(int(port), token, targets))
        return 0

    async def bounded() -> int:
        return await asyncio.wait_for(run(args), timeout=args.limit)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        print(f"benchmark exceeded its {args.limit:.0f} s limit", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
