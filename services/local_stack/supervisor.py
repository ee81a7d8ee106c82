"""A small process supervisor: starts the services, restarts any that crash, stops them all.

Runs as its own process (`python -m services.local_stack supervise`), started in the
background by `make up`. It owns its children: SIGTERM stops them (graceful, then killed)
and the redis-server it started, and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from render_common.config import Settings
from services.local_stack.paths import StackPaths
from services.local_stack.redis_server import redis_server_argv

RESTART_BACKOFF_MAX = 30.0
STOP_GRACE_SECONDS = 20.0


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    exited_at: float | None = None
    next_start: float = 0.0

    def start(self, env: dict[str, str]) -> None:
        """Start (or restart) the process, appending to its log."""
        handle = self.log.open("ab")
        self.process = subprocess.Popen(self.argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        self.started_at = time.monotonic()
        self.exited_at = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(paths: StackPaths) -> tuple[Child, str]:
    """A redis-server of the stack's own on a free port (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: run `make setup`, or set REDIS_URL")
    port = free_port()
    paths.redis_dir.mkdir(parents=True, exist_ok=True)
    child = Child(
        "redis",
        redis_server_argv(binary, port, str(paths.redis_dir)),
        paths.logs / "redis.log",
    )
    return child, f"redis://127.0.0.1:{port}/0"


def migrate(python: str, env: dict[str, str], log: Path) -> bool:
    """Run the migrate command once, before any service starts (they refuse an old schema)."""
    with log.open("ab") as handle:
        result = subprocess.run(
            [python, "-m", "render_common.db", "migrate"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return result.returncode == 0


SERVICES = (
    ("render_api", "services.render_api"),
    ("progress", "services.progress"),
    ("worker", "services.render_worker"),
    ("edge", "services.edge"),
)


def supervise(paths: StackPaths) -> int:
    """Run the stack until SIGTERM/SIGINT."""
    settings = Settings.from_env()
    paths.logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RENDER_DATA_DIR": str(paths.data), "PYTHONUNBUFFERED": "1"}
    children: list[Child] = []
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        redis_child, redis_url = start_redis(paths)
        children.append(redis_child)
    env["REDIS_URL"] = redis_url
    python = sys.executable
    if not migrate(python, env, paths.logs / "migrate.log"):
        print(f"migrate failed; see {paths.logs / 'migrate.log'}", flush=True)
        paths.pid.unlink(missing_ok=True)
        return 1
    for name, module in SERVICES:
        children.append(Child(name, [python, "-m", module], paths.logs / f"{name}.log"))
    stop = _StopSignal()
    for child in children:
        child.start(env)
        if child.name == "redis":
            time.sleep(0.3)
    _write_state(paths, settings, redis_url, children)
    with (paths.logs / "supervisor.log").open("a") as log:
        _keep_running(children, env, stop, log)
    # Stop the services first (they drain), Redis last.
    for child in reversed(children):
        child.stop()
    paths.state.unlink(missing_ok=True)
    paths.pid.unlink(missing_ok=True)
    return 0


class _StopSignal:
    """Set by SIGTERM or SIGINT."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGINT, self._request)

    def _request(self, *_: object) -> None:
        self.requested = True


def _write_state(
    paths: StackPaths, settings: Settings, redis_url: str, children: list[Child]
) -> None:
    """Where everything runs, for `make down`, the CLI and people (`.data/stack/`)."""
    state = {
        "supervisor_pid": os.getpid(),
        "redis_url": redis_url,
        "own_redis": children[0].name == "redis",
        "render_api": f"127.0.0.1:{settings.render_api_port}",
        "progress": f"127.0.0.1:{settings.progress_port}",
        "worker_health": f"127.0.0.1:{settings.worker_health_port}",
        "edge": f"http://127.0.0.1:{settings.edge_port}",
        "logs": str(paths.logs),
        "children": {c.name: c.process.pid for c in children if c.process},
    }
    paths.state.write_text(json.dumps(state, indent=2))


def _keep_running(
    children: list[Child], env: dict[str, str], stop: _StopSignal, log: IO[str]
) -> None:
    """Restart children that exit (a crash loop backs off) until a stop is requested."""

    def note(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=log, flush=True)

    while not stop.requested:
        time.sleep(0.5)
        now = time.monotonic()
        for child in children:
            assert child.process is not None
            if child.exited_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                # A child that ran for a minute restarts at once; a crash loop backs off.
                child.restarts = 0 if now - child.started_at > 60 else child.restarts + 1
                delay = min(RESTART_BACKOFF_MAX, 0.5 * 2**child.restarts)
                child.exited_at, child.next_start = now, now + delay
                note(f"{child.name} exited with {code}; restarting in {delay:g}s")
            elif now >= child.next_start:
                child.start(env)
                note(f"{child.name} restarted (pid {child.process.pid})")
