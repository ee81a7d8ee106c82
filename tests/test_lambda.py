"""The Lambda engine end to end: render_api, worker, webhook endpoint, real Redis and
PostgreSQL, the remotion-lambda client, and a local server speaking the Lambda Invoke API
like a Remotion function (tests/support/fake_lambda.py) with S3 on moto.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2

from render_common import streams
from render_common.config import ROOT, ConfigError, Settings
from services.render_api.routing import choose_engine
from services.render_worker import app as worker_app
from services.render_worker.engines.lambda_client import frames_per_lambda
from services.render_worker.webhook import verify_signature
from tests.support import isolation
from tests.support.fake_lambda import (
    FUNCTION_NAME,
    REMOTION_VERSION,
    FakeRemotionLambda,
    calculate_signature,
    js_stringify,
)
from tests.support.lambda_env import WEBHOOK_SECRET, lambda_settings
from tests.support.links import download, expires_in, wait_until_expired
from tests.support.redis_streams import fields as stream_fields
from tests.support.scenes import scene
from tests.support.stack import Stack, close_all, start_stack

# This module runs on its own Redis and database (see tests/support/isolation.py).
base_settings = isolation.base_settings
module_redis = isolation.module_redis
postgres_url = isolation.postgres_url
redis = isolation.redis

StartStack = Callable[..., Awaitable[Stack]]
SUCCEEDED = render_pb2.Render.STATE_SUCCEEDED


@pytest_asyncio.fixture
async def lambda_stack(
    base_settings: Settings,
    postgres_url: str,
    tmp_path: Path,
    user: str,
    fake_lambda: FakeRemotionLambda,
) -> AsyncIterator[StartStack]:
    stacks: list[Stack] = []

    async def _start(**overrides: Any) -> Stack:
        webhook = overrides.pop("webhook", True)
        worker = overrides.pop("worker", True)
        base = base_settings.with_overrides(
            database_url=postgres_url,
            data_dir=str(tmp_path / "data"),
            retry_base_delay_seconds=0.2,
            visibility_timeout_seconds=3.0,
        )
        settings = lambda_settings(base, webhook=webhook, **overrides)
        stack = await start_stack(settings, user, worker=worker, warm=False)
        stacks.append(stack)
        return stack

    yield _start
    await close_all(stacks)


def short_scenes() -> list[render_pb2.Scene]:
    return [scene("title", 30, text="Lambda"), scene("color", 30, color="#123456")]


async def start_lambda(stack: Stack, **fields: Any) -> render_pb2.Render:
    fields.setdefault("engine", render_pb2.ENGINE_LAMBDA)
    return await stack.start(short_scenes(), project="lambda-proj", **fields)


async def events_of(redis: Redis, render_id: str) -> list[dict[str, str]]:
    return await stream_fields(redis, streams.events_stream(render_id))


async def wait_for_lambda_id(stack: Stack, render_id: str) -> render_pb2.Render:
    return await stack.wait(render_id, until=lambda r: bool(r.lambda_details.render_id), timeout=30)


async def running_without_webhook(
    lambda_stack: StartStack, fake: FakeRemotionLambda
) -> tuple[Stack, render_pb2.Render]:
    """A Lambda render that runs for a minute, sends no webhook and is not polled."""
    fake.plan.seconds = 60
    fake.plan.webhook = False
    stack = await lambda_stack(lambda_poll_interval_seconds=120.0)
    return stack, await wait_for_lambda_id(stack, (await start_lambda(stack)).render_id)


def status_calls(fake: FakeRemotionLambda, lambda_render_id: str) -> int:
    return sum(
        1
        for p in fake.invocations
        if p.get("type") == "status" and p.get("renderId") == lambda_render_id
    )


# --- the engine --------------------------------------------------------------------


async def test_render_succeeds_with_lambda_details_cost_and_events(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda, redis: Redis
) -> None:
    stack = await lambda_stack(webhook=False)
    render = await start_lambda(stack, quality=render_pb2.QUALITY_LOW)
    assert render.engine == render_pb2.ENGINE_LAMBDA
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == SUCCEEDED, done.error

    (lambda_id,) = fake_lambda.renders
    assert done.lambda_details.render_id == lambda_id
    assert done.lambda_details.function_name == FUNCTION_NAME
    assert done.lambda_details.bucket_name == fake_lambda.renders[lambda_id].bucket
    assert done.output_url.startswith(fake_lambda.s3.endpoint)
    async with httpx.AsyncClient() as client:
        assert (await client.get(done.output_url)).content[4:8] == b"ftyp"
    assert done.cost_actual.total_usd > 0
    assert done.cost_estimate.total_usd > 0
    assert (done.metadata.width, done.metadata.height) == (1280, 720)
    assert done.metadata.size_bytes > 0

    events = await events_of(redis, render.render_id)
    states = [e["state"] for e in events]
    assert states.count("succeeded") == 1 and states[-1] == "succeeded"
    progress = [float(e.get("progress", 0) or 0) for e in events if e["state"] == "running"]
    assert progress == sorted(progress) and max(progress) > 0.05
    assert any(e.get("stage") == "rendering" for e in events)


async def test_private_output_is_signed_at_each_read(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    """privacy private: the object refuses anonymous reads; GetRender signs a GET of the
    Lambda bucket's object, which expires, and the next read signs a working one."""
    stack = await lambda_stack(lambda_privacy="private", download_url_ttl_seconds=4)
    render = await start_lambda(stack)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == SUCCEEDED, done.error
    (lambda_id,) = fake_lambda.renders
    ran = fake_lambda.renders[lambda_id]
    assert ran.params["privacy"] == "private"
    object_url = f"{fake_lambda.s3.endpoint}/{ran.bucket}/{ran.out_key}"
    assert done.output_url.startswith(object_url + "?") and expires_in(done.output_url) == 4
    assert (await download(object_url)).status_code == 403
    first = await download(done.output_url)
    assert first.status_code == 200 and first.content[4:8] == b"ftyp"
    await wait_until_expired(done.output_url)
    assert (await download(done.output_url)).status_code == 403
    again = await stack.get(render.render_id)
    assert (await download(again.output_url)).content == first.content


