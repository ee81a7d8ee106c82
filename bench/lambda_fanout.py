"""Lambda fan-out: how many Lambda renders one worker process follows at once, and what
following them costs.

A real worker process (tests/support/lambda_worker.py: the deployed worker) follows
renders on a fake Remotion function in its own process (tests/support/fake_lambda_process
.py), with webhooks, against real Redis and PostgreSQL; render_api runs in this process.
Once every render has started on Lambda, for `--window` seconds while all are in flight:

- renders in flight on the worker (RUNNING rows), the worker's CPU (/proc, user+system)
  as a share of one core, and per followed render;
- Redis commands (INFO commandstats, every client) and Lambda invocations (the fake's
  count) per render per minute;
- the worker's worst event-loop lag (its "event loop lag" log lines, 50 ms probe).

Target: 500 in flight on one worker under 25% of one core, no event-loop stall > 50 ms.
Run: `python -m bench.lambda_fanout [--renders 500 --seconds 120 --window 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2_grpc
from sqlalchemy import func, select

from render_common.auth import mint_token
from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.redis_client import create_redis
from services.render_api import app as api_app
from tests.support.fake_lambda_process import FakeLambdaProcess, process_cpu_seconds
from tests.support.lambda_env import lambda_settings
from tests.support.lambda_worker import spawn, worker_environment
from tests.support.processes import RedisServer, ThrowawayDatabase
from tests.support.s3_server import S3Server
from tests.support.scenes import scene, start_request

JWT_SECRET = "bench-secret-for-render-export-lambda-0123456789"
CPU_TARGET = 0.25  # of one core
STALL_TARGET_MS = 50.0


async def count_running(api: api_app.RenderApi) -> int:
    async with api.engine.connect() as connection:
        query = select(func.count()).where(video_renders.c.status == "running")
        return int((await connection.execute(query)).scalar() or 0)


async def count_started(api: api_app.RenderApi) -> int:
    async with api.engine.connect() as connection:
        query = select(func.count()).where(video_renders.c.lambda_render_id.is_not(None))
        return int((await connection.execute(query)).scalar() or 0)


async def redis_calls(redis: Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return sum(int(value.get("calls", 0)) for value in stats.values())


def worst_lag_ms(log: Path, since: float, until: float, field: str = "max_ms") -> float:
    """The worst event-loop lag the worker logged between two epoch times (`busy_max_ms`:
    the loop thread's own CPU during its late wake-ups, without the machine's load)."""
    worst = 0.0
    for line in log.read_text(errors="replace").splitlines():
        if '"event loop lag"' not in line:
            continue
        entry = json.loads(line)
        stamp = entry.get("time") or entry.get("timestamp") or ""
        at = _epoch(stamp)
        if at is None or since <= at <= until:
            worst = max(worst, float(entry.get(field, 0.0)))
    return worst


def _epoch(stamp: Any) -> float | None:
    if isinstance(stamp, int | float):
        return float(stamp)
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


async def start_renders(api_port: int, settings: Settings, count: int) -> None:
    metadata = (("authorization", f"Bearer {mint_token(settings, 'bench-lambda')}"),)
    request = start_request(
        project_id="fanout",
        scenes=[scene("title", 30, text="Lambda"), scene("color", 30, color="#123456")],
        engine=render_pb2.ENGINE_LAMBDA,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api_port}") as channel:
        stub = render_service_pb2_grpc.RenderServiceStub(channel)
        for start in range(0, count, 100):
            batch = range(start, min(count, start + 100))
            await asyncio.gather(*(stub.StartRender(request, metadata=metadata) for _ in batch))


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    redis_server = RedisServer()
    redis_server.start()
    database = ThrowawayDatabase()
    await database.create()
    s3 = S3Server().start()
    fake = FakeLambdaProcess(s3.endpoint).start(seconds=args.seconds, seconds_max=args.seconds)
    os.environ.update(AWS_ENDPOINT_URL_LAMBDA=fake.endpoint, AWS_ENDPOINT_URL_S3=s3.endpoint)
    settings = lambda_settings(
        Settings.from_env({}).with_overrides(
            database_url=database.url,
            redis_url=redis_server.url,
            data_dir=str(work / "data"),
            jwt_secret=JWT_SECRET,
            render_timeout_seconds=args.seconds * 4,
            concurrent_render_limit=args.renders,
            daily_render_limit=args.renders,
        ),
        lambda_poll_interval_seconds=2.0,
        lambda_concurrency_limit=100_000,
        lambda_max_in_flight=args.renders,
    )
    api = await api_app.start(settings, port=0)
    redis = create_redis(redis_server.url)
    log = work / "worker.log"
    env = worker_environment(
        settings, lambda_endpoint=fake.endpoint, s3_endpoint=s3.endpoint, name="bench"
    )
    worker = spawn(env, log)
    try:
        began = time.monotonic()
        await start_renders(api.port, settings, args.renders)
        # Every render started on Lambda, early enough that none ends within the window.
        async with asyncio.timeout(args.seconds - args.window - 10):
            while True:
                if await count_started(api) >= args.renders:
                    break
                await asyncio.sleep(0.5)
        start_span = time.monotonic() - began
        figures = await _window(args, api, redis, fake, worker.pid, log)
        figures["start_span_s"] = start_span
        return figures
    finally:
        worker.terminate()
        worker.wait(30)
        await redis.aclose()
        await api.stop(0)
        fake.stop()
        s3.stop()
        await database.drop()
        redis_server.close()


async def _window(
    args: argparse.Namespace,
    api: api_app.RenderApi,
    redis: Redis,
    fake: FakeLambdaProcess,
    pid: int,
    log: Path,
) -> dict[str, Any]:
    """The figures over `--window` seconds with every render in flight."""
    in_flight_before = await count_running(api)
    cpu0, calls0, lambda0 = process_cpu_seconds(pid), await redis_calls(redis), fake.stats()
    t0, wall0 = time.monotonic(), time.time()
    await asyncio.sleep(args.window)
    cpu1, calls1, lambda1 = process_cpu_seconds(pid), await redis_calls(redis), fake.stats()
    elapsed, wall1 = time.monotonic() - t0, time.time()
    in_flight = min(in_flight_before, await count_running(api))
    status0 = lambda0["invocations"].get("status", 0)
    status1 = lambda1["invocations"].get("status", 0)
    per_minute = 60.0 / elapsed / max(1, in_flight)
    cpu_share = (cpu1 - cpu0) / elapsed
    return {
        "in_flight": in_flight,
        "cpu_share": cpu_share,
        "cpu_ms_per_render_s": cpu_share * 1000 / max(1, in_flight),
        "redis_calls_per_render_min": (calls1 - calls0) * per_minute,
        "aws_calls_per_render_min": (status1 - status0) * per_minute,
        "stall_ms": worst_lag_ms(log, wall0, wall1 + 5),
        "stall_busy_ms": worst_lag_ms(log, wall0, wall1 + 5, "busy_max_ms"),
        "load": os.getloadavg(),
        "window_s": elapsed,
    }


def report(figures: dict[str, Any], renders: int) -> bool:
    """Print the figures and whether the targets are met."""
    in_flight_ok = figures["in_flight"] >= renders
    cpu_ok = figures["cpu_share"] < CPU_TARGET
    stall_ok = figures["stall_busy_ms"] <= STALL_TARGET_MS
    load = ", ".join(f"{x:.1f}" for x in figures["load"])
    print(
        f"renders started on Lambda in {figures['start_span_s']:.1f}s; window {figures['window_s']:.1f}s"
    )
    print(
        f"renders in flight on one worker: {figures['in_flight']}  (target {renders}: {'hit' if in_flight_ok else 'MISS'})"
    )
    print(
        f"worker CPU: {figures['cpu_share']:.1%} of one core  (target < 25%: {'hit' if cpu_ok else 'MISS'})"
    )
    print(f"worker CPU per followed render: {figures['cpu_ms_per_render_s']:.3f} ms/s")
    print(f"Redis commands per render per minute: {figures['redis_calls_per_render_min']:.1f}")
    print(
        f"Lambda (getRenderProgress) calls per render per minute: {figures['aws_calls_per_render_min']:.2f}"
    )
    print(
        f"event-loop stall max: {figures['stall_busy_ms']:.1f} ms of the loop's own CPU "
        f"(target <= 50 ms: {'hit' if stall_ok else 'MISS'}); "
        f"{figures['stall_ms']:.1f} ms late by the wall clock (machine load included)"
    )
    print(f"load average: {load}")
    return bool(in_flight_ok and cpu_ok and stall_ok)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=120.0, help="each render's duration")
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lambda-") as work:
        figures = asyncio.run(measure(args, Path(work)))
    report(figures, args.renders)


if __name__ == "__main__":
    main()
