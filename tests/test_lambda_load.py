"""Lambda at scale: one worker follows hundreds of Lambda renders at once, its SSR slot
keeps rendering, throttled starts are retried without starting anything twice, and a
killed worker's renders are followed by the next one.

The fake function runs in its own process (tests/support/fake_lambda_process.py) with
short render times (3-8 s), so these tests take about a minute each on a quiet machine.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import render_pb2
from sqlalchemy import func, select

from render_common import streams
from render_common.db.schema import video_renders
from tests.support.fake_lambda_process import FakeLambdaProcess
from tests.support.lambda_stack import function_process
from tests.support.lambda_worker import spawn, stop, worker_environment
from tests.support.redis_streams import fields as stream_fields
from tests.support.s3_server import S3Server
from tests.support.scenes import scene
from tests.support.stack import Stack, StackFactory

SUCCEEDED = render_pb2.Render.STATE_SUCCEEDED


@pytest.fixture
def fake(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLambdaProcess]:
    """The fake function in a subprocess; boto3 in this process is pointed at it."""
    with function_process(s3_server, monkeypatch, seconds=3.0, seconds_max=5.0) as process:
        yield process


@dataclass
class LoadRig:
    """render_api (no worker) with the Lambda engine, the fake function in its own process,
    and worker processes started on the same settings."""

    stack: Stack
    fake: FakeLambdaProcess
    redis: Redis
    s3: S3Server
    logs: Path

    @contextmanager
    def worker(self, name: str) -> Iterator[subprocess.Popen[bytes]]:
        """A worker process (the test's process keeps only render_api, and its CPU),
        stopped at the end."""
        env = worker_environment(
            self.stack.settings,
            lambda_endpoint=self.fake.endpoint,
            s3_endpoint=self.s3.endpoint,
            name=name,
        )
        process = spawn(env, self.logs / f"{name}.log")
        try:
            yield process
        finally:
            stop(process)

    async def succeeded_once_each(
        self, counts: Counter[str], render_ids: list[str]
    ) -> dict[str, Any]:
        """Every render succeeded, with one succeeded event, started once on the function;
        the function's stats."""
        assert counts["succeeded"] == len(render_ids), counts
        await assert_each_succeeded_once(self.stack, render_ids, self.redis)
        return assert_started_once_each(self.fake, render_ids)


@pytest_asyncio.fixture
async def rig(
    stack_factory: StackFactory,
    fake: FakeLambdaProcess,
    redis: Redis,
    s3_server: S3Server,
    tmp_path: Path,
) -> LoadRig:
    """The test's load rig; its render_api is closed by `stack_factory`."""
    stack = await stack_factory(
        lambda_engine=True,
        worker=False,
        visibility_timeout_seconds=3.0,
        render_timeout_seconds=300.0,
        concurrent_render_limit=1000,
        daily_render_limit=10_000,
        lambda_poll_interval_seconds=2.0,
        lambda_concurrency_limit=10_000,
        lambda_max_in_flight=500,
    )
    return LoadRig(stack, fake, redis, s3_server, tmp_path)


async def start_many(stack: Stack, count: int) -> list[str]:
    """StartRender `count` Lambda renders, 50 calls at a time; their ids."""
    scenes = [scene("title", 30, text="Lambda"), scene("color", 30, color="#123456")]
    ids: list[str] = []
    for first in range(0, count, 50):
        started = await asyncio.gather(
            *(
                stack.start(scenes, project="load", engine=render_pb2.ENGINE_LAMBDA)
                for _ in range(first, min(count, first + 50))
            )
        )
        ids += [render.render_id for render in started]
    return ids


async def status_counts(stack: Stack, render_ids: list[str]) -> Counter[str]:
    """The states of these renders (the module's database holds other tests' too)."""
    query = (
        select(video_renders.c.status, func.count())
        .where(video_renders.c.id.in_(render_ids))
        .group_by(video_renders.c.status)
    )
    async with stack.api.engine.connect() as connection:
        rows = await connection.execute(query)
        return Counter({str(status): int(count) for status, count in rows.all()})


async def finished_at(stack: Stack, render_ids: list[str]) -> tuple[Counter[str], float]:
    """The renders' states once all ended, and when (time.monotonic)."""
    counts = await wait_all_done(stack, render_ids, timeout=600)
    return counts, time.monotonic()


async def wait_all_done(stack: Stack, render_ids: list[str], timeout: float) -> Counter[str]:
    async with asyncio.timeout(timeout):
        while True:
            counts = await status_counts(stack, render_ids)
            if counts["queued"] == 0 and counts["running"] == 0:
                return counts
            await asyncio.sleep(0.5)


async def assert_each_succeeded_once(stack: Stack, render_ids: list[str], redis: Any) -> None:
    for render_id in render_ids:
        render = await stack.get(render_id)
        assert render.state == SUCCEEDED, (render_id, render.error)
        events = await stream_fields(redis, streams.events_stream(render_id))
        assert [e["state"] for e in events].count("succeeded") == 1, render_id


def assert_started_once_each(fake: FakeLambdaProcess, render_ids: list[str]) -> dict[str, Any]:
    stats = fake.stats()
    assert stats["started_twice"] == [], stats["started_twice"][:5]
    assert stats["renders"] == len(render_ids), stats
    return stats


@pytest.mark.timeout(900)
async def test_300_lambda_renders_on_one_worker_leave_its_ssr_slot_free(rig: LoadRig) -> None:
    with rig.worker("one"):
        await flood_with_ssr_meanwhile(rig)


async def flood_with_ssr_meanwhile(rig: LoadRig) -> None:
    stack = rig.stack
    ssr_scenes = [scene("color", 30, color="#204060")]
    began = time.monotonic()
    alone = await stack.start(ssr_scenes, project="ssr", engine=render_pb2.ENGINE_SSR)
    assert (await stack.wait(alone.render_id, timeout=300)).state == SUCCEEDED
    ssr_alone = time.monotonic() - began
    print(f"SSR render alone: {ssr_alone:.1f}s")

    began = time.monotonic()
    render_ids = await start_many(stack, 300)
    print(f"300 StartRender: {time.monotonic() - began:.1f}s")
    lambda_done = asyncio.create_task(finished_at(stack, render_ids))
    await asyncio.sleep(1.0)  # the flood is being followed
    ssr_began = time.monotonic()
    during = await stack.start(ssr_scenes, project="ssr", engine=render_pb2.ENGINE_SSR)
    assert (await stack.wait(during.render_id, timeout=300)).state == SUCCEEDED
    ssr_during = time.monotonic() - ssr_began
    print(f"SSR render during the flood: {ssr_during:.1f}s (alone: {ssr_alone:.1f}s)")
    lambda_counts, done_at = await lambda_done
    flood = done_at - began
    print(f"300 Lambda renders, first StartRender to last completion: {flood:.1f}s")
    await rig.succeeded_once_each(lambda_counts, render_ids)
    # One render takes 3-5 s on the fake; 300 followed one after another would take
    # 20 minutes. Generous bounds for a loaded machine; the figures are in the message.
    assert flood < 120, f"300 renders took {flood:.1f}s"
    assert ssr_during < 3 * ssr_alone + 30, (ssr_during, ssr_alone)


@pytest.mark.timeout(900)
async def test_throttled_starts_are_retried_and_none_starts_twice(rig: LoadRig) -> None:
    # Long enough that more than 100 are asked for at once (starts take a while under load).
    rig.fake.set_plan(max_concurrent=100, seconds=15.0, seconds_max=20.0)
    with rig.worker("throttled"):
        render_ids = await start_many(rig.stack, 150)
        counts = await wait_all_done(rig.stack, render_ids, timeout=600)
    stats = await rig.succeeded_once_each(counts, render_ids)
    assert stats["throttled"] > 0 and stats["max_running"] <= 100, stats


@pytest.mark.timeout(900)
async def test_killed_worker_with_200_in_flight_is_followed_by_the_next(rig: LoadRig) -> None:
    rig.fake.set_plan(seconds=15.0, seconds_max=20.0)
    with rig.worker("first") as first:
        render_ids = await start_many(rig.stack, 200)
        await all_started(rig.stack, rig.fake, render_ids)
        first.send_signal(signal.SIGKILL)
        first.wait()
    with rig.worker("second"):
        counts = await wait_all_done(rig.stack, render_ids, timeout=300)
    stats = await rig.succeeded_once_each(counts, render_ids)
    assert stats["invocations"]["start"] == 200, stats


async def all_started(stack: Stack, fake: FakeLambdaProcess, render_ids: list[str]) -> None:
    """Every render started on Lambda, and its Lambda render id recorded on its row."""
    async with asyncio.timeout(120):
        while True:
            started = fake.stats()["renders"] >= len(render_ids)
            if started and await lambda_ids_recorded(stack, render_ids) >= len(render_ids):
                return
            await asyncio.sleep(0.5)


async def lambda_ids_recorded(stack: Stack, render_ids: list[str]) -> int:
    query = select(func.count()).where(
        video_renders.c.id.in_(render_ids), video_renders.c.lambda_render_id.is_not(None)
    )
    async with stack.api.engine.connect() as connection:
        return int((await connection.execute(query)).scalar() or 0)
