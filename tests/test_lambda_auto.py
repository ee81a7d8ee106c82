"""AUTO routing between SSR and the Lambda engine: the rules, EstimateRender's choice by
length, backlog and cost, a long AUTO render run on Lambda, and Lambda asked for without
its configuration. Rig: tests/support/lambda_stack.py.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from render.v1 import render_pb2, render_service_pb2

from render_common.config import Settings
from services.render_api.routing import choose_engine
from services.render_worker.engines.lambda_client import frames_per_lambda
from tests.support.fake_lambda import (
    FakeRemotionLambda,
)
from tests.support.lambda_env import lambda_settings
from tests.support.lambda_stack import (
    SUCCEEDED,
    short_scenes,
    start_lambda,
)
from tests.support.scenes import scene
from tests.support.stack import Stack, StackFactory, StartStack

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
    stack_factory: StackFactory,
) -> None:
    stack = await stack_factory(worker=False)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await start_lambda(stack)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