async def test_public_output_keeps_its_url(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    """privacy public: the function's URL, unchanged from read to read, readable by anyone."""
    public_stack = await lambda_stack(webhook=False)
    public = await start_lambda(public_stack)
    public_done = await public_stack.wait(public.render_id, timeout=60)
    assert public_done.state == SUCCEEDED, public_done.error
    ran = fake_lambda.renders[public_done.lambda_details.render_id]
    assert ran.params["privacy"] == "public"
    assert public_done.output_url == f"{fake_lambda.s3.endpoint}/{ran.bucket}/{ran.out_key}"
    assert (await public_stack.get(public.render_id)).output_url == public_done.output_url
    assert (await download(public_done.output_url)).content[4:8] == b"ftyp"


async def test_start_sends_the_seed_settings(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    stack = await lambda_stack()
    render = await start_lambda(
        stack, quality=render_pb2.QUALITY_HIGH, format=render_pb2.FORMAT_WEBM
    )
    assert (await stack.wait(render.render_id, timeout=60)).state == SUCCEEDED
    (start,) = fake_lambda.starts()
    assert start["version"] == REMOTION_VERSION
    assert start["composition"] == "MainComposition"
    assert (start["codec"], start["crf"], start["jpegQuality"]) == ("vp8", 18, 90)
    assert (start["forceWidth"], start["forceHeight"]) == (1920, 1080)
    assert start["framesPerLambda"] == 20 and start["maxRetries"] == 3
    assert start["timeoutInMilliseconds"] == 60_000  # delayRender wait per frame
    assert start["privacy"] == "public"
    assert start["enableCancellation"] is True
    assert start["downloadBehavior"]["type"] == "download"
    assert start["downloadBehavior"]["fileName"].endswith(".webm")
    assert start["chromiumOptions"] == {}  # never the client's snake_case dataclass
    assert start["webhook"]["url"] == stack.settings.webhook_url
    assert start["webhook"]["secret"] == WEBHOOK_SECRET
    custom = start["webhook"]["customData"]
    assert custom == {"renderId": render.render_id, "attempt": 1}
    assert json.dumps(custom).isascii()
    props = json.loads(start["inputProps"]["payload"])
    assert props["projectId"] == "lambda-proj"
    assert [s["type"] for s in props["scenes"]] == ["title", "color"]


async def test_webhook_completes_without_waiting_for_the_next_poll(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda, redis: Redis
) -> None:
    fake_lambda.plan.seconds = 1.0
    stack = await lambda_stack(lambda_poll_interval_seconds=120.0)
    render = await start_lambda(stack)
    done = await stack.wait(render.render_id, timeout=30)
    assert done.state == SUCCEEDED, done.error
    lambda_id = done.lambda_details.render_id
    assert fake_lambda.renders[lambda_id].webhook_responses == [200]
    # Only the one status call after the webhook (for size and dimensions): no polling.
    assert status_calls(fake_lambda, lambda_id) == 1
    assert done.cost_actual.total_usd > 0
    states = [e["state"] for e in await events_of(redis, render.render_id)]
    assert states.count("succeeded") == 1


async def test_webhook_and_polling_racing_complete_once(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda, redis: Redis
) -> None:
    fake_lambda.plan.seconds = 0.5
    stack = await lambda_stack(lambda_poll_interval_seconds=0.02)
    renders = [await start_lambda(stack) for _ in range(4)]
    for render in renders:
        done = await stack.wait(render.render_id, timeout=60)
        assert done.state == SUCCEEDED, done.error
    for render_id, fake_render in fake_lambda.renders.items():
        assert await asyncio.to_thread(fake_render.webhook_sent.wait, 10)
        assert fake_render.webhook_responses == [200], render_id
    for render in renders:
        events = await events_of(redis, render.render_id)
        assert [e["state"] for e in events].count("succeeded") == 1


async def test_fatal_error_fails_without_retry(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    fake_lambda.plan.outcome = "fatal"
    fake_lambda.plan.seconds = 0.5
    stack = await lambda_stack()
    render = await start_lambda(stack)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.reason == "LAMBDA_RENDER_FAILED"
    assert "TypeError" in done.error.message
    assert not done.error.retryable
    assert done.retry_count == 0
    assert len(fake_lambda.starts()) == 1


async def test_timeout_webhook_fails_the_render(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    fake_lambda.plan.outcome = "timeout"
    fake_lambda.plan.seconds = 0.5
    stack = await lambda_stack(lambda_poll_interval_seconds=120.0)
    done = await stack.wait((await start_lambda(stack)).render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.reason == "LAMBDA_TIMEOUT"
    assert len(fake_lambda.starts()) == 1


async def test_throttled_start_is_retried_then_succeeds(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    # A throttled start (HTTP 429) did not start: the engine backs off and starts again
    # within the attempt (no retry spent); the fourth start is accepted.
    fake_lambda.plan.throttle_starts = 3
    fake_lambda.plan.seconds = 0.5
    stack = await lambda_stack()
    done = await stack.wait((await start_lambda(stack)).render_id, timeout=60)
    assert done.state == SUCCEEDED, done.error
    assert done.retry_count == 0
    assert len(fake_lambda.starts()) == 4 and len(fake_lambda.renders) == 1


async def test_cancel_stops_the_lambda_render(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda, redis: Redis
) -> None:
    fake_lambda.plan.seconds = 60
    stack = await lambda_stack()
    render = await start_lambda(stack)
    running = await wait_for_lambda_id(stack, render.render_id)
    await stack.stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=stack.auth
    )
    done = await stack.wait(render.render_id, timeout=15)
    assert done.state == render_pb2.Render.STATE_CANCELLED
    assert fake_lambda.cancelled(running.lambda_details.render_id)
    assert (await events_of(redis, render.render_id))[-1]["state"] == "cancelled"


async def test_handed_back_render_is_followed_not_started_again(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    fake_lambda.plan.seconds = 4
    stack = await lambda_stack(webhook=False)
    render = await start_lambda(stack)
    running = await wait_for_lambda_id(stack, render.render_id)
    assert stack.worker is not None
    await stack.worker.stop(0)  # shutdown past its grace: the attempt is handed back
    stack.worker = await worker_app.start(stack.settings, health_port=0, warm=False)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == SUCCEEDED, done.error
    assert done.lambda_details.render_id == running.lambda_details.render_id
    assert len(fake_lambda.starts()) == 1


# --- the webhook endpoint --------------------------------------------------------------


def webhook_body(render: render_pb2.Render, kind: str = "success", **extra: Any) -> str:
    payload: dict[str, Any] = {
        "type": kind,
        "renderId": render.lambda_details.render_id,
        "expectedBucketOwner": "123456789012",
        "bucketName": render.lambda_details.bucket_name,
        "customData": {"renderId": render.render_id, "attempt": 1},
    }
    if kind == "success":
        payload.update(
            outputUrl="https://example.com/out.mp4",
            outputFile="https://example.com/out.mp4",
            lambdaErrors=[],
            timeToFinish=1000,
            costs={"accruedSoFar": 0.001, "displayCost": "$0.001", "currency": "USD"},
        )
    payload.update(extra)
    return js_stringify(payload)


async def post(
    stack: Stack, body: str | bytes, signature: str | None, status: str = "success"
) -> httpx.Response:
    headers = {"Content-Type": "application/json", "X-Remotion-Status": status}
    if signature is not None:
        headers["X-Remotion-Signature"] = signature
    async with httpx.AsyncClient() as client:
        return await client.post(
            stack.settings.webhook_url,
            content=body.encode() if isinstance(body, str) else body,
            headers=headers,
        )


async def test_webhook_rejects_forged_unsigned_tampered_and_replayed_calls(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda, redis: Redis
) -> None:
    stack, render = await running_without_webhook(lambda_stack, fake_lambda)
    body = webhook_body(render)
    good = calculate_signature(body, WEBHOOK_SECRET)

    forged = await post(stack, body, calculate_signature(body, "not-the-secret"))
    unsigned = await post(stack, body, None)
    no_secret = await post(stack, body, "NO_SECRET_PROVIDED")
    tampered = await post(stack, body.replace("out.mp4", "evil.mp4"), good)
    truncated = await post(stack, body, good[:-2])
    assert [r.status_code for r in (forged, unsigned, no_secret, tampered, truncated)] == [401] * 5

    mismatch = await post(stack, body, good, status="error")
    assert mismatch.status_code == 400, mismatch.text
    not_json = await post(stack, "{not json", calculate_signature("{not json", WEBHOOK_SECRET))
    assert not_json.status_code == 400
    stranger = webhook_body(render, customData={"renderId": "0" * 36})
    unknown = await post(stack, stranger, calculate_signature(stranger, WEBHOOK_SECRET))
    assert unknown.status_code == 404

    # Nothing so far was accepted: the render still runs.
    assert (await stack.get(render.render_id)).state == render_pb2.Render.STATE_RUNNING

    accepted = await post(stack, body, good)
    assert accepted.status_code == 200, accepted.text
    replayed = await post(stack, body, good)
    assert replayed.status_code == 409
    done = await stack.wait(render.render_id, timeout=15)
    assert done.state == SUCCEEDED
    assert done.output_url == "https://example.com/out.mp4"
    states = [e["state"] for e in await events_of(redis, render.render_id)]
    assert states.count("succeeded") == 1


async def test_error_webhook_fails_the_render(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    stack, render = await running_without_webhook(lambda_stack, fake_lambda)
    errors = [{"message": "Error: composition threw", "name": "Error", "stack": "Error: x"}]
    body = webhook_body(render, "error", errors=errors)
    response = await post(stack, body, calculate_signature(body, WEBHOOK_SECRET), "error")
    assert response.status_code == 200
    done = await stack.wait(render.render_id, timeout=15)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.reason == "LAMBDA_RENDER_FAILED"
    assert "composition threw" in done.error.message


async def test_webhook_sent_by_remotions_own_code_is_accepted(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    """@remotion/serverless's invokeWebhook (what the function runs) against our endpoint."""
    stack, render = await running_without_webhook(lambda_stack, fake_lambda)
    payload = json.loads(webhook_body(render))
    script = (
        "const {invokeWebhook} = require('@remotion/serverless');"
        "const [url, secret, payload] = process.argv.slice(1);"
        "invokeWebhook({options: {url, secret, payload: JSON.parse(payload)},"
        " logLevel: 'error', retries: 0})"
        ".then(() => console.log('sent'), (e) => { console.error(e.message); process.exit(1); });"
    )
    node = await asyncio.create_subprocess_exec(
        "node",
        "-e",
        script,
        stack.settings.webhook_url,
        WEBHOOK_SECRET,
        json.dumps(payload),
        cwd=ROOT / "remotion",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await node.communicate()
    assert node.returncode == 0, err.decode()
    assert out.decode().strip() == "sent"
    done = await stack.wait(render.render_id, timeout=15)
    assert done.state == SUCCEEDED
    assert done.output_url == payload["outputUrl"]
    body = js_stringify(payload).encode()
    signature = calculate_signature(js_stringify(payload), WEBHOOK_SECRET)
    assert verify_signature(body, signature, WEBHOOK_SECRET)
    assert not verify_signature(body + b" ", signature, WEBHOOK_SECRET)
    assert not verify_signature(body, signature, "")


# --- AUTO routing ----------------------------------------------------------------------


async def estimate(stack: Stack, frames: int, **fields: Any) -> Any:
    fields.setdefault("format", render_pb2.FORMAT_MP4)
    fields.setdefault("quality", render_pb2.QUALITY_LOW)
    request = render_service_pb2.EstimateRenderRequest(
        scenes=[scene("color", frames, color="#000000")], **fields
    )
    return await stack.stub.EstimateRender(request, metadata=stack.auth)


async def test_auto_routes_by_length_backlog_and_cost(lambda_stack: StartStack) -> None:
    stack = await lambda_stack(
        worker=False, render_mode="auto", auto_lambda_min_frames=300, auto_max_ssr_queue=1000
    )
    short = await estimate(stack, 120)
    assert short.engine == render_pb2.ENGINE_SSR and "short" in short.engine_reason
    long = await estimate(stack, 300)
    assert long.engine == render_pb2.ENGINE_LAMBDA and "long" in long.engine_reason
    forced = await estimate(stack, 300, engine=render_pb2.ENGINE_SSR)
    assert forced.engine == render_pb2.ENGINE_SSR

    backed_up = await lambda_stack(worker=False, render_mode="auto", auto_max_ssr_queue=-1)
    queued = await estimate(backed_up, 120)
    assert queued.engine == render_pb2.ENGINE_LAMBDA and "backlog" in queued.engine_reason

    pricey = await lambda_stack(
        worker=False, render_mode="auto", auto_lambda_min_frames=300, max_render_cost_usd=1e-6
    )
    over = await estimate(pricey, 300)
    assert over.engine == render_pb2.ENGINE_SSR and "MAX_RENDER_COST" in over.engine_reason
    assert not over.within_budget


async def test_auto_start_runs_long_renders_on_lambda(
    lambda_stack: StartStack, fake_lambda: FakeRemotionLambda
) -> None:
    fake_lambda.plan.seconds = 0.5
    stack = await lambda_stack(render_mode="auto", auto_lambda_min_frames=60)
    render = await stack.start(short_scenes(), project="auto-proj")
    assert render.engine == render_pb2.ENGINE_LAMBDA
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == SUCCEEDED, done.error
    assert done.lambda_details.render_id in fake_lambda.renders


def test_frames_per_lambda_keeps_long_renders_within_200_functions() -> None:
    assert frames_per_lambda(600, 20) == 20
    assert frames_per_lambda(4000, 20) == 20
    assert frames_per_lambda(4001, 20) == 21
    assert frames_per_lambda(54_000, 20) == 270


def test_choose_engine_rules(base_settings: Settings) -> None:
    unconfigured = base_settings.with_overrides(render_mode="auto")
    assert choose_engine("", 10_000, 0, unconfigured).engine == "ssr"
    configured = lambda_settings(
        base_settings, render_mode="auto", auto_lambda_min_frames=900, auto_max_ssr_queue=5
    )
    assert choose_engine("", 899, 5, configured).engine == "ssr"
    assert choose_engine("", 900, 0, configured).engine == "lambda"
    assert choose_engine("", 10, 6, configured).engine == "lambda"
    assert choose_engine("", 10, None, configured).engine == "ssr"  # backlog unknown
    assert choose_engine("ssr", 10_000, 100, configured).engine == "ssr"
    assert choose_engine("lambda", 1, 0, configured).engine == "lambda"
    over = choose_engine("", 10_000, 0, configured, lambda_cost_usd=5.0)
    assert over.engine == "ssr" and "MAX_RENDER_COST" in over.reason
    ssr_default = lambda_settings(base_settings, render_mode="ssr")
    assert choose_engine("", 10_000, 100, ssr_default).engine == "ssr"


async def test_lambda_requested_without_configuration_is_failed_precondition(
    base_settings: Settings, postgres_url: str, user: str, tmp_path: Path
) -> None:
    settings = base_settings.with_overrides(
        database_url=postgres_url, data_dir=str(tmp_path / "data")
    )
    stack = await start_stack(settings, user, worker=False)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await start_lambda(stack)
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await stack.close()


def test_webhook_settings_are_checked_at_start_up() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        Settings.from_env({"WEBHOOK_URL": "https://example.com/webhooks/remotion"})
    with pytest.raises(ConfigError, match="REMOTION_PRIVACY"):
        Settings.from_env({"REMOTION_PRIVACY": "secret"})
    ok = Settings.from_env(
        {
            "WEBHOOK_URL": "https://example.com/webhooks/remotion",
            "WEBHOOK_SECRET": "x" * 32,
            "REMOTION_FUNCTION_NAME": FUNCTION_NAME,
            "REMOTION_SERVE_URL": "https://example.com/site",
        }
    )
    assert ok.lambda_configured


async def test_worker_serves_webhook_health(lambda_stack: StartStack) -> None:
    stack = await lambda_stack()
    assert stack.worker is not None and stack.worker.webhook is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{stack.worker.webhook.port}/healthz")
    assert response.json() == {"status": "ok"}
