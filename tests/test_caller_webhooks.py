"""Caller webhooks end to end: StartRender's webhook and metadata, signed Standard Webhooks
deliveries to a real receiver on 127.0.0.1, retries, restarts, SSRF refusal, secrets.

Renders end by CancelRender (queued renders end at once, no worker needed), by a worker
failing them (missing asset) or, in the slow test, by rendering. Signatures are checked
with the `standardwebhooks` reference library.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from alembic import command
from google.protobuf import duration_pb2
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc
from sqlalchemy import inspect
from standardwebhooks import WebhookVerificationError

from render_common import streams
from render_common.db.engine import create_engine
from render_common.db.migrate import alembic_config
from render_common.redis_client import create_redis
from render_common.status_details import error_details
from tests.support.asset_server import AssetServer
from tests.support.caller_webhooks import (
    Delivery,
    delivery_of,
    secret_of,
    start_and_cancel,
)
from tests.support.processes import ThrowawayDatabase, sqlite_url
from tests.support.scenes import sample_scenes, scene, simple_scenes
from tests.support.stack import StartStack
from tests.support.webhook_receiver import Receiver


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_ended_render_is_posted_signed_with_metadata_and_recorded(
    stacks: StartStack, receiver: Receiver, backend: str, tmp_path: Path
) -> None:
    url = None if backend == "postgresql" else sqlite_url(tmp_path)
    stack = await (stacks(database_url=url) if url else stacks())
    render = await start_and_cancel(stack, receiver.url(), order="A-17", customer="ACME")
    assert dict(render.client_metadata) == {"order": "A-17", "customer": "ACME"}
    assert render.webhook.url == receiver.url()
    ended = time.monotonic()
    [received] = await receiver.wait_for(1)
    print(f"webhook received {received.at - ended:.3f}s after CancelRender returned")
    payload = received.verify(await secret_of(stack))  # the reference library
    webhook_id = received.webhook_id
    assert payload["type"] == "render.cancelled"
    assert payload["data"]["renderId"] == render.render_id
    assert payload["data"]["state"] == "STATE_CANCELLED"
    assert payload["data"]["clientMetadata"] == {"order": "A-17", "customer": "ACME"}
    assert "webhookDelivery" not in payload["data"]
    assert payload["timestamp"] == payload["data"]["completeTime"]
    assert received.headers["content-type"] == "application/json"
    delivery = await delivery_of(stack, render.render_id)
    assert delivery.state == Delivery.STATE_DELIVERED
    assert delivery.webhook_id == webhook_id and delivery.attempts == 1
    assert delivery.last_status_code == 200 and not delivery.last_error
    assert delivery.deliver_time.seconds and delivery.last_attempt_time.seconds
    await asyncio.sleep(1.0)  # several polls later: nothing sent twice
    assert len(receiver.received) == 1
    listed = await stack.stub.ListRenders(
        render_service_pb2.ListRendersRequest(), metadata=stack.auth
    )
    assert listed.renders[0].webhook_delivery.state == Delivery.STATE_DELIVERED


async def test_a_render_ending_wakes_delivery_before_the_next_poll(
    stacks: StartStack, receiver: Receiver
) -> None:
    """The terminal event's render:ended message sends the webhook; the poll is a fallback."""
    stack = await stacks(caller_webhook_poll_interval_seconds=3600.0)
    redis = create_redis(stack.settings.redis_url)
    try:
        async with asyncio.timeout(60):  # the delivery loop has subscribed
            while (await redis.pubsub_numsub(streams.RENDER_ENDED_CHANNEL))[0][1] < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
    render = await start_and_cancel(stack, receiver.url())
    [received] = await receiver.wait_for(1, timeout=120)  # an hour before the next poll
    assert received.verify(await secret_of(stack))["data"]["renderId"] == render.render_id
    delivery = await delivery_of(stack, render.render_id)
    assert delivery.state == Delivery.STATE_DELIVERED and delivery.attempts == 1


