"""LAMBDA_CONCURRENCY_LIMIT is the account's (the function's) budget, shared by every
worker: two worker processes against one fake function never keep more functions busy
than the limit together, and every render still completes once.

Workers are real processes (tests/support/lambda_worker.py); the fake function runs in
its own process and counts the renders running at once; Redis and PostgreSQL are the
test's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from render.v1 import render_pb2

from render_common.config import Settings
from render_common.redis_client import create_redis
from services.render_worker.engines.lambda_budget import SharedFunctionBudget
from tests.support.fake_lambda_process import FakeLambdaProcess
from tests.support.lambda_env import lambda_settings
from tests.support.lambda_worker import spawn, stop, worker_environment
from tests.support.processes import free_port
from tests.support.s3_server import S3Server
from tests.support.scenes import scene
from tests.support.stack import Stack, start_stack

LIMIT = 6  # functions; a render of 40 frames at 20 per function takes 2 + 1 orchestrator
PER_RENDER = 3
RENDERS = 8  # each worker follows at most half of them, so both take some


@pytest.fixture
def fake(s3_server: S3Server) -> Iterator[FakeLambdaProcess]:
    process = FakeLambdaProcess(s3_server.endpoint).start(seconds=2.0)
    yield process
    process.stop()


@pytest_asyncio.fixture
async def stack(
    base_settings: Settings, postgres_url: str, tmp_path: Path, user: str
) -> AsyncIterator[Stack]:
    base = base_settings.with_overrides(
        database_url=postgres_url,
        data_dir=str(tmp_path / "data"),
        visibility_timeout_seconds=3.0,
        concurrent_render_limit=100,
    )
    settings = lambda_settings(
        base, webhook=False, lambda_concurrency_limit=LIMIT, lambda_max_in_flight=RENDERS // 2
    )
    running = await start_stack(settings, user, worker=False)
    yield running
    await running.close()


async def test_two_workers_share_the_concurrency_limit(
    stack: Stack, fake: FakeLambdaProcess, s3_server: S3Server, tmp_path: Path
) -> None:
    workers = [
        spawn(
            worker_environment(
                stack.settings,
                lambda_endpoint=fake.endpoint,
                s3_endpoint=s3_server.endpoint,
                name=f"budget-{n}",
            ),
            tmp_path / f"budget-{n}.log",
        )
        for n in range(2)
    ]
    try:
        scenes = [scene("color", 40, color="#123456")]
        started = await asyncio.gather(
            *(stack.start(scenes, engine=render_pb2.ENGINE_LAMBDA) for _ in range(RENDERS))
        )
        done = [await stack.wait(r.render_id, timeout=240) for r in started]
    finally:
        for worker in workers:
            stop(worker)
    assert all(d.state == render_pb2.Render.STATE_SUCCEEDED for d in done), [d.error for d in done]
    stats = fake.stats()
    assert stats["renders"] == RENDERS and stats["started_twice"] == [], stats
    # Both workers took renders, yet the function never had more than LIMIT busy.
    logs = [(tmp_path / f"budget-{n}.log").read_text() for n in range(2)]
    assert all("lambda render started" in log for log in logs)
    assert stats["max_running"] * PER_RENDER <= LIMIT, stats


async def test_redis_away_counts_this_workers_renders_alone() -> None:
    """Without Redis, starts are admitted within the limit by this worker's own count:
    Lambda renders carry on (polling) instead of failing, and still never exceed it."""
    redis = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    budget = SharedFunctionBudget(redis, limit=LIMIT)
    try:
        await budget.acquire("first", PER_RENDER)
        await budget.acquire("second", PER_RENDER)
        assert sum(budget.held.values()) == LIMIT
        with pytest.raises(TimeoutError):  # a third would exceed the limit: it waits
            await asyncio.wait_for(budget.acquire("third", PER_RENDER), 1.5)
        await budget.release("first")  # Redis still away: given back locally
        await asyncio.wait_for(budget.acquire("third", PER_RENDER), 5.0)
        assert set(budget.held) == {"second", "third"}
    finally:
        await budget.close()
