"""render_api against real PostgreSQL and SQLite, real Redis, over real gRPC."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import jwt
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc
from sqlalchemy import func, select, update

from render_common import streams
from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.pricing import Output, estimate_cost
from render_common.renders import queries as renders
from services.render_api import app
from services.render_api.catalogue import SceneCatalogue
from services.render_api.routing import price
from services.render_api.sweeper import Sweeper
from services.render_api.validation import RequestValidator
from tests.conftest import TEST_SECRET, bearer
from tests.support.processes import RedisServer
from tests.support.redis_streams import entries as stream_entries
from tests.support.redis_streams import fields as stream_fields
from tests.support.rpc import check_health_and_reflection, rich_error
from tests.support.scenes import scene, start_request

Stub = render_service_pb2_grpc.RenderServiceStub
StartApi = Callable[..., Awaitable[tuple[app.RenderApi, Stub]]]


@pytest_asyncio.fixture
async def start_api(
    base_settings: Settings,
    database_url: str,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> AsyncIterator[StartApi]:
    """Start render_api in-process on a free port with overridden settings."""
    started: list[app.RenderApi] = []

    async def _start(**overrides: Any) -> tuple[app.RenderApi, Stub]:
        settings = base_settings.with_overrides(database_url=database_url, **overrides)
        api = await app.start(settings, port=0, run_sweeper=overrides.pop("run_sweeper", False))
        started.append(api)
        return api, Stub(channel_to(api.port))

    yield _start
    for api in started:
        await api.stop(0)


async def expect_error(call: Awaitable[Any]) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return rich_error(caught.value)


async def count_rows(api: app.RenderApi, user: str) -> int:
    async with api.engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    select(func.count())
                    .select_from(video_renders)
                    .where(video_renders.c.user_id == user)
                )
            ).scalar_one()
        )


async def jobs_for(redis: Redis, render_id: str) -> list[dict[str, str]]:
    jobs = await stream_fields(redis, streams.SSR_JOBS_STREAM)
    return [fields for fields in jobs if fields.get("render_id") == render_id]


# --- success paths -------------------------------------------------------------------


async def test_start_render_persists_and_enqueues(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    response = await stub.StartRender(
        start_request(request_id="r-1"), metadata=bearer(token_for(user))
    )
    render = response.render
    assert render.state == render_pb2.Render.STATE_QUEUED
    assert render.user_id == user and render.project_id == "project-1"
    assert render.format == render_pb2.FORMAT_MP4 and render.quality == render_pb2.QUALITY_LOW
    assert render.engine == render_pb2.ENGINE_SSR
    assert render.frames_total == 50  # 30 + 30 - 10 frames of fade
    assert render.scene_count == 2
    assert render.queue_job_id
    expected = price("ssr", Output(frames=50, quality="low"), Settings())  # worker time
    assert render.cost_estimate.total_usd == pytest.approx(expected.total_usd)
    assert render.create_time.seconds > 0
    jobs = await jobs_for(redis, render.render_id)
    assert len(jobs) == 1 and jobs[0]["attempt"] == "1" and "traceparent" in jobs[0]
    # The entry id reaches the row after the answer (services/render_api/enqueuer.py): once
    # it has, GetRender reads back exactly what StartRender answered.
    assert await recorded(stub, user, token_for, render.render_id) == render


async def recorded(
    stub: Stub, user: str, token_for: Any, render_id: str, timeout: float = 30.0
) -> render_pb2.Render:
    """GetRender once the row holds its queue entry id."""
    request = render_service_pb2.GetRenderRequest(render_id=render_id)
    async with asyncio.timeout(timeout):
        while True:
            got: render_service_pb2.GetRenderResponse = await stub.GetRender(
                request, metadata=bearer(token_for(user))
            )
            if got.render.queue_job_id:
                return got.render
            await asyncio.sleep(0.05)


async def test_sweeper_checks_an_entry_again_only_when_redis_may_have_lost_it(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    """A pass checks the rows that came of age since the previous one; every row when Redis'
    run_id changed (a restart, a failover) or a minute has passed (stream trimming)."""
    from services.render_api import sweeper as sweeping

    api, stub = await start_api()
    started = await stub.StartRender(start_request(), metadata=bearer(token_for(user)))
    render = await recorded(stub, user, token_for, started.render.render_id)
    await asyncio.sleep(sweeping.COMMIT_SLACK.total_seconds() + 0.2)
    sweeper = sweeping.Sweeper(api.engine, api.redis, grace_seconds=0.0)
    await sweeper.sweep_once()  # the first pass checks every row: the entry is there
    await redis.xdel(streams.SSR_JOBS_STREAM, render.queue_job_id)  # lost; Redis is the same
    await sweeper.sweep_once()
    assert await jobs_for(redis, render.render_id) == []  # checked already: not read again
    sweeper._checked._full_at -= sweeping.FULL_CHECK_SECONDS  # a minute later
    await sweeper.sweep_once()
    assert [job["attempt"] for job in await jobs_for(redis, render.render_id)] == ["1"]
    await stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=render.render_id),
        metadata=bearer(token_for(user)),
    )


async def test_list_renders_pages_and_filters(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api(concurrent_render_limit=50)
    auth = bearer(token_for(user))
    ids = []
    for index in range(5):
        project = "alpha" if index % 2 == 0 else "beta"
        response = await stub.StartRender(start_request(project_id=project), metadata=auth)
        ids.append(response.render.render_id)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListRenders(
            render_service_pb2.ListRendersRequest(page_size=2, page_token=token), metadata=auth
        )
        assert len(page.renders) <= 2
        seen.extend(r.render_id for r in page.renders)
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))  # newest first, no gaps or duplicates
    alpha = await stub.ListRenders(
        render_service_pb2.ListRendersRequest(project_id="alpha"), metadata=auth
    )
    assert {r.render_id for r in alpha.renders} == {ids[0], ids[2], ids[4]}
    cancelled = await stub.ListRenders(
        render_service_pb2.ListRendersRequest(states=[render_pb2.Render.STATE_CANCELLED]),
        metadata=auth,
    )
    assert list(cancelled.renders) == []
    error = await expect_error(
        stub.ListRenders(
            render_service_pb2.ListRendersRequest(page_size=2, page_token="bogus"), metadata=auth
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in error.field_violations
    page = await stub.ListRenders(render_service_pb2.ListRendersRequest(page_size=2), metadata=auth)
    error = await expect_error(
        stub.ListRenders(
            render_service_pb2.ListRendersRequest(
                page_size=2, page_token=page.next_page_token, project_id="beta"
            ),
            metadata=auth,
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_queued_render(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    render = (await stub.StartRender(start_request(), metadata=auth)).render
    cancelled = (
        await stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
        )
    ).render
    assert cancelled.state == render_pb2.Render.STATE_CANCELLED
    assert cancelled.complete_time.seconds > 0
    events = await stream_fields(redis, streams.events_stream(render.render_id))
    assert [fields["state"] for fields in events] == ["cancelled"]
    assert await redis.ttl(streams.events_stream(render.render_id)) > 0
    assert await redis.get(streams.cancel_flag(render.render_id)) == "1"
    again = await stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
    )
    assert again.render.state == render_pb2.Render.STATE_CANCELLED


async def set_status(api: app.RenderApi, render_id: str, status: str) -> None:
    """Move a render's row to `status`, as a worker would."""
    async with api.engine.begin() as connection:
        await connection.execute(
            update(video_renders).where(video_renders.c.id == render_id).values(status=status)
        )


