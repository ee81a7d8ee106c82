"""Faults from outside, as an operator meets them: Redis restarted (SIGTERM, SIGKILL; with
and without AOF) while renders are queued, retrying and running and watchers are open; a
render that kills its worker on every delivery; a worker killed mid-attempt.

Workers are real processes (tests/support/scripted_worker: the deployed worker with a
scripted engine instead of Chromium); Redis and PostgreSQL are the test's own. Each test
checks: no render lost, none completed twice, none left QUEUED or RUNNING, at most one
output per render, and what callers saw.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from render.v1 import render_pb2

from render_common import streams
from render_common.config import Settings
from tests.support.fault_rig import FaultRig, start_rig, stop_process
from tests.support.redis_streams import fields as stream_fields
from tests.support.redis_streams import render_events

log = logging.getLogger(__name__)
State = render_pb2.Render
RigFactory = Callable[..., Awaitable[FaultRig]]


async def events_of(rig: FaultRig, render_id: str) -> list[dict[str, str]]:
    client = rig.redis()
    try:
        return await render_events(client, render_id)
    finally:
        await client.aclose()


async def assert_settled(rig: FaultRig, render_ids: list[str], succeeded: set[str]) -> None:
    """Nothing lost or doubled: every render terminal as expected, one terminal event each,
    at most one output each, no row of the database left QUEUED or RUNNING. Checked once
    every attempt is over (a row is terminal before its event is published)."""
    await rig.attempts_over()
    counts = await rig.status_counts()
    assert counts["queued"] == 0 and counts["running"] == 0, counts
    assert sum(counts.values()) == len(render_ids)
    for render_id in render_ids:
        render = await rig.get(render_id)
        events = await events_of(rig, render_id)
        terminal = [e["state"] for e in events if e["state"] in ("succeeded", "failed")]
        outputs = rig.outputs(render_id)
        if render_id in succeeded:
            assert render.state == State.STATE_SUCCEEDED, (render_id, render.error)
            assert terminal == ["succeeded"], (render_id, terminal)
            assert [p.suffix for p in outputs] == [".mp4"]
        else:
            assert render.state == State.STATE_FAILED
            assert terminal == ["failed"]
            assert outputs == []


@pytest_asyncio.fixture
async def rig_factory(
    base_settings: Settings, tmp_path: Path, user: str
) -> AsyncIterator[RigFactory]:
    rigs: list[FaultRig] = []

    async def make(**overrides: Any) -> FaultRig:
        rig = await start_rig(
            base_settings,
            tmp_path,
            user,
            sweeper_interval_seconds=0.5,
            sweeper_grace_seconds=1.0,
            visibility_timeout_seconds=3.0,
            redis_outage_seconds=30.0,
            **overrides,
        )
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence", "aof"])
async def test_redis_restart_loses_no_render(
    rig_factory: RigFactory, appendonly: bool, stop: str
) -> None:
    rig: FaultRig = await rig_factory(
        appendonly=appendonly,
        worker_concurrency=2,
        retry_base_delay_seconds=4.0,  # the retry entry waits across the outage
        concurrent_render_limit=10,
    )
    rig.spawn_worker()
    running = await rig.start("seconds=7")
    retrying = await rig.start("seconds=0.3;fail-once")
    rest = [await rig.start("seconds=1") for _ in range(4)]
    ids = [running.render_id, retrying.render_id, *(r.render_id for r in rest)]
    watchers = [rig.watch(render_id) for render_id in ids]
    await rig.wait(
        running.render_id,
        until=lambda r: r.state == State.STATE_RUNNING and r.stage == render_pb2.STAGE_RENDERING,
    )
    await rig.wait(retrying.render_id, until=lambda r: r.queue_job_id.startswith("retry:"))
    before = await rig.status_counts()
    assert before["queued"] >= 3 and before["running"] >= 1, before  # queued, retrying, running

    (rig.redis_server.stop if stop == "sigterm" else rig.redis_server.kill)()
    await asyncio.sleep(1.5)  # the running render carries on without Redis
    rig.redis_server.start()
    restarted = time.monotonic()

    async with asyncio.timeout(90):
        finals = await asyncio.gather(*(w.task for w in watchers))
    recovered = time.monotonic() - restarted
    log.warning("redis restart (%s, %s): all terminal %.1fs after", appendonly, stop, recovered)
    print(f"recovery appendonly={appendonly} stop={stop}: {recovered:.1f}s after restart")

    # What the watchers saw: every render's terminal event, a success.
    assert [f.state for f in finals] == [State.STATE_SUCCEEDED] * len(ids)
    assert all(State.STATE_SUCCEEDED in w.states for w in watchers)
    await assert_settled(rig, ids, succeeded=set(ids))
    # The outage cost no attempt; the scripted failure cost one, and its error is gone.
    assert (await rig.get(running.render_id)).retry_count == 0
    assert [(await rig.get(r.render_id)).retry_count for r in rest] == [0] * len(rest)
    after_retry = await rig.get(retrying.render_id)
    assert after_retry.retry_count == 1 and not after_retry.HasField("error")
    # No attempt ran twice (a lost entry is replaced, never run beside its original).
    runs = rig.engine_runs()
    assert runs[(running.render_id, 1)] == 1
    assert runs[(retrying.render_id, 1)] == 1 and runs[(retrying.render_id, 2)] == 1
    assert max(runs.values()) == 1, runs


async def test_render_that_kills_its_worker_is_dead_lettered(rig_factory: RigFactory) -> None:
    rig: FaultRig = await rig_factory(max_deliveries=2)
    crashing = await rig.start("crash")
    healthy = await rig.start("seconds=0.2")
    watcher = rig.watch(crashing.render_id)
    started = 0
    async with asyncio.timeout(120):
        while (await rig.get(crashing.render_id)).state not in (
            State.STATE_FAILED,
            State.STATE_SUCCEEDED,
        ):
            # A supervisor restarting the worker every time it dies.
            if not rig.workers or rig.workers[-1].poll() is not None:
                rig.spawn_worker(f"crashy-{started}")
                started += 1
            await asyncio.sleep(0.2)
    failed = await rig.get(crashing.render_id)
    assert failed.state == State.STATE_FAILED
    assert failed.error.reason == "RENDER_CRASHED_WORKER" and not failed.error.retryable
    assert "delivered 3 times" in failed.error.message and failed.retry_count == 0
    # Delivered MAX_DELIVERIES times, each killing its worker; the next worker failed it.
    assert rig.engine_runs()[(crashing.render_id, 1)] == 2
    assert started == 3
    final = await asyncio.wait_for(watcher.task, 10)
    assert final.state == State.STATE_FAILED and final.error.reason == "RENDER_CRASHED_WORKER"
    # The worker that failed it goes on with the next render.
    await rig.wait(healthy.render_id)
    await assert_settled(rig, [crashing.render_id, healthy.render_id], {healthy.render_id})
    client = rig.redis()
    try:
        dead = await stream_fields(client, streams.DEAD_STREAM)
        pending = await client.xpending(streams.SSR_JOBS_STREAM, streams.SSR_JOBS_GROUP)
    finally:
        await client.aclose()
    assert [(d["render_id"], d["reason"]) for d in dead] == [
        (crashing.render_id, "RENDER_CRASHED_WORKER")
    ]
    assert pending["pending"] == 0


async def test_killed_attempt_leaves_no_work_directory(rig_factory: RigFactory) -> None:
    rig: FaultRig = await rig_factory()
    victim = rig.spawn_worker("victim")
    render = await rig.start("hang-once;seconds=0.3")
    await rig.wait(render.render_id, until=lambda r: r.stage == render_pb2.STAGE_RENDERING)
    work = rig.data_dir / "work"
    left = list(work.glob("victim/render-*/output.mp4"))
    assert len(left) == 1  # the attempt's directory, with its output, as a real render's
    # A second live worker starting on the same disk leaves the victim's directory alone.
    bystander = rig.spawn_worker("bystander")
    await rig.started(bystander)  # its start-up cleanup is done
    assert left[0].exists()
    stop_process(victim, signal.SIGKILL)
    stop_process(bystander, signal.SIGTERM)
    assert left[0].exists()  # what a killed attempt leaves behind
    rig.spawn_worker("rescuer")  # a restart under another name (a new pod, say)
    done = await rig.wait(render.render_id)
    assert done.state == State.STATE_SUCCEEDED and done.retry_count == 0
    await assert_settled(rig, [render.render_id], {render.render_id})
    assert not left[0].parent.exists()
    # After the attempt only the live worker's (empty) directory remains.
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == ["rescuer"]
    assert (work / "rescuer.lock").exists() and not (work / "victim.lock").exists()
    assert list((work / "rescuer").iterdir()) == []
