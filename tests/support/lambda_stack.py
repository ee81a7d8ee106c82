"""The Lambda engine's test rig: stacks whose worker renders on the local Remotion-like
function (the `lambda_stack` fixture, registered in tests/conftest.py) and helpers the
test_lambda* modules share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from render.v1 import render_pb2

from render_common import streams
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.fake_lambda_process import FakeLambdaProcess
from tests.support.lambda_env import point_aws_at
from tests.support.redis_streams import fields as stream_fields
from tests.support.s3_server import S3Server
from tests.support.scenes import scene
from tests.support.stack import Stack, StackFactory, StartStack

SUCCEEDED = render_pb2.Render.STATE_SUCCEEDED


@pytest.fixture
def lambda_stack(stack_factory: StackFactory, fake_lambda: FakeRemotionLambda) -> StackFactory:
    """Stacks with the Lambda engine on the fake function (webhook on unless `webhook=False`,
    no warm SSR host), quick retries and a short visibility timeout."""
    return stack_factory.with_defaults(
        lambda_engine=True, warm=False, retry_base_delay_seconds=0.2, visibility_timeout_seconds=3.0
    )


@contextmanager
def function_process(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, **plan: Any
) -> Iterator[FakeLambdaProcess]:
    """The fake function in its own process (`plan`: its renders' plan, e.g. seconds), for
    worker processes; boto3 in this process is pointed at it too."""
    process = FakeLambdaProcess(s3_server.endpoint).start(**plan)
    point_aws_at(monkeypatch, process.endpoint, s3_server.endpoint)
    try:
        yield process
    finally:
        process.stop()


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
