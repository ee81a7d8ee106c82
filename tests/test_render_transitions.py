"""The render's states, its record and its transitions (render_common/renders/) against
real SQLite, PostgreSQL and Redis: each transition's conditional update refuses a render
in the wrong state, and emits its event and its Redis bookkeeping only when it applies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import render_pb2
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.db.engine import engine_for
from render_common.db.schema import video_renders
from render_common.downloads import DownloadLinks
from render_common.renders import queries as renders
from render_common.renders.attempts import AttemptTransitions
from render_common.renders.bookkeeping import Bookkeeping
from render_common.renders.lease import RenderLifecycle
from render_common.renders.record import Render
from render_common.renders.states import ACTIVE, TERMINAL, Stage, State
from render_common.renders.transitions import Transitions
from render_common.resources import STAGE_TO_PROTO, STATE_TO_PROTO, render_message
from tests.support.render_rows import insert_render


@pytest_asyncio.fixture
async def engine(base_settings: Settings, database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on each database in turn (migrated by the fixtures)."""
    db = engine_for(base_settings.with_overrides(database_url=database_url))
    yield db
    await db.dispose()


@pytest_asyncio.fixture
async def transitions(base_settings: Settings, engine: AsyncEngine, redis: Redis) -> Transitions:
    """The transitions over that database and the test Redis."""
    return Transitions(base_settings, engine, redis)


async def events_of(redis: Redis, render_id: str) -> list[dict[str, str]]:
    """The fields of a render's progress events, oldest first."""
    entries: Any = await redis.xrange(streams.events_stream(render_id))
    return [
        {
            str(k if isinstance(k, str) else k.decode()): str(
                v if isinstance(v, str) else v.decode()
            )
            for k, v in fields.items()
        }
        for _, fields in entries
    ]


async def set_row(engine: AsyncEngine, render_id: str, **values: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(video_renders).where(video_renders.c.id == render_id).values(**values)
        )


async def stored(engine: AsyncEngine, render_id: str) -> Render:
    render = await renders.get(engine, render_id)
    assert render is not None
    return render


def test_states_and_stages_are_the_protos() -> None:
    assert set(State) == ACTIVE | TERMINAL and not ACTIVE & TERMINAL
    assert {render_pb2.Render.State.Name(v) for v in STATE_TO_PROTO.values()} == {
        f"STATE_{s.name}" for s in State
    }
    assert len(set(STAGE_TO_PROTO.values())) == len(Stage)
    stored_value: str = "queued"
    assert stored_value == State.QUEUED and f"{Stage.DONE}" == "done"


async def test_record_from_a_stored_row(engine: AsyncEngine, user: str) -> None:
    render_id = await insert_render(engine, user, lambda_render_id="lr-1")
    render = await stored(engine, render_id)
    assert render.status is State.QUEUED and render.stage is Stage.QUEUED
    assert render.active and not render.terminal
    assert render.created_at.tzinfo is not None
    assert render.scenes[0]["type"] == "color"
    assert render.lambda_details == {"lambda_render_id": "lr-1"}
    message = render_message(render, DownloadLinks(Settings()))
    assert message.state == render_pb2.Render.STATE_QUEUED and message.frames_total == 100


