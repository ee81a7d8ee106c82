"""Progress fan-out benchmark: the progress service beside a bare grpc.aio push server.

`python -m bench.progress_fanout` (also run by `make bench`). Processes:

- progress (`python -m services.progress`) on a private redis-server and an SQLite file
  holding the renders' rows (a temporary directory, removed at the end);
- a bare grpc.aio server (bench/bare_server.py) with the same server options speaking the
  same WatchRender RPC, no interceptor and no Redis: it pushes events it makes itself;
- a client process (bench/grpc_clients.py) holding all the watchers (spread over 16
  channels); it measures, per received event, now minus the send timestamp carried in the
  event's `message` (nanoseconds since the epoch, taken just before the publish script,
  or just before the bare server's push);
- this process: sets everything up, publishes events like a worker (`publish_event`) at
  a steady rate, reads Redis' CLIENT LIST, the servers' RSS and CPU time, prints the table.

Two patterns, on each server: "spread" (RENDERS renders x WATCHERS watchers each, events
round-robin over the renders at RATE per second) and "burst" (1,000 watchers of one
render, one event every 0.5 s). Targets (ARCHITECTURE.md): spread p99 under 5 ms; burst
p99 within 1.5x of the bare server's; Redis connections constant as watchers grow.
Reported besides: the serving CPU per delivered event (the server process, and for
progress its redis-server), from /proc, which the machine's load skews less than latency.

Options: `--renders N --watchers N --rate N --seconds S --burst-watchers N --bursts N`,
`--strict` (exit 1 on a MISS). Bounded: every wait has a deadline and the whole run a
wall-clock limit (`--limit`, 170 s), after which every child is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.client_process import Child, cpu_seconds, rss_mb
from bench.fanout_stack import (
    JWT_SECRET,
    USER,
    Publisher,
    bench_arguments,
    opened,
    run_bounded,
    wait_serving,
)
from bench.progress_report import report
from render_common.auth import mint_token
from render_common.config import Settings
from tests.support.processes import free_port

Warm = Callable[[list[str]], Awaitable[None]]
Push = Callable[[list[str], float, float], Awaitable[int]]


@dataclass
class Server:
    """One side of the bench: where its streams are, and how events reach them."""

    label: str
    port: int
    pid: int  # the process holding the streams
    redis_pid: int | None  # its redis-server, if any
    warm: Warm  # one untimed event to each render's streams
    push: Push  # timed events round-robin over the renders: (ids, rate, seconds) -> sent


async def _phase(
    server: Server,
    name: str,
    targets: list[tuple[str, int]],
    pace: tuple[float, float],
    count_redis: Callable[[], Awaitable[int]],
) -> dict[str, Any]:
    """Open the watchers in a client process, push at `pace` (events per second, seconds),
    and collect the client's figures."""
    token = mint_token(Settings(jwt_secret=JWT_SECRET), USER)
    spec = json.dumps(targets)
    client = await Child.start("-m", "bench.grpc_clients", str(server.port), token, spec)
    ids = [render_id for render_id, _ in targets]
    try:
        ready = (await client.expect("OPEN", 180)).split()
        await server.warm(ids)
        await client.expect("READY", 180)
        rss = rss_mb(server.pid)
        connections = await count_redis()
        pids = [server.pid] + ([server.redis_pid] if server.redis_pid else [])
        cpu = [cpu_seconds([pid]) for pid in pids]
        sent = await server.push(ids, *pace)
        await asyncio.sleep(1.0)  # let the last events land
        cpu = [cpu_seconds([pid]) - before for pid, before in zip(pids, cpu, strict=True)]
        result = await client.result()
    finally:
        await client.stop()
    expected = sent * (sum(count for _, count in targets) // len(targets))
    return {
        "server": server.label,
        "phase": name,
        "open": int(ready[0]),
        "failed": int(ready[1]),
        "expected": expected,
        **result,
        "rss_mb": rss,
        "redis_connections": connections,
        "cpu_us": [seconds * 1e6 / max(expected, 1) for seconds in cpu],
    }


def _bare_pushes(child: Child) -> tuple[Warm, Push]:
    """The bare server's warm and push: commands to its stdin."""

    async def warm(_ids: list[str]) -> None:
        await child.send("warm")
        await child.expect("DONE", 60)

    async def push(_ids: list[str], rate: float, seconds: float) -> int:
        await child.send(f"push {rate} {seconds}")
        await child.expect("DONE", seconds + 60)
        return int(rate * seconds)

    return warm, push


async def run(args: argparse.Namespace) -> int:
    """The whole benchmark; returns the exit status."""
    spread_targets = [(str(uuid.uuid4()), args.watchers) for _ in range(args.renders)]
    burst_targets = [(str(uuid.uuid4()), args.burst_watchers)]
    ids = [render_id for render_id, _ in spread_targets + burst_targets]
    async with opened("bench-progress-", ids) as stack:

        async def redis_clients() -> int:
            return len(await stack.redis.client_list()) - 1  # minus this process' own

        ports = free_port(), free_port()
        progress = await stack.start(
            "-m", "services.progress", env=stack.env(PROGRESS_PORT=str(ports[0]))
        )
        bare = await stack.start("-m", "bench.bare_server", str(ports[1]))
        await wait_serving(ports[0], 120)
        await bare.expect("READY", 30)
        idle_connections = await redis_clients()
        idle_rss = {"progress": rss_mb(progress.pid), "bare": rss_mb(bare.pid)}
        publisher = Publisher(stack.redis)
        servers = [
            Server("bare", ports[1], bare.pid, None, *_bare_pushes(bare)),
            Server(
                "progress",
                ports[0],
                progress.pid,
                stack.redis_pid,
                publisher.warm,
                publisher.steady,
            ),
        ]
        phases = (
            ("spread", spread_targets, (args.rate, args.seconds)),
            ("burst", burst_targets, (2.0, args.bursts / 2.0)),  # one event every 0.5 s
        )
        rows = []
        for server in servers:
            for phase, targets, pace in phases:
                watchers = sum(count for _, count in targets)
                print(f"-- {server.label} {phase}: {watchers} watchers", flush=True)
                rows.append(await _phase(server, phase, targets, pace, redis_clients))
    return report(rows, idle_connections, idle_rss, args.strict)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = bench_arguments(__doc__.splitlines()[0], renders=1000, limit=170.0)
    parser.add_argument("--burst-watchers", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=12, help="events, one every 0.5 s")
    return run_bounded(run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