async def test_render_without_webhook_has_no_delivery(stacks: StartStack, tmp_path: Path) -> None:
    stack = await stacks(database_url=sqlite_url(tmp_path))  # its queued render stays there
    render = await stack.start(simple_scenes(), metadata={"k": "v"})
    assert dict(render.client_metadata) == {"k": "v"}
    assert not render.HasField("webhook") and not render.HasField("webhook_delivery")


async def test_start_render_validates_webhook_and_metadata(
    stacks: StartStack, tmp_path: Path
) -> None:
    # Its own database: the render it leaves queued is no other test's business.
    stack = await stacks(caller_webhook_allow_http=False, database_url=sqlite_url(tmp_path))
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"webhook": render_pb2.Webhook(url="http://example.com/h")}, "webhook.url", "https"),
        ({"webhook": render_pb2.Webhook()}, "webhook.url", "required"),
        ({"webhook": render_pb2.Webhook(url="https://u:p@example.com/")}, "webhook.url", "cred"),
        ({"webhook": render_pb2.Webhook(url="https://example.com/#f")}, "webhook.url", "fragm"),
        ({"webhook": render_pb2.Webhook(url="https://[::1]/h")}, "webhook.url", "private"),
        ({"webhook": render_pb2.Webhook(url="https://10.1.2.3/h")}, "webhook.url", "private"),
        (
            {"webhook": render_pb2.Webhook(url="https://example.com/" + "a" * 2048)},
            "webhook.url",
            "2048",
        ),
        ({"metadata": {f"k{i}": "v" for i in range(33)}}, "metadata", "at most 32"),
        ({"metadata": {"k" * 65: "v"}}, f"metadata[{'k' * 64!r}]", "1-64"),
        ({"metadata": {"": "v"}}, "metadata['']", "1-64"),
        ({"metadata": {"k": "v" * 513}}, "metadata['k']", "512"),
    ]
    for fields, path, words in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.start(simple_scenes(), **fields)
        details = error_details(refused.value)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert words in details.field_violations.get(path, ""), (path, details.field_violations)
    ok = await stack.start(
        simple_scenes(),
        webhook=render_pb2.Webhook(url="https://hooks.example.com/render"),
        metadata={"k" * 64: "v" * 512},
    )
    assert ok.webhook_delivery.state == Delivery.STATE_PENDING
    assert ok.webhook_delivery.attempts == 0


async def test_request_id_retry_with_other_webhook_is_a_conflict(
    stacks: StartStack, tmp_path: Path
) -> None:
    stack = await stacks(database_url=sqlite_url(tmp_path))
    first = await stack.start(
        simple_scenes(), request_id="same", webhook=render_pb2.Webhook(url="https://a.example/")
    )
    again = await stack.start(
        simple_scenes(), request_id="same", webhook=render_pb2.Webhook(url="https://a.example/")
    )
    assert again.render_id == first.render_id
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await stack.start(
            simple_scenes(),
            request_id="same",
            webhook=render_pb2.Webhook(url="https://b.example/"),
        )
    assert error_details(reused.value).reason == "REQUEST_ID_REUSED"


