"""The poster frame end to end: StartRenderRequest.poster_frame is checked, stored and
echoed, and both engines render the thumbnail at it (SSR: the render host's thumbnail
step; Lambda: renderStillOnLambda, rendered for real by the fake function).
"""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest
from render.v1 import render_pb2

from render_common.poster import default_poster_frame, resolve_poster_frame
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.images import decode
from tests.support.rpc import rich_error
from tests.support.scenes import scene
from tests.support.stack import StackFactory

RED, BLUE = (255, 0, 0), (0, 0, 255)


def red_then_blue() -> list[render_pb2.Scene]:
    """60 frames: red for the first 30, blue for the last 30."""
    return [scene("color", 30, color="#ff0000"), scene("color", 30, color="#0000ff")]


@pytest.fixture
def stack_factory(stack_factory: StackFactory) -> StackFactory:
    """Stacks with the Lambda engine (on the fake function) and room for many renders."""
    return stack_factory.with_defaults(lambda_engine=True, concurrent_render_limit=50)


def test_default_is_one_second_in_or_the_last_frame() -> None:
    assert default_poster_frame(300) == 30 and default_poster_frame(300, fps=60) == 60
    assert default_poster_frame(12) == 11 and default_poster_frame(1) == 0
    assert resolve_poster_frame(None, 300) == 30 and resolve_poster_frame(7, 300) == 7


async def test_poster_frame_is_checked_stored_and_echoed(stack_factory: StackFactory) -> None:
    stack = await stack_factory(worker=False)
    for bad in (60, -1, 10_000):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.start(red_then_blue(), poster_frame=bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violations = rich_error(caught.value).field_violations
        assert list(violations) == ["poster_frame"], violations
    chosen = await stack.start(red_then_blue(), poster_frame=59)
    assert chosen.poster_frame == 59 and (await stack.get(chosen.render_id)).poster_frame == 59
    first = await stack.start(red_then_blue(), poster_frame=0)
    assert first.poster_frame == 0
    default = await stack.start(red_then_blue())
    assert default.poster_frame == 30
    short = await stack.start([scene("color", 12, color="#00ff00")])
    assert short.poster_frame == 11


def thumbnail_colour(url: str, jpeg: Path, width: int, height: int) -> tuple[int, ...]:
    """The colour at the middle of a thumbnail, downloaded from its link."""
    if url.startswith("file://"):
        data = Path(url.removeprefix("file://")).read_bytes()
    else:
        response = httpx.get(url)
        response.raise_for_status()
        data = response.content
    jpeg.write_bytes(data)
    return decode(jpeg, width, height).pixel(width // 2, height // 2)


def close_to(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(colour, expected, strict=True))


@pytest.mark.timeout(900)  # two real SSR renders and two real stills, under load
async def test_both_engines_render_the_thumbnail_at_the_poster_frame(
    stack_factory: StackFactory, fake_lambda: FakeRemotionLambda, tmp_path: Path
) -> None:
    fake_lambda.plan.seconds = 0.5
    fake_lambda.stills.real = True
    stack = await stack_factory()
    started = {
        (engine, frame): await stack.start(red_then_blue(), engine=engine, poster_frame=frame)
        for engine in (render_pb2.ENGINE_LAMBDA, render_pb2.ENGINE_SSR)
        for frame in (10, 45)
    }
    for (engine, frame), render in started.items():
        done = await stack.wait(render.render_id, timeout=600)
        assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
        assert done.engine == engine and done.poster_frame == frame
        assert done.thumbnail_url, f"no thumbnail on {render_pb2.Engine.Name(engine)}"
        jpeg = tmp_path / f"{render.render_id}.jpg"
        colour = thumbnail_colour(done.thumbnail_url, jpeg, 1280, 720)
        expected = RED if frame < 30 else BLUE
        assert close_to(colour, expected), (render_pb2.Engine.Name(engine), frame, colour)
    assert sorted(fake_lambda.stills.frames) == [10, 45]


async def test_lambda_render_without_its_still_succeeds_without_thumbnail(
    stack_factory: StackFactory, fake_lambda: FakeRemotionLambda
) -> None:
    fake_lambda.plan.seconds = 0.3
    fake_lambda.stills.fail = True
    stack = await stack_factory(warm=False)
    render = await stack.start(red_then_blue(), engine=render_pb2.ENGINE_LAMBDA, poster_frame=5)
    done = await stack.wait(render.render_id, timeout=120)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    assert done.output_url and not done.thumbnail_url and done.poster_frame == 5
    assert fake_lambda.stills.frames == [5]
