"""A local server speaking the S3 API (moto in server mode), reached through boto3."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import boto3

from tests.support.processes import free_port

REGION = "us-east-1"


class S3Server:
    """moto's server on a free port; credentials are dummies moto accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> S3Server:
        """Start moto and wait until it answers."""
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
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
        """Stop moto."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
