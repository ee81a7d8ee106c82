"""The worker's Remotion webhook endpoint against the Lambda engine: signatures checked
(forged, unsigned, tampered, replayed), error webhooks, a webhook sent by Remotion's own
code, its settings and its health. Rig: tests/support/lambda_stack.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from render.v1 import render_pb2

from render_common.config import ROOT, ConfigError, Settings
from services.render_worker.webhook import verify_signature
from tests.support.fake_lambda import (
    FUNCTION_NAME,
    FakeRemotionLambda,
    calculate_signature,
    js_stringify,
)
from tests.support.lambda_env import WEBHOOK_SECRET
from tests.support.lambda_stack import (
    SUCCEEDED,
    events_of,
    running_without_webhook,
)
from tests.support.stack import Stack, StartStack

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