async def test_secret_rotation_signs_with_both_during_grace(
    stacks: StartStack, receiver: Receiver, token_for: Callable[[str], str]
) -> None:
    stack = await stacks()
    old = await secret_of(stack)
    assert old.startswith("whsec_") and old == await secret_of(stack)
    other = render_service_pb2_grpc.RenderServiceStub(stack.channel)
    stranger = (("authorization", f"Bearer {token_for('someone-else-' + uuid.uuid4().hex)}"),)
    theirs = await other.GetWebhookSecret(
        render_service_pb2.GetWebhookSecretRequest(), metadata=stranger
    )
    assert theirs.secret.secret != old  # per user
    rotated = (
        await stack.stub.RotateWebhookSecret(
            render_service_pb2.RotateWebhookSecretRequest(
                grace_period=duration_pb2.Duration(seconds=3600)
            ),
            metadata=stack.auth,
        )
    ).secret
    new = rotated.secret
    assert new != old and rotated.previous_secret == old
    expires = rotated.previous_expire_time.ToDatetime(UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(minutes=1)
    assert (await secret_of(stack)) == new
    await start_and_cancel(stack, receiver.url())
    [during] = await receiver.wait_for(1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    during.verify(old)  # receivers still on the old secret keep working
    during.verify(new)
    # A short grace runs out: only the newest secret signs afterwards.
    short = await stack.stub.RotateWebhookSecret(
        render_service_pb2.RotateWebhookSecretRequest(
            grace_period=duration_pb2.Duration(seconds=1)
        ),
        metadata=stack.auth,
    )
    newest = short.secret.secret
    assert short.secret.previous_secret == new
    await asyncio.sleep(1.5)
    await start_and_cancel(stack, receiver.url())
    [_, after] = await receiver.wait_for(2)
    after.verify(newest)
    for stale in (new, old):
        with pytest.raises(WebhookVerificationError):
            after.verify(stale)
    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await stack.stub.RotateWebhookSecret(
            render_service_pb2.RotateWebhookSecretRequest(
                grace_period=duration_pb2.Duration(seconds=8 * 86400)
            ),
            metadata=stack.auth,
        )
    assert "grace_period" in error_details(too_long.value).field_violations


async def test_failed_render_is_delivered(stacks: StartStack, receiver: Receiver) -> None:
    assets = AssetServer()
    try:
        stack = await stacks(worker=True, asset_allowed_networks=("127.0.0.1/32",))
        render = await stack.start(
            [scene("image", 10, src=assets.url("/missing.png"))],
            webhook=render_pb2.Webhook(url=receiver.url()),
            metadata={"job": "42"},
        )
        failed = await stack.wait(render.render_id, timeout=240)
        assert failed.state == render_pb2.Render.STATE_FAILED, failed
        [received] = await receiver.wait_for(1)
        payload = received.verify(await secret_of(stack))
        assert payload["type"] == "render.failed"
        assert payload["data"]["renderId"] == render.render_id
        assert payload["data"]["error"]["reason"] == "ASSET_NOT_FOUND"
        assert payload["data"]["clientMetadata"] == {"job": "42"}
        delivery = await delivery_of(stack, render.render_id)
        assert delivery.state == Delivery.STATE_DELIVERED
    finally:
        assets.close()


@pytest.mark.slow
async def test_succeeded_render_is_delivered_with_its_output(
    stacks: StartStack, receiver: Receiver
) -> None:
    stack = await stacks(worker=True)
    project, scenes = sample_scenes("tiny")
    render = await stack.start(
        scenes, project=project, webhook=render_pb2.Webhook(url=receiver.url())
    )
    [received] = await receiver.wait_for(1, timeout=240)
    payload = received.verify(await secret_of(stack))
    done = await stack.get(render.render_id)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED
    assert payload["type"] == "render.succeeded"
    assert payload["data"]["outputUrl"] and payload["data"]["metadata"]["codec"] == "h264"
    assert payload["data"]["state"] == "STATE_SUCCEEDED"
    assert (await delivery_of(stack, render.render_id)).state == Delivery.STATE_DELIVERED


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_migration_0003_goes_down_and_up_again(backend: str, tmp_path: Path) -> None:
    database = ThrowawayDatabase() if backend == "postgresql" else None
    url = database.url if database else sqlite_url(tmp_path)
    if database:
        asyncio.run(database.create())
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "0002")
        assert "webhook_url" not in _columns(url) and "client_metadata" not in _columns(url)
        command.upgrade(config, "head")
        assert {"webhook_url", "client_metadata", "webhook_state"} <= _columns(url)
    finally:
        if database:
            asyncio.run(database.drop())


def _columns(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: {c["name"] for c in inspect(sync).get_columns("video_renders")}
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())
