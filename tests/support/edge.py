"""The edge as its own process (python -m services.edge), pointed at running services."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from render_common.config import ROOT, Settings
from tests.support.processes import free_port


class EdgeProcess:
    """`python -m services.edge` on a free port; its output goes to a log file."""

    def __init__(
        self,
        settings: Settings,
        *,
        render_api_port: int,
        progress_port: int,
        log: Path,
        **env: str,
    ) -> None:
        self.port = free_port()
        self.log = log
        self.env = {
            **os.environ,
            # This checkout's code and generated stubs, whatever the venv has installed.
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "gen" / "python")]),
            "EDGE_PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "RENDER_API_ADDR": f"127.0.0.1:{render_api_port}",
            "PROGRESS_ADDR": f"127.0.0.1:{progress_port}",
            "JWT_SECRET": settings.jwt_secret,
            "RENDER_DATA_DIR": settings.data_dir,
            "LOG_FORMAT": "text",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the edge."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EdgeProcess:
        """Start and wait until /healthz answers."""
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.edge"],
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120  # a loaded machine starts Python slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the edge exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the edge did not start")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
