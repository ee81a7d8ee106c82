"""Lambda renders' assets (services/render_worker/engines/lambda_assets.py): the worker
fetches each asset itself, every redirect hop checked, stages it in the Remotion bucket and
sends Lambda presigned URLs of the copies, removed when the render ends. The fake function
runs in its own process (tests/support/fake_lambda_process.py) on the local S3 server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import pytest_asyncio
from botocore.exceptions import ClientError
from render.v1 import render_pb2

from services.render_worker.engines.lambda_assets import STAGE_PREFIX, url_lifetime
from tests.support.asset_server import AssetServer
from tests.support.audio import served
from tests.support.fake_lambda import BUCKET
from tests.support.fake_lambda_process import FakeLambdaProcess
from tests.support.lambda_stack import function_process
from tests.support.s3_server import S3Server
from tests.support.scenes import scene
from tests.support.stack import Stack, StackFactory


@pytest.fixture
def assets() -> Iterator[AssetServer]:
    with closing(AssetServer()) as server:
        yield server


@pytest.fixture
def fake(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLambdaProcess]:
    """The fake function in a subprocess (renders last 6 s: time to read the copies)."""
    with function_process(s3_server, monkeypatch, seconds=6.0, seconds_max=6.0) as process:
        yield process


@pytest_asyncio.fixture
async def stack(stack_factory: StackFactory, fake: FakeLambdaProcess) -> Stack:
    """render_api and an in-process worker with the Lambda engine; only the asset server's
    address (127.0.0.1) is exempt from the asset policy."""
    return await stack_factory(
        lambda_engine=True,
        warm=False,
        asset_allowed_networks=("127.0.0.1/32",),
        lambda_privacy="private",
    )


async def started_props(fake: FakeLambdaProcess, timeout: float = 60.0) -> dict[str, Any]:
    """The input props of the first render the function was asked to start."""
    deadline = time.monotonic() + timeout
    while not (starts := await asyncio.to_thread(fake.starts)):
        assert time.monotonic() < deadline, "no render started"
        await asyncio.sleep(0.2)
    props: dict[str, Any] = json.loads(starts[0]["inputProps"]["payload"])
    return props


def staged_key(url: str, render_id: str) -> str:
    """The object key a presigned URL of a staged copy points at (path-style URL)."""
    path = urlsplit(url).path
    prefix = f"/{BUCKET}/"
    assert path.startswith(prefix), url
    key = path[len(prefix) :]
    assert key.startswith(f"{STAGE_PREFIX}/{render_id}/"), key
    return key


@pytest.mark.parametrize(
    "target", ["http://127.0.0.2:{port}/image.png", "http://169.254.169.254/x.png"]
)
async def test_redirect_to_a_private_address_fails_before_any_invoke(
    stack: Stack, fake: FakeLambdaProcess, assets: AssetServer, target: str
) -> None:
    forbidden = target.format(port=assets.port)
    src = assets.url(f"/redirect-to?url={quote(forbidden, safe='')}")
    render = await stack.start([scene("image", 30, src=src)], engine=render_pb2.ENGINE_LAMBDA)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.reason == "ASSET_FORBIDDEN" and not done.error.retryable
    assert src in done.error.message
    assert fake.stats()["invocations"] == {}  # neither the video nor its poster
    assert assets.paths() == ["/redirect-to"]  # the forbidden hop was never connected to


async def test_assets_reach_lambda_as_signed_staged_copies_removed_after_the_render(
    stack: Stack, fake: FakeLambdaProcess, assets: AssetServer, s3_server: S3Server
) -> None:
    image, clip = assets.url("/image.png"), assets.url("/redirect/clip.mp4")
    music = render_pb2.Soundtrack(src=assets.url("/tone-1s.wav"), volume=0.5)
    scenes = [
        scene("image", 30, src=image),
        scene("video", 30, src=clip, volume=0),
        scene("image", 30, src=image),  # the same URL: staged once
    ]
    render = await stack.start(scenes, engine=render_pb2.ENGINE_LAMBDA, soundtrack=music)
    props = await started_props(fake)
    sent = [s["props"]["src"] for s in props["scenes"]] + [props["soundtrack"]["src"]]
    assert sent[0] == sent[2] and len(set(sent)) == 3
    originals = [assets.png, assets.clip, assets.png, served("/tone-1s.wav")[0]]
    types = ["image/png", "video/mp4", "image/png", "audio/wav"]
    keys = []
    async with httpx.AsyncClient(timeout=30) as http:
        for url, body, content_type in zip(sent, originals, types, strict=True):
            assert urlsplit(url).netloc == urlsplit(s3_server.endpoint).netloc
            query = parse_qs(urlsplit(url).query)
            assert int(query["X-Amz-Expires"][0]) == url_lifetime(stack.settings)
            keys.append(staged_key(url, render.render_id))
            copy = await http.get(url)
            assert copy.status_code == 200 and copy.content == body
            assert copy.headers["content-type"] == content_type
        assert sorted(assets.paths()) == [
            "/clip.mp4",
            "/image.png",
            "/redirect/clip.mp4",
            "/tone-1s.wav",
        ]

        done = await stack.wait(render.render_id, timeout=90)
        assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
        assert (await http.get(sent[0])).status_code in (403, 404)
    s3 = s3_server.client()
    for key in set(keys):
        with pytest.raises(ClientError):
            s3.head_object(Bucket=BUCKET, Key=key)


async def test_a_failure_names_the_clients_url_not_the_signed_copy(
    stack: Stack, fake: FakeLambdaProcess, assets: AssetServer
) -> None:
    fake.set_plan(outcome="asset_error", webhook=False, seconds=1.0, seconds_max=1.0)
    image = assets.url("/image.png")
    render = await stack.start([scene("image", 30, src=image)], engine=render_pb2.ENGINE_LAMBDA)
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.message == f"Error loading image with src: {image}"