async def next_message(pubsub: PubSub, kind: str, timeout: float = 30.0) -> Any:
    """The next message of a kind ("subscribe": the confirmation; "message": published)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == kind:
                return message


async def test_cancel_running_render_signals_workers(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    render = (await stub.StartRender(start_request(), metadata=auth)).render
    await set_status(api, render.render_id, "running")
    pubsub = redis.pubsub()
    await pubsub.subscribe(streams.CANCEL_CHANNEL)
    try:
        await next_message(pubsub, "subscribe")  # subscribed before anything is published
        response = await stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
        )
        message = await next_message(pubsub, "message")
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    assert message["data"] == render.render_id
    assert response.render.state == render_pb2.Render.STATE_RUNNING  # no worker here to stop it
    async with api.engine.connect() as connection:
        flagged = await connection.execute(
            select(video_renders.c.cancel_requested).where(video_renders.c.id == render.render_id)
        )
    assert flagged.scalar_one() is True


async def test_cancel_terminal_render_is_failed_precondition(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    render = (await stub.StartRender(start_request(), metadata=auth)).render
    await set_status(api, render.render_id, "succeeded")
    error = await expect_error(
        stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=auth
        )
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "RENDER_NOT_CANCELLABLE" and error.domain == "render.v1"
    assert error.precondition_types == ["RENDER_NOT_CANCELLABLE"]


async def test_estimate_render(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api()
    scenes = [scene("title", 900, text="long"), scene("color", 900, color="red")]
    response = await stub.EstimateRender(
        render_service_pb2.EstimateRenderRequest(
            scenes=scenes, format=render_pb2.FORMAT_MP4, quality=render_pb2.QUALITY_HIGH
        ),
        metadata=bearer(token_for(user)),
    )
    assert response.frames_total == 1800
    assert response.duration.seconds == 60
    expected = estimate_cost(1800, "high")
    # Seed formula: 3 GB x 120 s x $0.0000166667 + 0.5 GB x $0.023.
    assert expected.compute_usd == pytest.approx(3 * 120 * 0.0000166667)
    assert expected.storage_usd == pytest.approx(0.5 * 0.023)
    # On SSR it is priced by worker time: 1800 frames x 0.05 s x $0.000025, plus storage.
    assert response.engine == render_pb2.ENGINE_SSR
    assert response.cost.compute_usd == pytest.approx(1800 * 0.05 * 0.000025)
    assert response.cost.storage_usd == pytest.approx(expected.storage_usd)
    assert response.within_budget is True and response.max_cost_usd == 1.0
    assert response.engine_reason


async def test_get_quota(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api(daily_render_limit=7, concurrent_render_limit=3)
    auth = bearer(token_for(user))
    await stub.StartRender(start_request(), metadata=auth)
    await stub.StartRender(start_request(), metadata=auth)
    quota = await stub.GetQuota(render_service_pb2.GetQuotaRequest(), metadata=auth)
    assert (quota.daily_limit, quota.daily_used, quota.daily_remaining) == (7, 2, 5)
    assert (quota.concurrent_limit, quota.concurrent_active) == (3, 2)
    assert quota.reset_time.seconds > time.time()


async def test_health_and_reflection(start_api: StartApi, channel_to: Any) -> None:
    api, _ = await start_api()
    await check_health_and_reflection(channel_to(api.port), "render.v1.RenderService")


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"project_id": ""}, "project_id"),
        ({"project_id": "has spaces"}, "project_id"),
        ({"format": render_pb2.FORMAT_UNSPECIFIED}, "format"),
        ({"quality": 99}, "quality"),
        ({"engine": 42}, "engine"),
        ({"scenes": []}, "scenes"),
        ({"request_id": "x" * 200}, "request_id"),
        ({"scenes": [scene("nope", 30)]}, "scenes[0].type"),
        ({"scenes": [scene("title", 30)]}, "scenes[0].props"),
        ({"scenes": [scene("title", 30, text="a", bogus=1)]}, "scenes[0].props"),
        ({"scenes": [scene("title", 0, text="a")]}, "scenes[0].duration_in_frames"),
        # JSON Schema patterns follow ECMA-262: `$` is the very end, not before a newline.
        ({"scenes": [scene("color", 30, color="red\n")]}, "scenes[0].props.color"),
        ({"scenes": [scene("image", 30, src="https://a.example/x.png\n")]}, "scenes[0].props.src"),
        (
            {
                "scenes": [
                    scene("color", 30, ("spin", 5), color="red"),
                    scene("color", 30, color="red"),
                ]
            },
            "scenes[0].transition.type",
        ),
        ({"scenes": [scene("title", 30, text="a")] * 201}, "scenes"),
        ({"scenes": [scene("title", 18000, text="a")] * 4}, "scenes"),
    ],
)
async def test_invalid_requests_list_field_violations(
    start_api: StartApi, user: str, token_for: Any, overrides: dict[str, Any], field: str
) -> None:
    api, stub = await start_api()
    error = await expect_error(
        stub.StartRender(start_request(**overrides), metadata=bearer(token_for(user)))
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_ARGUMENT" and error.domain == "render.v1"
    assert any(path == field or path.startswith(field + ".") for path in error.field_violations), (
        error.field_violations
    )
    assert "Traceback" not in error.message
    assert await count_rows(api, user) == 0


async def test_many_violations_still_fit_the_clients_metadata_limit(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    # 200 bad scenes (non-ASCII in the values too) once made a status over the client's
    # 8 KiB metadata limit: RESOURCE_EXHAUSTED "Stream removed", no details at all.
    api, stub = await start_api()
    scenes = [
        scene("image", 30, src=f"ftp://cdn.example.com/\u753b\u50cf/{i}-{'z' * 60}.png")
        for i in range(200)
    ]
    error = await expect_error(
        stub.StartRender(start_request(scenes=scenes), metadata=bearer(token_for(user)))
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.reason == "INVALID_ARGUMENT"
    assert 5 <= len(error.field_violations) < 200
    assert next(iter(error.field_violations)) == "scenes[0].props.src"
    assert error.metadata["violations"] == "200"
    assert error.metadata["listed"] == str(len(error.field_violations))
    assert await count_rows(api, user) == 0


async def test_oversized_message_is_rejected(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api(max_message_bytes=64 * 1024)
    big = [scene("text", 30, text="x" * 4000) for _ in range(40)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.StartRender(start_request(scenes=big), metadata=bearer(token_for(user)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await count_rows(api, user) == 0


async def test_too_expensive_is_failed_precondition(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api(max_render_cost_usd=0.00001)
    error = await expect_error(stub.StartRender(start_request(), metadata=bearer(token_for(user))))
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "RENDER_TOO_EXPENSIVE"
    assert float(error.metadata["estimated_usd"]) > 0.00001
    assert error.metadata["engine"] == "ssr"
    assert await count_rows(api, user) == 0


async def test_lambda_not_configured(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api()
    error = await expect_error(
        stub.StartRender(
            start_request(engine=render_pb2.ENGINE_LAMBDA), metadata=bearer(token_for(user))
        )
    )
    assert (
        error.code == grpc.StatusCode.FAILED_PRECONDITION
        and error.reason == "LAMBDA_NOT_CONFIGURED"
    )


async def test_daily_and_concurrent_limits(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api(daily_render_limit=2, concurrent_render_limit=1)
    auth = bearer(token_for(user))
    first = (await stub.StartRender(start_request(), metadata=auth)).render
    error = await expect_error(stub.StartRender(start_request(), metadata=auth))
    assert (
        error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        and error.reason == "CONCURRENT_RENDER_LIMIT"
    )
    assert error.quota_violations == [f"user:{user}"]
    await stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=first.render_id), metadata=auth
    )
    await stub.StartRender(start_request(), metadata=auth)
    error = await expect_error(stub.StartRender(start_request(), metadata=auth))
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason == "DAILY_RENDER_LIMIT"
    assert error.metadata["limit"] == "2"


async def test_request_id_reused_for_another_request(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    await stub.StartRender(start_request(request_id="same"), metadata=auth)
    error = await expect_error(
        stub.StartRender(start_request(request_id="same", project_id="other"), metadata=auth)
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION and error.reason == "REQUEST_ID_REUSED"


# --- auth and isolation ----------------------------------------------------------------


# Tokens below are minted when the module is collected, which may be long before their test
# runs in a full suite: they stay valid for a day, not minutes.
DAY = 24 * 3600


def _token(secret: str, **claims: Any) -> str:
    body = {"sub": "someone", "exp": int(time.time()) + DAY, **claims}
    return jwt.encode(body, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "TOKEN_MISSING"),
        ((("authorization", "Basic abc"),), "TOKEN_MALFORMED"),
        ((("authorization", "Bearer not-a-jwt"),), "TOKEN_INVALID"),
        (bearer(_token(TEST_SECRET, exp=int(time.time()) - 3600)), "TOKEN_EXPIRED"),
        (bearer(_token("another-secret-another-secret-another-secret")), "TOKEN_INVALID"),
        (
            bearer(
                jwt.encode({"sub": "someone", "exp": int(time.time()) + DAY}, "", algorithm="none")
            ),
            "TOKEN_INVALID",
        ),
        (bearer(_token(TEST_SECRET, sub="")), "TOKEN_INVALID"),
    ],
    ids=["missing", "malformed", "garbage", "expired", "forged", "alg-none", "no-subject"],
)
async def test_bad_tokens_are_unauthenticated(
    start_api: StartApi, metadata: Any, reason: str
) -> None:
    api, stub = await start_api()
    for call in (
        stub.StartRender(start_request(), metadata=metadata),
        stub.GetQuota(render_service_pb2.GetQuotaRequest(), metadata=metadata),
        stub.ListRenders(render_service_pb2.ListRendersRequest(), metadata=metadata),
    ):
        error = await expect_error(call)
        assert error.code == grpc.StatusCode.UNAUTHENTICATED
        assert error.reason == reason


async def test_other_users_render_is_not_found_everywhere(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    render = (await stub.StartRender(start_request(), metadata=bearer(token_for(user)))).render
    intruder = bearer(token_for(user + "-intruder"))
    for call in (
        stub.GetRender(
            render_service_pb2.GetRenderRequest(render_id=render.render_id), metadata=intruder
        ),
        stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=intruder
        ),
    ):
        error = await expect_error(call)
        assert error.code == grpc.StatusCode.NOT_FOUND and error.reason == "RENDER_NOT_FOUND"
    listed = await stub.ListRenders(render_service_pb2.ListRendersRequest(), metadata=intruder)
    assert list(listed.renders) == []
    still = await stub.GetRender(
        render_service_pb2.GetRenderRequest(render_id=render.render_id),
        metadata=bearer(token_for(user)),
    )
    assert still.render.state == render_pb2.Render.STATE_QUEUED
    error = await expect_error(
        stub.GetRender(render_service_pb2.GetRenderRequest(render_id="../etc"), metadata=intruder)
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT


# --- concurrency ------------------------------------------------------------------------


async def test_concurrent_retries_create_one_render(
    start_api: StartApi, user: str, token_for: Any, redis: Redis
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    responses = await asyncio.gather(
        *(stub.StartRender(start_request(request_id="retry-me"), metadata=auth) for _ in range(50))
    )
    ids = {r.render.render_id for r in responses}
    assert len(ids) == 1
    assert await count_rows(api, user) == 1
    assert len(await jobs_for(redis, ids.pop())) == 1


async def test_daily_limit_is_race_free(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api(daily_render_limit=10, concurrent_render_limit=1000)
    auth = bearer(token_for(user))
    results = await asyncio.gather(
        *(stub.StartRender(start_request(), metadata=auth) for _ in range(100)),
        return_exceptions=True,
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(admitted) == 10 and len(refused) == 90
    assert all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused)
    assert await count_rows(api, user) == 10


async def test_batched_intakes_of_many_users_keep_each_users_limits(
    start_api: StartApi, token_for: Any, redis: Redis
) -> None:
    """Concurrent StartRenders share transactions (group commit); every user's quota,
    request_id and ownership stay their own."""
    api, stub = await start_api(daily_render_limit=3, concurrent_render_limit=1000)
    users = [f"batch-user-{uuid.uuid4().hex[:8]}-{n}" for n in range(8)]
    calls = []
    for user in users:
        auth = bearer(token_for(user))
        calls += [stub.StartRender(start_request(), metadata=auth) for _ in range(5)]
        calls += [
            stub.StartRender(start_request(request_id="same", project_id=f"p{k}"), metadata=auth)
            for k in range(3)
        ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    per_user = len(results) // len(users)
    for index, user in enumerate(users):
        mine = results[index * per_user : (index + 1) * per_user]
        admitted = {r.render.render_id for r in mine if not isinstance(r, BaseException)}
        codes = sorted(r.code().name for r in mine if isinstance(r, grpc.aio.AioRpcError))
        assert len(admitted) == 3, (user, mine)
        assert set(codes) <= {"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION"}, codes
        assert await count_rows(api, user) == 3
        for render_id in admitted:
            entries = await jobs_for(redis, render_id)
            assert len(entries) == 1
            row = await renders.get(api.engine, render_id)
            assert row is not None and row.user_id == user
    # Entry ids are recorded on the rows just after the answers (in the background).
    for render_id in admitted_all(results):
        deadline = time.monotonic() + 5
        while (row := await renders.get(api.engine, render_id)) is None or not row.queue_job_id:
            assert time.monotonic() < deadline, f"{render_id}: entry id never recorded"
            await asyncio.sleep(0.02)
        assert row is not None
        # Leave no work behind for the workers of later tests (same database and stream).
        await stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render_id),
            metadata=bearer(token_for(row.user_id)),
        )


def test_new_rows_fill_exactly_the_columns_the_batch_insert_names() -> None:
    from datetime import UTC, datetime

    from render_common.db.schema import video_renders
    from render_common.renders import admit, admit_sql
    from services.render_api import intake

    spec = RequestValidator(Settings(), SceneCatalogue.load()).start_request(start_request())
    cost = estimate_cost(spec.frames_total, spec.quality).as_dict()
    request = intake.new_render(intake.IntakeRequest("u", spec, "ssr", cost, ""))
    row = admit._queued_row(request, datetime.now(UTC))
    assert set(row) <= set(video_renders.c.keys())
    columns = tuple(row)
    assert set(admit_sql.as_columns(columns, [row, row])) == set(row)
    assert str(admit_sql.insert_many(columns)).count(":") == len(columns)


def admitted_all(results: list[Any]) -> list[str]:
    """Render ids of the successful StartRenders among gathered results."""
    return [r.render.render_id for r in results if not isinstance(r, BaseException)]


# --- Redis failure ----------------------------------------------------------------------


async def entries_of(redis: Redis, render_id: str) -> list[tuple[str, dict[str, str]]]:
    """The job stream's entries of one render, (entry id, fields)."""
    entries = await stream_entries(redis, streams.SSR_JOBS_STREAM)
    return [(entry_id, f) for entry_id, f in entries if f["render_id"] == render_id]


