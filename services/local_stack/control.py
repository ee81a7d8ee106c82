"""`make up` / `make down`: start the supervisor in the background, wait for health, stop it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from render_common.config import Settings
from render_common.tokens import mint_session_token
from services.local_stack.paths import StackPaths

READY_TIMEOUT_SECONDS = 240.0


def running_pid(paths: StackPaths) -> int | None:
    """The supervisor's pid if it is alive."""
    try:
        pid = int(paths.pid.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def state(paths: StackPaths) -> dict[str, Any]:
    """What the running supervisor wrote about the stack."""
    try:
        return dict(json.loads(paths.state.read_text()))
    except (OSError, ValueError):
        return {}


async def serving(address: str) -> bool:
    """Whether the gRPC health check at `address` says SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def http_serving(url: str) -> bool:
    """Whether an HTTP service answers 200 on `url` (the edge's /healthz)."""
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def wait_serving(
    addresses: dict[str, str], alive: Callable[[], bool], limit_seconds: float
) -> None:
    """Wait until every address serves; fail if the supervisor dies or time runs out."""
    deadline = time.monotonic() + limit_seconds
    pending = dict(addresses)
    while pending:
        for name, address in list(pending.items()):
            check = http_serving if address.startswith("http") else serving
            if await check(address):
                print(f"  {name:<11} SERVING on {address}")
                del pending[name]
        if not pending:
            return
        if not alive():
            raise SystemExit("the stack stopped while starting; see the logs")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"not serving after {limit_seconds:.0f}s: {', '.join(pending)}; see the logs"
            )
        await asyncio.sleep(0.3)


def _ports_free(settings: Settings) -> list[int]:
    import socket

    taken = []
    for port in (
        settings.render_api_port,
        settings.progress_port,
        settings.worker_health_port,
        settings.edge_port,
    ):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(port)
    return taken


def up(settings: Settings, paths: StackPaths) -> bool:
    """Start the stack unless it runs; returns True if this call started it."""
    pid = running_pid(paths)
    started = pid is None
    alive: Callable[[], bool] = lambda: running_pid(paths) is not None  # noqa: E731
    if pid is None:
        taken = _ports_free(settings)
        if taken:
            raise SystemExit(
                f"ports {taken} are in use by something else; stop it or set the *_PORT variables"
            )
        paths.stack.mkdir(parents=True, exist_ok=True)
        paths.logs.mkdir(parents=True, exist_ok=True)
        paths.state.unlink(missing_ok=True)
        with (paths.logs / "supervisor.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.local_stack", "supervise"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        pid = process.pid
        paths.pid.write_text(str(pid))
        alive = lambda: process.poll() is None  # noqa: E731
        print(f"starting the stack (supervisor pid {pid}); first start bundles the compositions")
    else:
        print(f"the stack is already running (supervisor pid {pid})")
    addresses = {
        "render_api": f"127.0.0.1:{settings.render_api_port}",
        "progress": f"127.0.0.1:{settings.progress_port}",
        "worker": f"127.0.0.1:{settings.worker_health_port}",
        "edge": f"http://127.0.0.1:{settings.edge_port}/healthz",
    }
    asyncio.run(wait_serving(addresses, alive, READY_TIMEOUT_SECONDS))
    info = state(paths)
    own = " (started by the stack)" if info.get("own_redis") else ""
    print(
        f"\nrender_api  {addresses['render_api']}   (render.v1.RenderService)\n"
        f"progress    {addresses['progress']}   (render.v1.ProgressService)\n"
        f"redis       {info.get('redis_url', '?')}{own}\n"
        f"database    {settings.effective_database_url}\n"
        f"outputs     {Path(settings.data_dir).resolve() / 'renders'}\n"
        f"logs        {paths.logs}/<service>.log\n"
        f"edge        http://127.0.0.1:{settings.edge_port}   (SSE, Connect, the export page)\n"
        f"\nexport page (signed in as {page_user()} for "
        f"{settings.edge_session_max_ttl_seconds // 60} min):\n  {page_url(settings)}\n"
        f"\ntry: .venv/bin/render start remotion/samples/demo.json --watch    stop: make down"
    )
    return started


def page_user() -> str:
    """Who the printed page link signs in: RENDER_USER, else $USER, else demo."""
    return os.environ.get("RENDER_USER") or os.environ.get("USER") or "demo"


def page_url(settings: Settings) -> str:
    """A link to the edge's sign-in form with a fresh session token (local use): it names
    the account and its button signs in (GET alone never does: login CSRF)."""
    token = mint_session_token(
        settings, page_user(), ttl_seconds=settings.edge_session_max_ttl_seconds
    )
    return f"http://127.0.0.1:{settings.edge_port}/login?token={token}"


def _exited(pid: int) -> bool:
    """Whether a process is gone (reaping it when it is our own child)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False


def down(paths: StackPaths) -> None:
    """Stop the supervisor (and so everything it started)."""
    pid = running_pid(paths)
    if pid is None:
        print("the stack is not running")
        paths.pid.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _exited(pid):
            print("stopped")
            paths.pid.unlink(missing_ok=True)
            return
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    paths.pid.unlink(missing_ok=True)
    print("stopped (killed after 60 s)")
