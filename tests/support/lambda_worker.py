"""A real render worker process with the Lambda engine (pointed at a fake function by
boto3's AWS_ENDPOINT_URL_* variables), for tests that kill it and benchmarks that measure
its CPU. The deployed worker, but Chromium is not launched before the first SSR render.

Run: `python -m tests.support.lambda_worker` with the worker's environment; the parent
builds that environment with `worker_environment`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from render_common.config import ROOT, Settings
from render_common.logs import configure_logging
from render_common.server import wait_for_shutdown_signal
from services.render_worker import app as worker_app

# The settings a worker process needs from the test's Settings (each by its env name).
FIELDS = (
    "database_url",
    "redis_url",
    "data_dir",
    "jwt_secret",
    "visibility_timeout_seconds",
    "retry_base_delay_seconds",
    "worker_concurrency",
    "lambda_function_name",
    "lambda_serve_url",
    "lambda_bucket",
    "lambda_poll_interval_seconds",
    "lambda_max_in_flight",
    "lambda_concurrency_limit",
    "lambda_max_polls_per_second",
    "webhook_url",
    "webhook_secret",
    "webhook_port",
)


def worker_environment(
    settings: Settings, *, lambda_endpoint: str, s3_endpoint: str, name: str, **extra: str
) -> dict[str, str]:
    """The environment of a worker process with `settings`, its AWS calls sent to the fakes."""
    fields = Settings.model_fields
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen' / 'python'}",
        "AWS_ENDPOINT_URL_LAMBDA": lambda_endpoint,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "WORKER_NAME": name,
        "WORKER_HEALTH_PORT": "0",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "LOG_FORMAT": "json",
    }
    for field in FIELDS:
        alias = fields[field].validation_alias
        env[alias if isinstance(alias, str) else field.upper()] = str(getattr(settings, field))
    env.pop("AWS_PROFILE", None)
    return {**env, **extra}


def spawn(env: dict[str, str], log: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start a worker process (its own session, so a kill reaches only it)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.lambda_worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,
        )


async def main() -> None:
    """Run the worker until SIGTERM/SIGINT."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    worker = await worker_app.start(settings, warm=False)
    await wait_for_shutdown_signal()
    await worker.stop(settings.shutdown_grace_seconds)


def stop(worker: subprocess.Popen[bytes]) -> int:
    """SIGTERM a worker process and reap it (SIGKILL after 30 s); its exit code."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    return worker.wait()


if __name__ == "__main__":
    asyncio.run(main())
