"""The user's side of bench/ssr.py: a stack started as `make up` starts it, and the `render`
CLI run against it as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.cpu import Started
from render_common.config import ROOT
from services.local_stack.supervisor import free_port

CONCURRENCY = 2  # bench/ssr.py's, which imports this module
QUALITY = "high"
SAMPLE = ROOT / "remotion" / "samples" / "reference-150.json"


class LocalStack:
    """A stack started the way `make up` starts it, in its own data dir and ports."""

    def __init__(self, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            {
                "RENDER_DATA_DIR": str(data_dir),
                "RENDER_API_PORT": str(free_port()),
                "PROGRESS_PORT": str(free_port()),
                "WORKER_HEALTH_PORT": str(free_port()),
                "EDGE_PORT": str(free_port()),
                "RENDER_CONCURRENCY": str(CONCURRENCY),
                "USER_DAILY_EXPORT_LIMIT": "1000",
                "CONCURRENT_RENDER_LIMIT": "100",
                # This checkout's code and stubs, whatever the venv's editable install maps.
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "gen" / "python")]),
            }
        )
        self.env = env
        self.data_dir = data_dir
        # `python -m services.cli` is what the `render` script runs (pyproject.toml).
        self.cli = [sys.executable, "-m", "services.cli"]

    def _stack(self, command: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "services.local_stack", command],
            env=self.env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def up(self) -> None:
        """`make up`: returns when every service reports SERVING."""
        self._stack("up")

    def down(self) -> None:
        """`make down`."""
        self._stack("down")

    def supervisor_pid(self) -> int:
        """The root of the stack's processes (services, render host, Chromium, Redis)."""
        return int((self.data_dir / "stack" / "supervisor.pid").read_text().strip())

    def user_render(self, started: Started | None = None) -> float:
        """Seconds from `render start ... --watch` to the process's exit (exit code 0); the
        command's pid is added to `started`."""
        began = time.perf_counter()
        run_command(
            [*self.cli, "start", str(SAMPLE), "--quality", QUALITY, "--watch"],
            env=self.env,
            cwd=ROOT,
            started=started,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - began


def run_command(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    started: Started | None = None,
    stderr: int | None = None,
) -> None:
    """Run `argv` to its end (stdout discarded), adding its pid to `started` at its start;
    raises CalledProcessError on a non-zero exit."""
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr
    ) as process:
        if started is not None:
            started.add(process.pid)
        code = process.wait()
    if code:
        raise subprocess.CalledProcessError(code, argv)
