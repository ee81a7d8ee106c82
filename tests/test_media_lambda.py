"""Soundtrack, captions and audio-only exports on the Lambda engine (tests/support/
fake_lambda.py): the options Remotion Lambda receives, the sidecar the worker writes
beside the output in the Remotion bucket, and the soundtrack's address check (the worker
fetches and stages it: tests/test_lambda_assets.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from render.v1 import render_pb2

from render_common.captions import Cue, parse_vtt
from render_common.config import Settings
from tests.support.asset_server import AssetServer
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.lambda_env import lambda_settings
from tests.support.links import download
from tests.support.scenes import scene
from tests.support.stack import Stack, start_stack

SRT = "1\n00:00:00,500 --> 00:00:01,500\nOn Lambda too\n"


@pytest.fixture
def assets() -> Iterator[AssetServer]:
    server = AssetServer()
    yield server
    server.close()


@pytest_asyncio.fixture
async def stack(
    base_settings: Settings,
    postgres_url: str,
    tmp_path: Path,
    user: str,
    fake_lambda: FakeRemotionLambda,
) -> AsyncIterator[Stack]:
    base = base_settings.with_overrides(
        database_url=postgres_url,
        data_dir=str(tmp_path / "data"),
        asset_allowed_networks=("127.0.0.1/32",),
        lambda_privacy="private",
    )
    running = await start_stack(lambda_settings(base), user, warm=False)
    yield running
    await running.close()


async def start(stack: Stack, **fields: Any) -> render_pb2.Render:
    scenes = [scene("color", 60, color="#123456")]
    return await stack.start(scenes, engine=render_pb2.ENGINE_LAMBDA, **fields)


async def test_soundtrack_and_captions_reach_lambda_and_the_sidecar_sits_beside_the_output(
    stack: Stack, fake_lambda: FakeRemotionLambda, assets: AssetServer
) -> None:
    music = render_pb2.Soundtrack(src=assets.url("/tone-3s.wav"), volume=0.8, fade_out_seconds=1)
    captions = render_pb2.Captions(srt=SRT, style=render_pb2.CAPTION_STYLE_BAR)
    render = await start(stack, soundtrack=music, captions=captions)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    (sent,) = fake_lambda.starts()
    props = json.loads(sent["inputProps"]["payload"])
    # The worker fetched the soundtrack; Lambda gets a signed URL of the staged copy.
    staged = props["soundtrack"]["src"]
    assert "/render-assets/" in staged and "X-Amz-Signature=" in staged
    assert props["soundtrack"] == {
        "src": staged,
        "volume": pytest.approx(0.8),
        "fadeInSeconds": 0.0,
        "fadeOutSeconds": 1.0,
        "startFromSeconds": 0.0,
        "loop": False,
    }
    assert props["captions"] == {
        "cues": [{"start": 0.5, "end": 1.5, "text": "On Lambda too"}],
        "style": "bar",
    }
    assert done.captions_url and "X-Amz-Signature=" in done.captions_url
    sidecar = (await download(done.captions_url)).text
    assert parse_vtt(sidecar) == [Cue(0.5, 1.5, "On Lambda too")]
    assert (await download(done.output_url)).status_code == 200


async def test_mp3_on_lambda_captures_no_frames(
    stack: Stack, fake_lambda: FakeRemotionLambda, assets: AssetServer
) -> None:
    music = render_pb2.Soundtrack(src=assets.url("/tone-1s.wav"), loop=True)
    captions = render_pb2.Captions(srt=SRT)  # sidecar only: nothing to burn into sound
    render = await start(stack, soundtrack=music, captions=captions, format=render_pb2.FORMAT_MP3)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    (sent,) = fake_lambda.starts()
    assert (sent["codec"], sent["imageFormat"], sent["crf"]) == ("mp3", "none", None)
    props = json.loads(sent["inputProps"]["payload"])
    assert props["soundtrack"]["loop"] is True and "captions" not in props
    assert done.captions_url


async def test_private_soundtrack_address_never_reaches_lambda(
    stack: Stack, fake_lambda: FakeRemotionLambda
) -> None:
    music = render_pb2.Soundtrack(src="http://169.254.169.254/latest/meta-data/track.mp3")
    render = await start(stack, soundtrack=music)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.reason == "ASSET_FORBIDDEN" and music.src in done.error.message
    assert fake_lambda.starts() == []