async def test_cancel_queued(
    transitions: Transitions, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    render_id = await insert_render(engine, user)
    cancelled = await transitions.cancel_queued(render_id)
    assert cancelled is not None and cancelled.status is State.CANCELLED
    assert cancelled.stage is Stage.DONE and cancelled.completed_at is not None
    assert (await stored(engine, render_id)).status is State.CANCELLED
    [event] = await events_of(redis, render_id)
    assert (event["state"], event["stage"]) == ("cancelled", "done")
    assert await redis.get(streams.cancel_flag(render_id)) is not None
    # Once cancelled (or when running) the transition refuses, writes and emits nothing.
    assert await transitions.cancel_queued(render_id) is None
    running = await insert_render(engine, user, status=State.RUNNING, stage=Stage.RENDERING)
    assert await transitions.cancel_queued(running) is None
    assert (await stored(engine, running)).status is State.RUNNING
    assert len(await events_of(redis, render_id)) == 1 and not await events_of(redis, running)
    assert await redis.get(streams.cancel_flag(running)) is None


async def test_cancel_running(
    transitions: Transitions, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    queued = await insert_render(engine, user)
    assert await transitions.cancel_running(queued) is None
    assert not (await stored(engine, queued)).cancel_requested
    assert await redis.get(streams.cancel_flag(queued)) is None
    running = await insert_render(engine, user, status=State.RUNNING, stage=Stage.RENDERING)
    requested = await transitions.cancel_running(running)
    assert requested is not None and requested.status is State.RUNNING
    assert requested.cancel_requested and (await stored(engine, running)).cancel_requested
    assert await redis.get(streams.cancel_flag(running)) is not None


async def test_hand_back_silent(
    transitions: Transitions, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    old = datetime.now(UTC) - timedelta(minutes=5)
    render_id = await insert_render(
        engine, user, status=State.RUNNING, stage=Stage.RENDERING, attempt=2, worker_id="w1"
    )
    await set_row(engine, render_id, updated_at=old)
    cutoff = datetime.now(UTC) - timedelta(minutes=1)
    # Another worker's lease, another attempt, or a lease renewed since: refused.
    assert await transitions.hand_back_silent(render_id, "w2", 2, cutoff) is None
    assert await transitions.hand_back_silent(render_id, "w1", 1, cutoff) is None
    assert await transitions.hand_back_silent(render_id, "w1", 2, old) is None
    assert not await events_of(redis, render_id)
    back = await transitions.hand_back_silent(render_id, "w1", 2, cutoff)
    assert back is not None and back.status is State.QUEUED and back.stage is Stage.QUEUED
    assert back.attempt == 1 and back.worker_id is None and back.queue_job_id is None
    [event] = await events_of(redis, render_id)
    assert event["state"] == "queued"
    assert await transitions.hand_back_silent(render_id, None, 1, cutoff) is None


async def test_forget_lost_entry_and_reenqueue(
    transitions: Transitions, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    render_id = await insert_render(engine, user, queue_job_id="1-1")
    assert not await transitions.forget_lost_entry(render_id, "2-2")  # names another entry
    assert await transitions.forget_lost_entry(render_id, "1-1")
    assert (await stored(engine, render_id)).queue_job_id is None
    [(rid, entry_id)] = await transitions.reenqueue([(render_id, 1)])
    assert rid == render_id
    entries: Any = await redis.xrange(streams.SSR_JOBS_STREAM, entry_id, entry_id)
    [(_, fields)] = entries
    assert fields["render_id"] == render_id and fields["attempt"] == "1"
    assert (await stored(engine, render_id)).queue_job_id == entry_id
    await redis.xdel(streams.SSR_JOBS_STREAM, entry_id)  # no work for other tests' workers
    # A render that meanwhile has an entry keeps it.
    await transitions.reenqueue([(render_id, 1)])
    assert (await stored(engine, render_id)).queue_job_id == entry_id


# --- the worker's transitions (render_common/renders/attempts.py) ----------------------


def attempts_of(
    settings: Settings, engine: AsyncEngine, redis: Redis, worker: str
) -> AttemptTransitions:
    """One worker's transitions."""
    return AttemptTransitions(
        settings,
        RenderLifecycle(engine, worker, visibility_seconds=30.0),
        Bookkeeping(settings, redis),
    )


async def dead_letters_of(redis: Redis, render_id: str) -> list[dict[str, Any]]:
    entries: Any = await redis.xrange(streams.DEAD_STREAM)
    return [fields for _, fields in entries if fields.get("render_id") == render_id]


async def test_claim_and_succeed(
    base_settings: Settings, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    worker = attempts_of(base_settings, engine, redis, "w1")
    other = attempts_of(base_settings, engine, redis, "w2")
    render_id = await insert_render(engine, user)
    claimed = await worker.claim(render_id, 1, reclaimed=False, entry_id="5-0")
    assert claimed is not None and claimed.status is State.RUNNING
    assert (claimed.worker_id, claimed.attempt, claimed.queue_job_id) == ("w1", 1, "5-0")
    [started] = await events_of(redis, render_id)
    assert (started["state"], started["stage"]) == ("running", "bundling")
    # A second delivery of the same attempt (another worker, not reclaimed) is refused.
    assert await other.claim(render_id, 1, reclaimed=False, entry_id="5-0") is None
    # Only the holder completes it, once.
    assert await other.succeed(claimed, {"output_key": "k"}) is None
    done = await worker.succeed(claimed, {"output_key": "k"})
    assert done is not None and done.status is State.SUCCEEDED and done.output_key == "k"
    assert await worker.succeed(claimed, {"output_key": "k2"}) is None
    assert [e["state"] for e in await events_of(redis, render_id)] == ["running", "succeeded"]
    assert (await stored(engine, render_id)).output_key == "k"


async def test_claim_refuses_a_cancelled_render(
    base_settings: Settings, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    worker = attempts_of(base_settings, engine, redis, "w1")
    render_id = await insert_render(engine, user, status=State.CANCELLED, stage=Stage.DONE)
    assert await worker.claim(render_id, 1, reclaimed=True, entry_id="1-0") is None
    assert not await events_of(redis, render_id)


async def test_fail_and_schedule_retry(
    base_settings: Settings, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    worker = attempts_of(base_settings, engine, redis, "w1")
    render_id = await insert_render(engine, user)
    claimed = await worker.claim(render_id, 1, reclaimed=False, entry_id="1-0")
    assert claimed is not None
    queued = await worker.schedule_retry(claimed, 1, "INTERNAL", "boom", "", traceparent="")
    assert queued is not None and queued.status is State.QUEUED
    assert queued.queue_job_id == "retry:2" and queued.error_reason == "INTERNAL"
    members: Any = await redis.zrange(streams.RETRY_ZSET, 0, -1)
    assert any(render_id in str(m) for m in members)
    await redis.zrem(streams.RETRY_ZSET, *[m for m in members if render_id in str(m)])
    assert (await events_of(redis, render_id))[-1]["state"] == "queued"
    # No longer RUNNING on this worker: neither a second retry nor a failure applies.
    assert await worker.schedule_retry(claimed, 1, "INTERNAL", "x", "", traceparent="") is None
    assert await worker.fail(claimed, 1, "INTERNAL", "x", "", True) is None
    assert not await dead_letters_of(redis, render_id)
    again = await worker.claim(render_id, 2, reclaimed=False, entry_id="2-0")
    assert again is not None
    failed = await worker.fail(again, 2, "ASSET_NOT_FOUND", "404", "", False)
    assert failed is not None and failed.status is State.FAILED
    [letter] = await dead_letters_of(redis, render_id)
    assert letter["reason"] == "ASSET_NOT_FOUND"
    last = (await events_of(redis, render_id))[-1]
    assert (last["state"], last["error_reason"]) == ("failed", "ASSET_NOT_FOUND")


async def test_fail_crashed(
    base_settings: Settings, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    worker = attempts_of(base_settings, engine, redis, "w1")
    done = await insert_render(engine, user, status=State.SUCCEEDED, stage=Stage.DONE)
    assert await worker.fail_crashed(done, 1, "RENDER_CRASHED_WORKER", "x") is None
    assert not await dead_letters_of(redis, done)
    render_id = await insert_render(engine, user)
    failed = await worker.fail_crashed(render_id, 1, "RENDER_CRASHED_WORKER", "died")
    assert failed is not None and failed.status is State.FAILED and not failed.error_retryable
    assert [d["reason"] for d in await dead_letters_of(redis, render_id)] == [
        "RENDER_CRASHED_WORKER"
    ]
    assert (await events_of(redis, render_id))[-1]["state"] == "failed"


async def test_cancelled_and_hand_back(
    base_settings: Settings, engine: AsyncEngine, redis: Redis, user: str
) -> None:
    worker = attempts_of(base_settings, engine, redis, "w1")
    other = attempts_of(base_settings, engine, redis, "w2")
    render_id = await insert_render(engine, user)
    claimed = await worker.claim(render_id, 1, reclaimed=False, entry_id="1-0")
    assert claimed is not None
    assert await other.hand_back(render_id, user, 1, "", "ssr") is None
    back = await worker.hand_back(render_id, user, 1, "", "ssr")
    assert back is not None and back.status is State.QUEUED and back.attempt == 0
    entry_id = (await stored(engine, render_id)).queue_job_id
    assert entry_id is not None
    entries: Any = await redis.xrange(streams.SSR_JOBS_STREAM, entry_id, entry_id)
    [(_, fields)] = entries
    assert fields["render_id"] == render_id and fields["attempt"] == "1"
    await redis.xdel(streams.SSR_JOBS_STREAM, entry_id)
    assert (await events_of(redis, render_id))[-1]["state"] == "queued"
    claimed = await worker.claim(render_id, 1, reclaimed=False, entry_id="2-0")
    assert claimed is not None
    assert await other.cancelled(claimed, 0.5, 10) is None
    cancelled = await worker.cancelled(claimed, 0.5, 10)
    assert cancelled is not None and cancelled.status is State.CANCELLED
    last = (await events_of(redis, render_id))[-1]
    assert (last["state"], last["frames_rendered"]) == ("cancelled", "10")
