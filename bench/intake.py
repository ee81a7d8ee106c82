"""Intake benchmark: StartRender on PostgreSQL at 64 in flight beside a bare grpc.aio echo.

`python -m bench.intake` (also run by `make bench`). Each side runs in its own process:

- render_api (`python -m services.render_api`) against a private redis-server and a
  throwaway PostgreSQL database (dropped at the end), with quotas raised out of the way;
- a bare grpc.aio unary echo server with the same server options
  (`render_common.server.server_options`) and garbage-collector settings, no
  interceptor, echoing the request bytes;
- this process is the load generator: one channel per target, 64 calls in flight, the
  same request bytes and the same bearer-token rotation over the users on both sides.

Latencies on these VMs swing 2-3x with CPU idle states, so both sides are warmed up and
measured alternately (echo, intake, echo, intake, ...); the table reports the median of
the rounds, and the ratios (StartRender/echo) against the ARCHITECTURE.md bars:
throughput >= 1/3 of the echo's, p99 <= 3x the echo's. The load is spread over many
users; a single-user figure (all calls under one per-user lock, one token) is printed as
a secondary line.

Options: `--rounds N`, `--seconds S` (per round), `--users N`, `--inflight N`,
`--no-single-user`, `--strict` (exit 1 on a MISS). Setting BENCH_SERVER_WRAPPER (e.g.
"py-spy record -o /tmp/intake.svg --") runs render_api under that command, for profiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.intake_load import (
    ECHO_METHOD,
    Round,
    Rounds,
    echo_call,
    intake_call,
    measure,
    serve_echo,
)
from render_common.auth import mint_token
from render_common.config import ROOT, Settings
from tests.support.processes import RedisServer, ThrowawayDatabase, free_port
from tests.support.scenes import start_request

JWT_SECRET = "bench-secret-for-render-export-intake-0123456789"
HUGE = str(10**9)
THROUGHPUT_TARGET = 1 / 3
P99_TARGET = 3.0


# --------------------------------------------------------------------------- processes


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT if _wrapped(process) else signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _wrapped(process: subprocess.Popen[bytes]) -> bool:
    return bool(getattr(process, "bench_wrapped", False))


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def _server_pid(process: subprocess.Popen[bytes]) -> int:
    """The server's pid (the wrapper's child when BENCH_SERVER_WRAPPER is set)."""
    if not _wrapped(process):
        return process.pid
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    except OSError:
        children = []
    return int(children[0]) if children else process.pid


async def _wait_ready(
    port: int, process: subprocess.Popen[bytes], log: Path, *, health: bool
) -> None:
    deadline = time.monotonic() + 180  # start-up under load (imports, migrations) is slow
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited ({process.returncode}):\n{_read(log)}")
            try:
                if health:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                else:
                    await channel.unary_unary(ECHO_METHOD)(b"", timeout=1)
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not become ready:\n{_read(log)}")


# --------------------------------------------------------------------------- report


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(echo: list[Round], intake: list[Round], single: Round | None, inflight: int) -> bool:
    """Print the table; return whether both bars are met."""
    e_rate = _median([r.rate for r in echo])
    e_p50 = _median([r.percentile(0.50) for r in echo])
    e_p99 = _median([r.percentile(0.99) for r in echo])
    i_rate = _median([r.rate for r in intake])
    i_p50 = _median([r.percentile(0.50) for r in intake])
    i_p99 = _median([r.percentile(0.99) for r in intake])
    rate_ratio = i_rate / e_rate
    p99_ratio = i_p99 / e_p99
    print()
    print(f"per round ({inflight} in flight):")
    for index, (e, i) in enumerate(zip(echo, intake, strict=True), 1):
        print(
            f"  round {index}: echo {e.rate:6.0f}/s p50 {e.percentile(0.5):6.2f} p99 "
            f"{e.percentile(0.99):6.2f} ms | StartRender {i.rate:6.0f}/s p50 "
            f"{i.percentile(0.5):6.2f} p99 {i.percentile(0.99):6.2f} ms"
        )
    print()
    header = f"{'median of ' + str(len(echo)) + ' rounds':<30}{'calls/s':>9}{'p50 ms':>9}"
    print(f"{header}{'p99 ms':>9}{'server CPU ms/call':>20}")
    e_cpu = _median([r.cpu_ms_per_call for r in echo])
    i_cpu = _median([r.cpu_ms_per_call for r in intake])
    print(f"{'echo (bare grpc.aio)':<30}{e_rate:>9.0f}{e_p50:>9.2f}{e_p99:>9.2f}{e_cpu:>20.3f}")
    print(f"{'StartRender (PostgreSQL)':<30}{i_rate:>9.0f}{i_p50:>9.2f}{i_p99:>9.2f}{i_cpu:>20.3f}")
    if single is not None:
        print(
            f"{'  one user only':<30}{single.rate:>9.0f}"
            f"{single.percentile(0.5):>9.2f}{single.percentile(0.99):>9.2f}"
            f"{single.cpu_ms_per_call:>20.3f}"
        )
    rate_ok = rate_ratio >= THROUGHPUT_TARGET
    p99_ok = p99_ratio <= P99_TARGET
    print(
        f"throughput ratio StartRender/echo {rate_ratio:5.2f}  (target >= "
        f"{THROUGHPUT_TARGET:.2f})  {_mark(rate_ok)}"
    )
    print(
        f"p99 ratio        StartRender/echo {p99_ratio:5.2f}  (target <= {P99_TARGET:.2f})  {_mark(p99_ok)}"
    )
    errors = sum(r.errors for r in (*echo, *intake))
    if errors:
        print(f"errors: {errors}")
    return rate_ok and p99_ok


# --------------------------------------------------------------------------- main


def _api_env(
    database: ThrowawayDatabase, redis: RedisServer, port: int, logs: Path
) -> dict[str, str]:
    """render_api's environment: the private Redis and database, quotas out of the way."""
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "REDIS_URL": redis.url,
        "JWT_SECRET": JWT_SECRET,
        "BIND_HOST": "127.0.0.1",
        "RENDER_API_PORT": str(port),
        "RENDER_DATA_DIR": str(logs / "data"),
        "USER_DAILY_EXPORT_LIMIT": HUGE,
        "CONCURRENT_RENDER_LIMIT": HUGE,
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "1",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env


