"""SSE fan-out benchmark: 5,000 event streams through one edge beside the bare gRPC path.

`python -m bench.sse_fanout` (also run by `make bench`). Processes:

- progress (`python -m services.progress`) on a private redis-server and an SQLite file
  holding the renders' rows, and one edge (`python -m services.edge`) in front of it;
- "grpc" phase: CLIENTS processes of the gRPC client of bench/progress_fanout.py hold
  WATCHERS x RENDERS WatchRender streams straight on progress (the bare gRPC path);
- "sse" phase: as many processes of bench/sse_clients.py (raw asyncio HTTP/1.1, so the
  client side is not the bottleneck) hold the same number of `GET /v1/renders/{id}/events`
  streams on the edge, for another set of renders of the same size (the edge shares one
  upstream WatchRender per render between its streams, so progress holds RENDERS);
- this process publishes events like a worker (`publish_event`) at RATE per second,
  round-robin over the renders (progress_fanout's "spread" pattern), each carrying its
  publish time (time.time_ns()) in `message`; every client measures arrival minus that
  (one machine, one clock), and p99 is over all (event, stream) arrivals.

Each path runs ROUNDS times, alternating (grpc, sse, sse, grpc, ...), and its rounds are
pooled, so a burst of load from elsewhere hits both. Targets (issue 16): sse p99 under the
grpc p99 + 10 ms. Reported besides: memory per open stream = (edge RSS with the streams
open - edge RSS idle) / streams, and the serving CPU per delivery (progress; progress +
edge for sse), which the machine's load does not skew as it skews latency. Options:
`--renders N --watchers N --clients N --rounds N --rate N --seconds S --strict --limit S`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.progress_fanout import (
    USER,
    Child,
    _create_rows,
    _percentile,
    _rss_mb,
    _steady,
    _wait_serving,
)
from render_common.auth import mint_token
from render_common.config import Settings
from tests.support.processes import RedisServer, free_port

JWT_SECRET = "bench-secret-for-render-export-progress-0123456789"
P99_OVER_GRPC_TARGET_MS = 10.0


def raise_fd_limit() -> int:
    """Raise this process' (and so its children's) open-file limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


