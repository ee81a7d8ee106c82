"""Caller webhook tests' shared pieces: quick delivery settings, a real receiver, helpers.

`stacks` and `receiver` are fixtures, registered in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from render.v1 import render_pb2, render_service_pb2

from tests.support.scenes import simple_scenes
from tests.support.stack import Stack, StackFactory
from tests.support.webhook_receiver import Receiver

Delivery = render_pb2.WebhookDelivery
FAST = {
    "caller_webhook_allow_http": True,
    "caller_webhook_allowed_networks": ("127.0.0.1/32",),
    "caller_webhook_poll_interval_seconds": 0.2,
    "caller_webhook_timeout_seconds": 5.0,  # the shared machine is slow at times
    "caller_webhook_retry_schedule": ("0.4", "0.4", "0.4", "0.4"),
}


@pytest.fixture
def stacks(stack_factory: StackFactory) -> StackFactory:
    """Stacks without a worker (nor a warm host) unless asked, with quick webhook delivery."""
    return stack_factory.with_defaults(worker=False, warm=False, **FAST)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def secret_of(stack: Stack) -> str:
    request = render_service_pb2.GetWebhookSecretRequest()
    response: render_service_pb2.GetWebhookSecretResponse = await stack.stub.GetWebhookSecret(
        request, metadata=stack.auth
    )
    return response.secret.secret


async def start_and_cancel(stack: Stack, url: str, **metadata: str) -> render_pb2.Render:
    """A render with a webhook that ends (CANCELLED) at once."""
    render = await stack.start(
        simple_scenes(), webhook=render_pb2.Webhook(url=url), metadata=metadata
    )
    request = render_service_pb2.CancelRenderRequest(render_id=render.render_id)
    response: render_service_pb2.CancelRenderResponse = await stack.stub.CancelRender(
        request, metadata=stack.auth
    )
    cancelled = response.render
    assert cancelled.state == render_pb2.Render.STATE_CANCELLED
    return cancelled


async def delivery_of(
    stack: Stack, render_id: str, *, until: int = 0, timeout: float = 60
) -> Delivery:
    """The render's delivery record, once in state `until` (any non-pending by default)."""
    render = await stack.wait(
        render_id,
        until=lambda r: (
            r.webhook_delivery.state == until
            if until
            else r.webhook_delivery.state != Delivery.STATE_PENDING
        ),
        timeout=timeout,
    )
    return render.webhook_delivery
