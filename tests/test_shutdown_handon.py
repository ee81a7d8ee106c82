"""A worker stopped (SIGTERM) while it holds entries it has read but whose renders it has
not claimed yet hands those entries on, against real processes: they stay in the queue
(the sweeper finds nothing lost) and the next worker takes the renders at once, long
before the sweeper's grace would have re-enqueued them.

The renders' rows are locked (SELECT ... FOR UPDATE) while the first worker reads their
entries, so its claims wait (with a long statement timeout): the entries are read but not
claimed when SIGTERM comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from render.v1 import render_pb2
from sqlalchemy import select

from render_common import streams
from render_common.db.engine import engine_for
from render_common.db.schema import video_renders
from services.render_api.sweeper import Sweeper
from tests.support.fake_lambda_process import FakeLambdaProcess
from tests.support.lambda_stack import function_process
from tests.support.lambda_worker import spawn, stop, worker_environment
from tests.support.s3_server import S3Server
from tests.support.scenes import scene
from tests.support.stack import Stack, StackFactory

RENDERS = 20
SUCCEEDED = render_pb2.Render.STATE_SUCCEEDED


@pytest.fixture
def fake(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLambdaProcess]:
    """The fake function in its own process, with short renders."""
    with function_process(s3_server, monkeypatch, seconds=1.0, seconds_max=2.0) as process:
        yield process


async def pending_of(redis: Redis, consumer: str) -> int:
    """Entries of the Lambda queue pending with `consumer`."""
    summary = await redis.xpending(streams.LAMBDA_JOBS_STREAM, streams.LAMBDA_QUEUE.group)
    counts = {str(c["name"]): int(c["pending"]) for c in summary.get("consumers") or []}
    return counts.get(consumer, 0)


async def rows_of(stack: Stack, render_ids: list[str]) -> list[tuple[str, str | None]]:
    """(status, worker_id) of each render."""
    query = select(video_renders.c.status, video_renders.c.worker_id).where(
        video_renders.c.id.in_(render_ids)
    )
    async with stack.api.engine.connect() as connection:
        return [(str(s), w) for s, w in (await connection.execute(query)).all()]


async def stop_with_unclaimed_entries(
    stack: Stack, redis: Redis, env: dict[str, str], log: Path, render_ids: list[str]
) -> None:
    """Worker "a" reads every entry while the rows are locked, then gets SIGTERM."""
    lock = select(video_renders.c.id).where(video_renders.c.id.in_(render_ids)).with_for_update()
    patient = engine_for(stack.settings.with_overrides(db_statement_timeout_seconds=300.0))
    async with patient.connect() as connection:
        await connection.execute(lock)  # held until the block ends (then rolled back)
        worker = spawn({**env, "WORKER_NAME": "a", "DB_STATEMENT_TIMEOUT_SECONDS": "300"}, log)
        try:
            for _ in range(600):  # 120 s at most
                if await pending_of(redis, "a") == RENDERS:
                    break
                assert worker.poll() is None, f"worker a exited: see {log}"
                await asyncio.sleep(0.2)
            assert await pending_of(redis, "a") == RENDERS
        finally:
            code = await asyncio.to_thread(stop, worker)
    await patient.dispose()
    assert code == 0, f"worker a failed: see {log}"


@pytest.mark.timeout(400)
async def test_unclaimed_entries_go_to_the_next_worker_at_once(
    stack_factory: StackFactory,
    fake: FakeLambdaProcess,
    s3_server: S3Server,
    redis: Redis,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = await stack_factory(
        lambda_engine=True,
        webhook=False,
        worker=False,
        sweeper_grace_seconds=600.0,  # a lost entry would wait this long for the sweeper
        sweeper_interval_seconds=3600.0,
        visibility_timeout_seconds=4.0,
        concurrent_render_limit=100,
        lambda_max_in_flight=100,
    )
    scenes = [scene("color", 30, color="#345678")]
    started = await asyncio.gather(
        *(stack.start(scenes, engine=render_pb2.ENGINE_LAMBDA) for _ in range(RENDERS))
    )
    render_ids = [render.render_id for render in started]
    env = worker_environment(
        stack.settings, lambda_endpoint=fake.endpoint, s3_endpoint=s3_server.endpoint, name="a"
    )
    await stop_with_unclaimed_entries(stack, redis, env, tmp_path / "a.log", render_ids)
    assert {status for status, _ in await rows_of(stack, render_ids)} == {"queued"}

    caplog.set_level(logging.INFO)
    for _ in range(600):  # render_api's own first pass ends (30 s at most)
        if not await stack.api.redis.exists(streams.SWEEPER_LOCK):
            break
        await asyncio.sleep(0.05)
    await Sweeper(stack.api.engine, stack.api.redis, grace_seconds=0.0).sweep_once()
    lost = [r.getMessage() for r in caplog.records if "entries lost" in r.getMessage()]
    assert lost == [], "the stopped worker dropped entries it never claimed"

    worker = spawn({**env, "WORKER_NAME": "b"}, tmp_path / "b.log")
    try:
        for _ in range(300):  # 60 s at most: at once, where the sweeper's grace is 600 s
            if all(status != "queued" for status, _ in await rows_of(stack, render_ids)):
                break
            await asyncio.sleep(0.2)
        assert {w for _, w in await rows_of(stack, render_ids)} == {"b"}
        for render_id in render_ids:
            assert (await stack.wait(render_id, timeout=120)).state == SUCCEEDED
    finally:
        await asyncio.to_thread(stop, worker)
