"""AUTO routing and the cost model: the rules, the SSR backlog as Redis holds it, and every
AUTO branch of StartRender run to the end on the engine it chose (real SSR renders, and the
local Remotion-like Lambda function of tests/support/fake_lambda.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2

from render_common.config import Settings
from render_common.pricing import Output, lambda_cost, ssr_cost
from services.render_api import routing
from services.render_api.routing import Router, choose_engine, lambda_unsupported, price
from services.render_worker import app as worker_app
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.lambda_env import lambda_settings
from tests.support.rpc import rich_error
from tests.support.scenes import scene
from tests.support.stack import Stack, StackFactory

StartStack = Callable[..., Awaitable[Stack]]
SUCCEEDED = render_pb2.Render.STATE_SUCCEEDED
LAMBDA = render_pb2.ENGINE_LAMBDA
SSR = render_pb2.ENGINE_SSR


def scenes_of(frames: int) -> list[render_pb2.Scene]:
    return [scene("color", frames, color="#2266aa")]


# --- the cost model ----------------------------------------------------------------


def test_lambda_estimate_is_the_seed_formula_following_frames_and_pixels() -> None:
    seed = lambda_cost(Output(frames=1800, quality="high"))
    # Seed: 3 GB x (60 s x 2) x $0.0000166667, and 0.5 GB x $0.023.
    assert seed.compute_usd == pytest.approx(3 * 120 * 0.0000166667)
    assert seed.storage_usd == pytest.approx(0.5 * 0.023)
    at_60_fps = lambda_cost(Output(frames=3600, quality="high", fps=60))  # the same minute
    assert at_60_fps.total_usd == pytest.approx(2 * seed.total_usd)
    four_k = lambda_cost(Output(frames=1800, quality="high", width=3840, height=2160))
    assert four_k.total_usd == pytest.approx(4 * seed.total_usd)
    vertical = lambda_cost(Output(frames=1800, quality="high", width=1080, height=1920))
    assert vertical.total_usd == pytest.approx(seed.total_usd)


def test_ssr_estimate_is_worker_time_not_a_lambda_price() -> None:
    output = Output(frames=900, quality="medium")
    ssr = ssr_cost(output, usd_per_worker_second=0.001, worker_seconds_per_frame=0.1)
    assert ssr.engine == "ssr" and ssr.worker_seconds == pytest.approx(90)
    assert ssr.compute_usd == pytest.approx(0.09)
    assert ssr.storage_usd == pytest.approx(lambda_cost(output).storage_usd)
    small = ssr_cost(
        Output(frames=900, quality="medium", width=960, height=540),
        usd_per_worker_second=0.001,
        worker_seconds_per_frame=0.1,
    )
    assert small.worker_seconds == pytest.approx(90 / 4)
    cheap = Settings().with_overrides(ssr_cost_per_worker_second=0.0)
    assert price("ssr", output, cheap).compute_usd == 0.0
    assert price("lambda", output, cheap) == lambda_cost(output)
    assert ssr.as_dict()["engine"] == "ssr" and "worker_seconds" in ssr.as_dict()


# --- the rules -----------------------------------------------------------------------


def test_auto_rules(base_settings: Settings) -> None:
    auto = lambda_settings(
        base_settings, render_mode="auto", auto_lambda_min_frames=900, auto_max_ssr_queue=5
    )
    unconfigured = base_settings.with_overrides(render_mode="auto")
    assert "not configured" in choose_engine("", 10_000, 99, unconfigured).reason
    long = choose_engine("", 900, 0, auto)
    assert long.engine == "lambda" and "long" in long.reason
    deep = choose_engine("", 10, 6, auto)
    assert deep.engine == "lambda" and "backlog" in deep.reason
    assert choose_engine("", 10, 5, auto).engine == "ssr"
    assert choose_engine("", 10, None, auto).engine == "ssr"  # backlog unknown
    over = choose_engine("", 10, 6, auto, lambda_cost_usd=auto.max_render_cost_usd * 2)
    assert over.engine == "ssr" and "MAX_RENDER_COST" in over.reason
    shapeless = choose_engine("", 900, 9, auto, unsupported="transparent GIF")
    assert shapeless.engine == "ssr" and "transparent GIF" in shapeless.reason
    assert choose_engine("ssr", 10_000, 99, auto).engine == "ssr"
    assert choose_engine("lambda", 1, 0, auto).engine == "lambda"


def test_lambda_unsupported_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lambda_unsupported({"format": "mp4"}) is None
    monkeypatch.setattr(
        routing, "LAMBDA_CHECKS", [lambda o: "no GIF on Lambda" if o["format"] == "gif" else None]
    )
    assert lambda_unsupported({"format": "gif"}) == "no GIF on Lambda"
    assert lambda_unsupported({"format": "mp4"}) is None


async def test_ssr_backlog_counts_waiting_entries_only(
    base_settings: Settings, redis: Redis
) -> None:
    router = Router(base_settings, redis)
    await redis.delete(routing.SSR_BACKLOG_STREAM)
    assert await router.ssr_backlog() == 0  # no stream yet
    await redis.xgroup_create(routing.SSR_BACKLOG_STREAM, routing.SSR_BACKLOG_GROUP, mkstream=True)
    for number in range(4):
        await redis.xadd(routing.SSR_BACKLOG_STREAM, {"render_id": f"r{number}", "attempt": "1"})
    assert await router.ssr_backlog() == 4
    # A worker takes one: it is running, no longer waiting.
    await redis.xreadgroup(
        routing.SSR_BACKLOG_GROUP, "w1", {routing.SSR_BACKLOG_STREAM: ">"}, count=1
    )
    assert await router.ssr_backlog() == 3
    await redis.delete(routing.SSR_BACKLOG_STREAM)


# --- StartRender's AUTO branches, run to the end -----------------------------------


@pytest.fixture
def stack_factory(stack_factory: StackFactory) -> StackFactory:
    """AUTO stacks without a worker unless told otherwise, with room for many renders
    (`lambda_engine=True`: Lambda configured, on the fake function)."""
    return stack_factory.with_defaults(render_mode="auto", concurrent_render_limit=50, worker=False)


async def estimate_then_start(stack: Stack, frames: int) -> render_pb2.Render:
    """EstimateRender, then StartRender of the same request: both must agree."""
    scenes = scenes_of(frames)
    estimate: render_service_pb2.EstimateRenderResponse = await stack.stub.EstimateRender(
        render_service_pb2.EstimateRenderRequest(
            scenes=scenes, format=render_pb2.FORMAT_MP4, quality=render_pb2.QUALITY_LOW
        ),
        metadata=stack.auth,
    )
    render = await stack.start(scenes, project="routing")
    assert render.engine == estimate.engine, estimate.engine_reason
    assert render.cost_estimate.total_usd == pytest.approx(estimate.cost.total_usd)
    return render


async def ran_on(stack: Stack, fake: FakeRemotionLambda, render_id: str) -> str:
    """Wait for the render to succeed; the engine that really produced it."""
    done = await stack.wait(render_id, timeout=240)
    assert done.state == SUCCEEDED, done.error
    started_on_lambda = [p for p in fake.starts() if render_id in p["outName"]]
    if done.lambda_details.render_id:
        assert done.lambda_details.render_id in fake.renders
        assert len(started_on_lambda) == 1
        return "lambda"
    assert not started_on_lambda
    assert done.output_url and done.thumbnail_url and done.metadata.codec == "h264"
    return "ssr"


@pytest.mark.timeout(900)  # two real SSR renders, and a render host start, under load
async def test_auto_branches_run_where_they_were_sent(
    stack_factory: StackFactory, fake_lambda: FakeRemotionLambda
) -> None:
    """Deep SSR backlog and long renders go to Lambda; a long render whose Lambda estimate
    is over MAX_RENDER_COST runs on SSR (not refused); without Lambda, SSR. The limits
    make each branch fire: Lambda is within budget for 60 frames, over it for 90, and
    SSR within it for 90."""
    fake_lambda.plan.seconds = 0.5
    budget = lambda_cost(Output(60, "low")).total_usd + lambda_cost(Output(90, "low")).total_usd
    budget /= 2
    assert price("ssr", Output(90, "low"), Settings()).total_usd < budget
    limits: dict[str, Any] = {
        "auto_lambda_min_frames": 60,
        "auto_max_ssr_queue": 2,
        "max_render_cost_usd": budget,
        "retry_base_delay_seconds": 0.2,
    }
    stack = await stack_factory(lambda_engine=True, **limits)
    without_lambda = await stack_factory(**limits)
    fillers = [await stack.start(scenes_of(30), engine=SSR) for _ in range(3)]
    backlog = await estimate_then_start(stack, 30)  # 3 waiting SSR entries > 2
    assert backlog.engine == LAMBDA
    for filler in fillers:  # out of the worker's way
        await stack.stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=filler.render_id),
            metadata=stack.auth,
        )
    long = await estimate_then_start(stack, 60)
    assert long.engine == LAMBDA
    over = await estimate_then_start(stack, 90)
    assert over.engine == SSR and over.cost_estimate.total_usd < budget
    not_configured = await estimate_then_start(without_lambda, 60)
    assert not_configured.engine == SSR

    stack.worker = await worker_app.start(stack.settings, health_port=0)
    assert await ran_on(stack, fake_lambda, backlog.render_id) == "lambda"
    assert await ran_on(stack, fake_lambda, long.render_id) == "lambda"
    assert await ran_on(stack, fake_lambda, over.render_id) == "ssr"
    assert await ran_on(stack, fake_lambda, not_configured.render_id) == "ssr"


async def test_over_budget_on_every_engine_is_refused(
    stack_factory: StackFactory, fake_lambda: FakeRemotionLambda
) -> None:
    stack = await stack_factory(
        lambda_engine=True, auto_lambda_min_frames=30, max_render_cost_usd=1e-9
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.start(scenes_of(45))
    error = rich_error(caught.value)
    assert error.reason == "RENDER_TOO_EXPENSIVE" and error.metadata["engine"] == "ssr"


async def test_lambda_cannot_honour_goes_to_ssr_or_is_refused(
    stack_factory: StackFactory, fake_lambda: FakeRemotionLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routing, "LAMBDA_CHECKS", [lambda options: "a test option"])
    stack = await stack_factory(lambda_engine=True, auto_lambda_min_frames=30)
    render = await stack.start(scenes_of(45))
    assert render.engine == SSR
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.start(scenes_of(45), engine=LAMBDA)
    assert rich_error(caught.value).reason == "LAMBDA_UNSUPPORTED_OPTION"


async def test_estimate_follows_the_pixels_on_both_engines(stack_factory: StackFactory) -> None:
    stack = await stack_factory(lambda_engine=True)

    async def estimate(engine: Any, **fields: Any) -> render_service_pb2.EstimateRenderResponse:
        request = render_service_pb2.EstimateRenderRequest(
            scenes=scenes_of(120), format=render_pb2.FORMAT_MP4, engine=engine, **fields
        )
        response: render_service_pb2.EstimateRenderResponse = await stack.stub.EstimateRender(
            request, metadata=stack.auth
        )
        return response

    for engine in (LAMBDA, SSR):
        hd = await estimate(engine, quality=render_pb2.QUALITY_HIGH)
        uhd = await estimate(
            engine, quality=render_pb2.QUALITY_HIGH, resolution=render_pb2.RESOLUTION_2160P
        )
        vertical = await estimate(
            engine, quality=render_pb2.QUALITY_HIGH, aspect_ratio=render_pb2.ASPECT_RATIO_9_16
        )
        assert (uhd.width, uhd.height, vertical.width) == (3840, 2160, 1080)
        assert uhd.cost.compute_usd == pytest.approx(4 * hd.cost.compute_usd)
        assert vertical.cost.total_usd == pytest.approx(hd.cost.total_usd)
        fast = await estimate(engine, quality=render_pb2.QUALITY_HIGH, fps=60)
        assert fast.cost.total_usd == pytest.approx(hd.cost.total_usd)  # the same frames
        assert fast.duration.ToTimedelta().total_seconds() == pytest.approx(2.0)
    lambda_hd = await estimate(LAMBDA, quality=render_pb2.QUALITY_HIGH)
    ssr_hd = await estimate(SSR, quality=render_pb2.QUALITY_HIGH)
    assert lambda_hd.cost.compute_usd != pytest.approx(ssr_hd.cost.compute_usd)
