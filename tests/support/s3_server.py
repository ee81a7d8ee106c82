"""A local server speaking the S3 API (moto in server mode), reached through boto3.

moto checks neither signatures nor ACLs, so `endpoint` is a gateway in front of it
(tests/support/s3_gateway.py) that applies S3's rules: presigned URLs must carry a valid,
unexpired SigV4 signature, and anonymous reads need a public-read object.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import boto3

from render_common.config import ROOT
from tests.support.processes import free_port

REGION = "us-east-1"


class S3Server:
    """moto's server and the access-checking gateway on free ports; dummy credentials."""

    def __init__(self) -> None:
        self.moto_port = free_port()
        self.port = free_port()
        self.moto_endpoint = f"http://127.0.0.1:{self.moto_port}"
        self.endpoint = f"http://127.0.0.1:{self.port}"  # through the gateway
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> S3Server:
        """Start moto and the gateway, and wait until they answer."""
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        commands = [
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
            [
                sys.executable,
                "-m",
                "tests.support.s3_gateway",
                "--port",
                str(self.port),
                "--upstream",
                self.moto_endpoint,
            ],
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for command in commands:
            self.processes.append(
                subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
                )
            )
        deadline = time.monotonic() + 120  # moto takes a minute to start on a loaded machine
        while True:
            try:
                self.client().list_buckets()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)

    def stop(self) -> None:
        """Stop the gateway and moto."""
        for process in reversed(self.processes):
            process.terminate()
            process.wait(10)
        self.processes = []