async def lose_queue_entry(api: app.RenderApi, redis: Redis, render: render_pb2.Render) -> None:
    """As if the XADD after the commit had failed: no entry, no entry id on the row."""
    await redis.xdel(streams.SSR_JOBS_STREAM, render.queue_job_id)
    async with api.engine.begin() as connection:
        await connection.execute(
            update(video_renders)
            .where(video_renders.c.id == render.render_id)
            .values(queue_job_id=None)
        )


async def test_redis_down_start_render_is_unavailable_and_writes_nothing(
    base_settings: Settings, database_url: str, channel_to: Any, user: str, token_for: Any
) -> None:
    own_redis = RedisServer()
    own_redis.start()
    settings = base_settings.with_overrides(database_url=database_url, redis_url=own_redis.url)
    api = await app.start(settings, port=0, run_sweeper=False)
    check = Redis.from_url(own_redis.url, decode_responses=True)
    try:
        stub = Stub(channel_to(api.port))
        own_redis.stop()
        began = time.monotonic()
        request = start_request(request_id="while-down")
        error = await expect_error(stub.StartRender(request, metadata=bearer(token_for(user))))
        assert error.code == grpc.StatusCode.UNAVAILABLE and error.reason == "REDIS_UNAVAILABLE"
        assert time.monotonic() - began < 5.0  # refused connections: at once, no timeout
        assert await count_rows(api, user) == 0  # a render is admitted only if it can be queued
        own_redis.start()
        response = await stub.StartRender(request, metadata=bearer(token_for(user)))
        render = response.render
        assert [e for e, _ in await entries_of(check, render.render_id)] == [render.queue_job_id]
        # Should the XADD after the commit still fail (Redis dies in between, or render_api
        # does), the sweeper enqueues the committed render. (First the entry id's own
        # recording, after the answer, must be over, or it would undo the loss.)
        await recorded(stub, user, token_for, render.render_id)
        await lose_queue_entry(api, check, render)
        sweeper = Sweeper(api.engine, api.redis, grace_seconds=0.0)
        # The module's other QUEUED renders have no entry in this Redis either: the sweeper
        # enqueues them too, which is right; look at this render's entries only.
        assert await sweeper.sweep_once() >= 1
        await sweeper.sweep_once()
        swept = await entries_of(check, render.render_id)
        assert len(swept) == 1 and swept[0][1]["attempt"] == "1"
        assert (await recorded(stub, user, token_for, render.render_id)).queue_job_id == swept[0][0]
        assert await count_rows(api, user) == 1
    finally:
        await check.aclose()
        await api.stop(0)
        own_redis.close()
