"""Caller webhooks through faults: the receiver down then up (once per webhook id), giving
up after the schedule, a private address refused, the delivering process killed mid-send
(delivered after the restart, same webhook-id), several delivery loops never sending one
twice. The happy paths, validation and secrets: test_caller_webhooks.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from render.v1 import render_pb2

from render_common.config import Settings
from render_common.db.engine import create_engine
from render_common.downloads import DownloadLinks
from render_common.status_details import error_details
from services.render_api.webhook_delivery import WebhookDelivery
from tests.support.caller_webhooks import (
    Delivery,
    delivery_of,
    secret_of,
    start_and_cancel,
)
from tests.support.processes import free_port, sqlite_url
from tests.support.scenes import simple_scenes
from tests.support.stack import StartStack
from tests.support.webhook_receiver import STALL, Receiver


async def test_receiver_down_then_up_gets_it_once_per_webhook_id(
    stacks: StartStack, receiver: Receiver
) -> None:
    # Enough retries that a loaded machine cannot exhaust them before the receiver is back.
    stack = await stacks(caller_webhook_retry_schedule=("0.5",) * 60)
    await receiver.stop()  # down: connections refused
    render = await start_and_cancel(stack, receiver.url())
    pending = await stack.wait(
        render.render_id, until=lambda r: r.webhook_delivery.attempts >= 2, timeout=30
    )
    record = pending.webhook_delivery
    assert record.state == Delivery.STATE_PENDING and record.last_status_code == 0
    # Connection refused (or, on a loaded machine, no answer within the timeout).
    assert record.last_error and record.next_attempt_time.seconds
    receiver.answers = [503, 503]  # up, but failing twice more
    await receiver.start()
    delivery = await delivery_of(stack, render.render_id)
    assert delivery.state == Delivery.STATE_DELIVERED and delivery.last_status_code == 200
    statuses = [r.answered for r in receiver.received]
    assert statuses == [503, 503, 200]
    # The three answered, and before them at least the first, refused: an attempt counts
    # when claimed, so the second one seen above may have connected after the restart.
    assert delivery.attempts >= len(statuses) + 1 and not delivery.last_error
    assert {r.webhook_id for r in receiver.received} == {delivery.webhook_id}
    assert list(receiver.processed) == [delivery.webhook_id]  # de-duplicated: once
    secret = await secret_of(stack)
    for attempt in receiver.received:
        attempt.verify(secret)


async def test_gives_up_after_the_schedule_and_says_why(
    stacks: StartStack, receiver: Receiver
) -> None:
    stack = await stacks(caller_webhook_retry_schedule=("0.2", "0.2"))
    receiver.answers = [500, 302, 404]
    render = await start_and_cancel(stack, receiver.url())
    delivery = await delivery_of(stack, render.render_id)
    assert delivery.state == Delivery.STATE_FAILED and delivery.attempts == 3
    assert delivery.last_status_code == 404 and delivery.last_error == "HTTP 404"
    assert not delivery.HasField("next_attempt_time")
    assert [r.answered for r in receiver.received] == [500, 302, 404]  # 302 not followed


async def test_private_address_is_refused_and_recorded(
    stacks: StartStack, receiver: Receiver
) -> None:
    stack = await stacks(caller_webhook_allowed_networks=())  # loopback is private again
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.start(simple_scenes(), webhook=render_pb2.Webhook(url=receiver.url()))
    details = error_details(refused.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "private or reserved address" in details.field_violations["webhook.url"]
    # A host name is checked when sending: localhost resolves to loopback.
    render = await start_and_cancel(stack, receiver.url(host="localhost"))
    delivery = await delivery_of(stack, render.render_id)
    assert delivery.state == Delivery.STATE_FAILED and delivery.attempts == 1
    assert "private or reserved address" in delivery.last_error
    assert delivery.last_status_code == 0
    await asyncio.sleep(1.0)
    assert receiver.received == []


def _api_process(settings: Settings, port: int, timeout: str = "3") -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "RENDER_DATA_DIR": settings.data_dir,
        "RENDER_API_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "JWT_SECRET": settings.jwt_secret,
        "LOG_FORMAT": "text",
        "CALLER_WEBHOOK_ALLOW_HTTP": "true",
        "CALLER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "CALLER_WEBHOOK_TIMEOUT_SECONDS": timeout,
        "CALLER_WEBHOOK_POLL_INTERVAL_SECONDS": "0.2",
        "CALLER_WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,0.5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.render_api"], env=env, start_new_session=True
    )


async def test_delivering_process_killed_mid_send_is_delivered_after_restart(
    stacks: StartStack, receiver: Receiver
) -> None:
    # This in-process render_api only takes requests; the process under test delivers.
    stack = await stacks()
    [sender] = [t for t in stack.api.tasks if t.get_name() == "webhook-delivery"]
    sender.cancel()
    port = free_port()
    # Its stalled attempt must outlast the test's steps up to the kill (a 3 s one timed out
    # and was retried first at load 27); the rescuer waits for its lease (2 x 20 + 5 s).
    victim = _api_process(stack.settings, port, timeout="20")
    rescuer = None
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        await asyncio.wait_for(channel.channel_ready(), 120)  # slow when the machine is busy
        await channel.close()
        receiver.answers = [STALL]  # the first attempt hangs until the sender is dead
        render = await start_and_cancel(stack, receiver.url())
        [first] = await receiver.wait_for(1)
        record = (await stack.get(render.render_id)).webhook_delivery
        assert record.state == Delivery.STATE_PENDING and record.attempts == 1
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        receiver.release()  # the receiver processes it; the sender never hears back
        rescuer = _api_process(stack.settings, free_port())
        # After the restart and the victim's lease.
        delivery = await delivery_of(stack, render.render_id, timeout=180)
        assert delivery.state == Delivery.STATE_DELIVERED and delivery.attempts == 2
        assert len(receiver.received) == 2
        assert {r.webhook_id for r in receiver.received} == {first.webhook_id}
        assert list(receiver.processed) == [first.webhook_id]  # de-duplicated: once
        secret = await secret_of(stack)
        for attempt in receiver.received:
            attempt.verify(secret)
    finally:
        for process in (victim, rescuer):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_several_delivery_loops_never_send_one_twice(
    stacks: StartStack, receiver: Receiver, backend: str, tmp_path: Path
) -> None:
    url = None if backend == "postgresql" else sqlite_url(tmp_path)
    stack = await (stacks(database_url=url) if url else stacks())
    engines = [create_engine(stack.settings.effective_database_url) for _ in range(2)]
    loops = [
        asyncio.create_task(
            WebhookDelivery(stack.settings, engine, DownloadLinks(stack.settings)).run()
        )
        for engine in engines
    ]
    try:
        renders = [await start_and_cancel(stack, receiver.url(), n=str(i)) for i in range(12)]
        await receiver.wait_for(len(renders))
        await asyncio.sleep(1.5)  # time for any double send to show
        ids = [r.webhook_id for r in receiver.received]
        assert len(ids) == len(set(ids)) == len(renders)
        for render in renders:
            delivery = await delivery_of(stack, render.render_id)
            assert delivery.state == Delivery.STATE_DELIVERED and delivery.attempts == 1
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for engine in engines:
            await engine.dispose()