class Publisher:
    """Publishes timed and warm-up events to Redis as a worker would."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def one(self, render_id: str, message: str) -> None:
        from render_common.events import ProgressEvent, publish_event

        event = ProgressEvent(
            render_id=render_id, state="running", stage="rendering", progress=0.5, message=message
        )
        await publish_event(self.redis, event, user_id=USER)

    async def warm(self, render_ids: list[str]) -> None:
        for render_id in render_ids:
            await self.one(render_id, "warm")

    async def steady(self, render_ids: list[str], rate: float, seconds: float) -> int:
        def emit(index: int) -> Any:
            return self.one(render_ids[index % len(render_ids)], str(time.time_ns()))

        return await _steady(rate, seconds, emit)


async def _wait_http(url: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer")
            await asyncio.sleep(0.1)


async def phase(
    name: str,
    client: list[str],
    token: str,
    targets: list[tuple[str, int]],
    publisher: Publisher,
    server_pids: list[int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Open the streams in CLIENTS processes running `client`, push, merge their latencies.

    `client`: the module arguments of a client speaking OPEN / READY / STOP / RESULT.
    `server_pids`: the serving processes, the last one holding the streams (its RSS).
    """
    server_pid = server_pids[-1]
    idle_rss = _rss_mb(server_pid)
    shares = [targets[i :: args.clients] for i in range(args.clients)]
    children = [await Child.start(*client, token, json.dumps(share)) for share in shares if share]
    try:
        opened = [(await c.expect("OPEN", 180)).split() for c in children]
        await publisher.warm([render_id for render_id, _ in targets])
        for child in children:
            await child.expect("READY", 120)
        open_rss = _rss_mb(server_pid)
        cpu = _cpu_seconds(server_pids)
        sent = await publisher.steady([r for r, _ in targets], args.rate, args.seconds)
        await asyncio.sleep(1.0)
        cpu = _cpu_seconds(server_pids) - cpu
        for child in children:
            await child.send("STOP")
        results = [json.loads(await c.expect("RESULT", 60)) for c in children]
    finally:
        for child in children:
            await child.stop()
    streams = sum(int(ok) for ok, _ in opened)
    return {
        "phase": name,
        "open": streams,
        "failed": sum(int(failed) for _, failed in opened),
        "latencies": [value for result in results for value in result["latencies"]],
        "expected": sent * args.watchers,
        "cpu_s": cpu,
        "rss_mb": open_rss,
        "idle_rss_mb": idle_rss,
        "kb_per_stream": (open_rss - idle_rss) * 1024 / max(streams, 1),
    }


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one path as one row: latencies and counts summed, memory of round 1."""
    latencies = [value for row in rows for value in row["latencies"]]
    expected = sum(row["expected"] for row in rows)
    return {
        **rows[0],
        "open": min(row["open"] for row in rows),
        "failed": sum(row["failed"] for row in rows),
        "received": len(latencies),
        "expected": expected,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "p99s": [_percentile(row["latencies"], 0.99) for row in rows],
        "max": max(latencies) if latencies else float("nan"),
        "cpu_us": sum(row["cpu_s"] for row in rows) * 1e6 / max(len(latencies), 1),
    }


def _env(redis_url: str, database_url: str, workdir: Path, ports: dict[str, int]) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "PROGRESS_PORT": str(ports["progress"]),
        "EDGE_PORT": str(ports["edge"]),
        "PROGRESS_ADDR": f"127.0.0.1:{ports['progress']}",
        "RENDER_API_ADDR": f"127.0.0.1:{ports['unused']}",
        "BIND_HOST": "127.0.0.1",
        "JWT_SECRET": JWT_SECRET,
        "RENDER_DATA_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
    }


async def run(args: argparse.Namespace) -> int:
    """The whole benchmark; returns the exit status."""
    from render_common.redis_client import create_redis

    fd_limit = raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    redis_server = RedisServer()
    redis_server.start()
    redis = create_redis(redis_server.url)
    children: list[Child] = []
    try:
        database_url = f"sqlite+aiosqlite:///{workdir / 'render.db'}"
        grpc_ids = [str(uuid.uuid4()) for _ in range(args.renders)]
        sse_ids = [str(uuid.uuid4()) for _ in range(args.renders)]
        await _create_rows(database_url, [*grpc_ids, *sse_ids])
        token = mint_token(Settings(jwt_secret=JWT_SECRET), USER)
        ports = {"progress": free_port(), "edge": free_port(), "unused": free_port()}
        env = _env(redis_server.url, database_url, workdir, ports)
        progress = await Child.start("-m", "services.progress", env=env)
        children.append(progress)
        edge = await Child.start("-m", "services.edge", env=env)
        children.append(edge)
        await _wait_serving(ports["progress"], 120)
        await _wait_http(f"http://127.0.0.1:{ports['edge']}/healthz", 120)
        publisher = Publisher(redis)

        paths = {
            "grpc": (
                ["-m", "bench.progress_fanout", "--client", str(ports["progress"])],
                grpc_ids,
                [progress.process.pid],
            ),
            "sse": (
                ["-m", "bench.sse_clients", str(ports["edge"])],
                sse_ids,
                [progress.process.pid, edge.process.pid],
            ),
        }
        rows: dict[str, list[dict[str, Any]]] = {"grpc": [], "sse": []}
        for index in range(args.rounds):  # alternating, so a load burst hits both paths
            for name in ("grpc", "sse") if index % 2 == 0 else ("sse", "grpc"):
                client, ids, pids = paths[name]
                print(
                    f"-- round {index + 1} {name}: {len(ids) * args.watchers} streams", flush=True
                )
                targets = [(r, args.watchers) for r in ids]
                rows[name].append(await phase(name, client, token, targets, publisher, pids, args))
        grpc_row, sse_row = pooled(rows["grpc"]), pooled(rows["sse"])
        return _report(grpc_row, sse_row, fd_limit, args)
    finally:
        for child in children:
            await child.stop()
        await redis.aclose()
        redis_server.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _report(
    grpc_row: dict[str, Any], sse_row: dict[str, Any], fd_limit: int, args: argparse.Namespace
) -> int:
    print()
    print(
        f"{'path':<6}{'streams':>9}{'failed':>7}{'received':>10}{'expected':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'RSS MB':>9}{'CPU us/delivery':>17}  p99 by round"
    )
    for r in (grpc_row, sse_row):
        print(
            f"{r['phase']:<6}{r['open']:>9}{r['failed']:>7}{r['received']:>10}{r['expected']:>10}"
            f"{r['p50']:>9.2f}{r['p99']:>9.2f}{r['max']:>9.1f}{r['rss_mb']:>9.0f}"
            f"{r['cpu_us']:>17.1f}  {', '.join(f'{v:.1f}' for v in r['p99s'])}"
        )
    over = sse_row["p99"] - grpc_row["p99"]
    print(
        f"edge RSS idle {sse_row['idle_rss_mb']:.0f} MB, with {sse_row['open']} streams "
        f"{sse_row['rss_mb']:.0f} MB: {sse_row['kb_per_stream']:.1f} KB per open stream "
        f"(progress, grpc phase: {grpc_row['kb_per_stream']:.1f} KB); open-file limit "
        f"{fd_limit}; load average {os.getloadavg()[0]:.1f}"
    )
    checks = [
        (
            f"sse p99 < grpc p99 + {P99_OVER_GRPC_TARGET_MS:.0f} ms",
            over < P99_OVER_GRPC_TARGET_MS,
            f"sse {sse_row['p99']:.2f} ms, grpc {grpc_row['p99']:.2f} ms (+{over:.2f} ms)",
        ),
        (
            "every stream open, no loss",
            all(r["failed"] == 0 and r["received"] == r["expected"] for r in (grpc_row, sse_row)),
            ", ".join(
                f"{r['phase']} {r['open']} open, {r['received']}/{r['expected']}"
                for r in (grpc_row, sse_row)
            ),
        ),
    ]
    missed = False
    for name, ok, detail in checks:
        missed |= not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {detail}")
    return 1 if missed and args.strict else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=500)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="client processes per path")
    parser.add_argument("--rounds", type=int, default=2, help="phases per path, alternating")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--limit", type=float, default=600.0, help="wall-clock limit (s)")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)

    async def bounded() -> int:
        return await asyncio.wait_for(run(args), timeout=args.limit)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        print(f"benchmark exceeded its {args.limit:.0f} s limit", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
