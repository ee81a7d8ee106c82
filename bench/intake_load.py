"""The intake benchmark's load: the bare echo server, closed-loop callers, measured rounds."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from render.v1 import render_service_pb2_grpc

from render_common.config import Settings
from tests.support.scenes import start_request

ECHO_METHOD = "/bench.Echo/Echo"


# --------------------------------------------------------------------------- echo server


async def serve_echo(port: int) -> None:
    """A bare grpc.aio server with the services' options, their garbage-collector settings
    and one unary echo method."""
    from render_common.server import server_options, settle_garbage_collector

    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server(options=server_options(Settings()))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    settle_garbage_collector()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


# --------------------------------------------------------------------------- load


@dataclass
class Round:
    """One measured round of one target."""

    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float = float("nan")

    @property
    def cpu_ms_per_call(self) -> float:
        """Server process CPU (user + system) per completed call, in ms."""
        return self.server_cpu_seconds * 1000.0 / max(self.calls, 1)

    @property
    def rate(self) -> float:
        """Completed calls per second."""
        return self.calls / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile in ms (nearest rank)."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


Call = Callable[[int], Any]  # i -> awaitable of one RPC


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(call: Call, *, inflight: int, seconds: float, server_pid: int = 0) -> Round:
    """`inflight` closed loops calling `call` until `seconds` have passed."""
    cpu_before = process_cpu_seconds(server_pid) if server_pid else float("nan")
    latencies: list[float] = []
    errors = 0
    counter = 0
    start = time.perf_counter()
    deadline = start + seconds
    first_error: list[BaseException] = []

    async def loop() -> None:
        nonlocal counter, errors
        perf = time.perf_counter
        while perf() < deadline:
            counter += 1
            t0 = perf()
            try:
                await call(counter)
            except grpc.aio.AioRpcError as exc:
                errors += 1
                if not first_error:
                    first_error.append(exc)
                continue
            latencies.append((perf() - t0) * 1000.0)

    await asyncio.gather(*(loop() for _ in range(inflight)))
    elapsed = time.perf_counter() - start
    if first_error:
        exc = first_error[0]
        assert isinstance(exc, grpc.aio.AioRpcError)
        print(f"  ! {errors} errors, first: {exc.code().name} {exc.details()}", flush=True)
    cpu = process_cpu_seconds(server_pid) - cpu_before if server_pid else float("nan")
    return Round(len(latencies), errors, elapsed, latencies, server_cpu_seconds=cpu)


def echo_call(
    channel: grpc.aio.Channel,
    payload: bytes,
    metadata: Sequence[tuple[tuple[str, str], ...]],
) -> Call:
    """One echo of `payload` (the serialised StartRenderRequest) with the same bearer
    token rotation as the StartRenders: the same bytes on the wire, headers included (a
    token that changes on every call costs HTTP/2 header compression its hits)."""
    method = channel.unary_unary(ECHO_METHOD)
    n = len(metadata)

    def call(i: int) -> Any:
        return method(payload, metadata=metadata[i % n], timeout=30)

    return call


def intake_call(channel: grpc.aio.Channel, metadata: Sequence[tuple[tuple[str, str], ...]]) -> Call:
    """One StartRender, spread round-robin over the users' tokens."""
    stub = render_service_pb2_grpc.RenderServiceStub(channel)
    request = start_request(project_id="bench")
    n = len(metadata)

    def call(i: int) -> Any:
        return stub.StartRender(request, metadata=metadata[i % n], timeout=30)

    return call


# --------------------------------------------------------------------------- rounds


@dataclass
class Rounds:
    """Every measured round: echo and StartRender alternately, and the single-user one."""

    echo: list[Round]
    intake: list[Round]
    single: Round | None


async def measure(
    args: argparse.Namespace,
    echo: Call,
    intake: Call,
    single_user: Call | None,
    pids: tuple[int, int],
) -> Rounds:
    """Warm both sides up, then measure them alternately, in the same state."""
    echo_pid, api_pid = pids
    for call in (echo, intake):  # warm up: connections, pools, caches
        await run_load(call, inflight=args.inflight, seconds=args.warmup)
    rounds = Rounds([], [], None)
    for _ in range(args.rounds):
        rounds.echo.append(
            await run_load(echo, inflight=args.inflight, seconds=args.seconds, server_pid=echo_pid)
        )
        rounds.intake.append(
            await run_load(intake, inflight=args.inflight, seconds=args.seconds, server_pid=api_pid)
        )
    if single_user is not None:
        rounds.single = await run_load(
            single_user, inflight=args.inflight, seconds=min(args.seconds, 3), server_pid=api_pid
        )
    return rounds
