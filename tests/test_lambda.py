"""The Lambda engine end to end: render_api, worker, real Redis and PostgreSQL, the
remotion-lambda client, and a local server speaking the Lambda Invoke API like a Remotion
function (tests/support/fake_lambda.py) with S3 on moto. The webhook endpoint:
test_lambda_webhook.py; AUTO routing: test_lambda_auto.py. Rig: tests/support/lambda_stack.py.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2

from services.render_worker import app as worker_app
from tests.support.fake_lambda import (
    FUNCTION_NAME,
    REMOTION_VERSION,
    FakeRemotionLambda,
)
from tests.support.lambda_env import WEBHOOK_SECRET
from tests.support.lambda_stack import (
    SUCCEEDED,
    events_of,
    start_lambda,
    status_calls,
    wait_for_lambda_id,
)
from tests.support.links import download, expires_in, wait_until_expired
from tests.support.stack import StartStack

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
