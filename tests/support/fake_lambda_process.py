"""The fake Remotion function in its own process, so that its CPU (hundreds of renders'
status answers, S3 writes and webhooks) stays out of the worker's measurement and off
the test's event loop.

Run: `python -m tests.support.fake_lambda_process --s3 URL --port N`; the parent talks to
it through `FakeLambdaProcess` (plan and stats over HTTP).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import boto3
import httpx

from render_common.config import ROOT
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.processes import free_port
from tests.support.s3_server import REGION


class S3At:
    """An S3 endpoint by URL (the session's server, seen from another process)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self) -> Any:
        """A boto3 S3 client of the endpoint."""
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)


class FakeLambdaProcess:
    """A `FakeRemotionLambda` in a subprocess: `endpoint` for AWS_ENDPOINT_URL_LAMBDA."""

    def __init__(self, s3_endpoint: str) -> None:
        self.s3_endpoint = s3_endpoint
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, **plan: Any) -> FakeLambdaProcess:
        """Start it and wait until it answers; `plan` sets the first renders' plan."""
        command = [sys.executable, "-m", "tests.support.fake_lambda_process"]
        command += ["--s3", self.s3_endpoint, "--port", str(self.port)]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen' / 'python'}"}
        self._process = subprocess.Popen(command, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.set_plan(**plan)
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise
                time.sleep(0.2)

    def set_plan(self, **changes: Any) -> dict[str, Any]:
        """Change the plan of the next renders (fields of fake_lambda_wire.Plan)."""
        response = httpx.post(f"{self.endpoint}/_fake/plan", json=changes, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stats(self) -> dict[str, Any]:
        """Invocations by type, renders, throttled starts, renders started twice, ..."""
        response = httpx.get(f"{self.endpoint}/_fake/stats", timeout=30)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def starts(self) -> list[dict[str, Any]]:
        """The start payloads the function received (as `FakeRemotionLambda.starts`)."""
        response = httpx.get(f"{self.endpoint}/_fake/starts", timeout=30)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def cpu_seconds(self) -> float:
        """CPU the fake used so far (user + system), from /proc."""
        assert self._process is not None
        return process_cpu_seconds(self._process.pid)

    def stop(self) -> None:
        """Stop the process."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def main() -> None:
    """Serve the fake until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--s3", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    fake = FakeRemotionLambda(S3At(args.s3), port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    fake.close()


if __name__ == "__main__":
    main()
