"""A Lambda start whose answer comes after the read timeout starts one render, not two.

The fake function (tests/support/fake_lambda.py, in its own process) accepts the start,
begins the render and answers `start_delay` seconds later; the worker's read timeout
(LAMBDA_READ_TIMEOUT_SECONDS) is shorter. Remotion has no idempotency key: the worker
must find the render it started (by the attempt's output name, in the bucket) and follow
it, instead of failing the attempt and starting again in the retry.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from render.v1 import render_pb2

from render_common.config import Settings
from tests.support.fake_lambda_process import FakeLambdaProcess
from tests.support.lambda_env import lambda_settings
from tests.support.lambda_worker import spawn, stop, worker_environment
from tests.support.s3_server import S3Server
from tests.support.scenes import scene
from tests.support.stack import Stack, start_stack


@pytest.fixture
def fake(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLambdaProcess]:
    """The fake function in a subprocess; boto3 in this process is pointed at it."""
    process = FakeLambdaProcess(s3_server.endpoint).start(seconds=2.0)
    for name, value in {
        "AWS_ENDPOINT_URL_LAMBDA": process.endpoint,
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield process
    process.stop()


@pytest.fixture
def settings(base_settings: Settings, postgres_url: str, tmp_path: Path) -> Settings:
    base = base_settings.with_overrides(
        database_url=postgres_url,
        data_dir=str(tmp_path / "data"),
        retry_base_delay_seconds=0.2,
        visibility_timeout_seconds=3.0,
        lambda_privacy="private",
    )
    return lambda_settings(base, lambda_read_timeout_seconds=1.0)


@pytest_asyncio.fixture
async def stack(settings: Settings, user: str, fake: FakeLambdaProcess) -> AsyncIterator[Stack]:
    running = await start_stack(settings, user, warm=False)
    yield running
    await running.close()


@pytest_asyncio.fixture
async def api_only(settings: Settings, user: str, fake: FakeLambdaProcess) -> AsyncIterator[Stack]:
    running = await start_stack(settings, user, worker=False)
    yield running
    await running.close()


async def start(stack: Stack) -> str:
    scenes = [scene("color", 60, color="#123456")]
    render = await stack.start(scenes, engine=render_pb2.ENGINE_LAMBDA)
    return render.render_id


@pytest.mark.parametrize("webhook", [True, False], ids=["webhook", "polling"])
async def test_start_answered_after_the_read_timeout_starts_one_render(
    stack: Stack, fake: FakeLambdaProcess, webhook: bool
) -> None:
    fake.set_plan(start_delay=4.0, webhook=webhook)
    render_id = await start(stack)
    done = await stack.wait(render_id, timeout=120)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    stats = fake.stats()
    assert stats["renders"] == 1 and stats["started_twice"] == [], stats
    assert stats["invocations"]["start"] == 1, stats
    assert done.retry_count == 0
    assert done.lambda_details.render_id  # the render it found, followed to the end


async def test_start_that_never_reached_lambda_is_retried(
    stack: Stack, fake: FakeLambdaProcess
) -> None:
    """A start Lambda refused outright (nothing started) is still retried and succeeds."""
    fake.set_plan(throttle_starts=2)
    render_id = await start(stack)
    done = await stack.wait(render_id, timeout=120)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    stats = fake.stats()
    assert stats["renders"] == 1 and stats["throttled"] == 2, stats


async def test_worker_killed_while_its_start_is_unanswered_is_followed_not_restarted(
    api_only: Stack, fake: FakeLambdaProcess, s3_server: S3Server, tmp_path: Path
) -> None:
    """The worker dies after the start went out, before its answer: the next worker finds
    the attempt marked "start sent", looks the render up and follows it."""
    fake.set_plan(start_delay=30.0, seconds=3.0)

    def worker(name: str) -> subprocess.Popen[bytes]:
        environment = worker_environment(
            api_only.settings,
            lambda_endpoint=fake.endpoint,
            s3_endpoint=s3_server.endpoint,
            name=name,
            LAMBDA_READ_TIMEOUT_SECONDS="120",
        )
        return spawn(environment, tmp_path / f"{name}.log")

    first = worker("first")
    try:
        render_id = await start(api_only)
        async with asyncio.timeout(120):  # the start went out: the fake has the render
            while True:
                if fake.stats()["renders"] >= 1:
                    break
                await asyncio.sleep(0.2)
        first.kill()
        first.wait()
        second = worker("second")
        try:
            done = await api_only.wait(render_id, timeout=180)
        finally:
            stop(second)
    finally:
        stop(first)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    stats = fake.stats()
    assert stats["renders"] == 1 and stats["invocations"]["start"] == 1, stats
    log = (tmp_path / "second.log").read_text()
    assert "following lambda render of an earlier worker" in log