async def _start_servers(
    env: dict[str, str], logs: Path, servers: list[subprocess.Popen[bytes]]
) -> tuple[int, int]:
    """Start render_api and the echo server (appended to `servers`); their ports."""
    api_port, echo_port = int(env["RENDER_API_PORT"]), free_port()
    wrapper = shlex.split(os.environ.get("BENCH_SERVER_WRAPPER", ""))
    api = _spawn([*wrapper, sys.executable, "-m", "services.render_api"], env, logs / "api.log")
    api.bench_wrapped = bool(wrapper)  # type: ignore[attr-defined]
    servers.append(api)
    echo_argv = [sys.executable, "-m", "bench.intake", "--echo-server", str(echo_port)]
    servers.append(_spawn(echo_argv, env, logs / "echo.log"))
    await _wait_ready(api_port, api, logs / "api.log", health=True)
    await _wait_ready(echo_port, servers[1], logs / "echo.log", health=False)
    return api_port, echo_port


async def _run_rounds(
    args: argparse.Namespace, ports: tuple[int, int], servers: list[subprocess.Popen[bytes]]
) -> Rounds:
    """Both channels, the users' tokens, then `measure`."""
    api_port, echo_port = ports
    settings = Settings(jwt_secret=JWT_SECRET)
    users = [f"bench-user-{n:05d}" for n in range(args.users)]
    metadata = [(("authorization", f"Bearer {mint_token(settings, u)}"),) for u in users]
    payload = start_request(project_id="bench").SerializeToString()
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}") as echo_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{api_port}") as api_channel,
    ):
        single = None if args.no_single_user else intake_call(api_channel, metadata[:1])
        return await measure(
            args,
            echo_call(echo_channel, payload, metadata),
            intake_call(api_channel, metadata),
            single,
            (servers[1].pid, _server_pid(servers[0])),
        )


async def bench(args: argparse.Namespace) -> int:
    """Set up, measure alternately, report, clean up."""
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    redis = RedisServer()
    database = ThrowawayDatabase()
    servers: list[subprocess.Popen[bytes]] = []
    created = False
    try:
        redis.start()
        await database.create()
        created = True
        env = _api_env(database, redis, free_port(), logs)
        ports = await _start_servers(env, logs, servers)
        print(
            f"setup {time.monotonic() - started:.1f}s; {args.users} users, {args.inflight} in "
            f"flight, {args.rounds} rounds of {args.seconds:.0f}s each side",
            flush=True,
        )
        rounds = await _run_rounds(args, ports, servers)
        ok = report(rounds.echo, rounds.intake, rounds.single, args.inflight)
        errors = sum(r.errors for r in (*rounds.echo, *rounds.intake))
        print(f"total {time.monotonic() - started:.0f}s", flush=True)
        return 1 if errors or (args.strict and not ok) else 0
    except BaseException:
        print(f"server logs kept in {logs}", file=sys.stderr)
        logs = Path()
        raise
    finally:
        for server in servers:
            _stop(server)
        redis.close()
        if created:
            await database.drop()
        if logs != Path():
            shutil.rmtree(logs, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--no-single-user", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a bar is missed")
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:
        asyncio.run(serve_echo(args.echo_server))
        return 0
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
