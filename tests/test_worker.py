"""The render worker end to end: real Redis, PostgreSQL/SQLite, Remotion and Chromium."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2

from render_common import streams
from render_common.config import Settings
from tests.support.asset_server import AssetServer
from tests.support.processes import sqlite_url, worker_environment
from tests.support.redis_streams import fields as stream_fields
from tests.support.redis_streams import render_events as events_of
from tests.support.s3_server import S3Server
from tests.support.scenes import sample_scenes, scene, simple_scenes
from tests.support.stack import Stack, StackFactory, StartStack, ffprobe

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_factory(stack_factory: StackFactory) -> StackFactory:
    """Stacks with a worker, quick retries and a short visibility timeout."""
    return stack_factory.with_defaults(retry_base_delay_seconds=0.2, visibility_timeout_seconds=3.0)


def local_path(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(url[len("file://") :])


GRADIENT: dict[str, Any] = {"from": "red", "to": "blue"}  # "from" is a keyword


def long_scenes(frames: int = 900) -> list[render_pb2.Scene]:
    return [
        scene("title", frames // 2, text="Long"),
        scene("gradient", frames // 2, **GRADIENT),
    ]


def attempt_dirs(stack: Stack) -> list[Path]:
    """Attempts' work directories left under RENDER_DATA_DIR/work (per worker, see workdirs)."""
    return list((Path(stack.settings.data_dir) / "work").glob("*/render-*"))


@pytest.mark.parametrize(
    ("fmt", "codec", "extension"),
    [
        (render_pb2.FORMAT_MP4, "h264", "mp4"),
        (render_pb2.FORMAT_WEBM, "vp8", "webm"),
        (render_pb2.FORMAT_GIF, "gif", "gif"),
    ],
)
async def test_renders_each_format(
    stack_factory: StartStack, redis: Redis, fmt: int, codec: str, extension: str
) -> None:
    stack = await stack_factory()
    project, scenes = sample_scenes("tiny")
    render = await stack.start(scenes, project=project, format=fmt)
    done = await stack.wait(render.render_id)
    await stack.attempts_over()  # events published, work directory removed
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    output = local_path(done.output_url)
    assert output.name == f"{render.render_id}.{extension}" and output.parent.name == project
    probe = ffprobe(output)
    assert probe["video"]["codec_name"] == codec
    assert (int(probe["video"]["width"]), int(probe["video"]["height"])) == (1280, 720)
    assert float(probe["format"]["duration"]) == pytest.approx(render.frames_total / 30, abs=0.15)
    assert int(probe["format"]["size"]) == done.metadata.size_bytes > 0
    assert done.metadata.codec == codec and done.metadata.width == 1280
    thumbnail = local_path(done.thumbnail_url)
    assert thumbnail.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG
    assert done.start_time.seconds and done.complete_time.seconds and done.retry_count == 0
    events = await events_of(redis, render.render_id)
    stages = [e["stage"] for e in events]
    assert stages[0] == "bundling" and stages[-1] == "done"
    assert "rendering" in stages and "uploading" in stages
    assert [e["state"] for e in events].count("succeeded") == 1
    progress = [float(e["progress"]) for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert attempt_dirs(stack) == []  # temp files removed


async def test_renders_on_sqlite(stack_factory: StartStack, tmp_path: Path) -> None:
    stack = await stack_factory(database_url=sqlite_url(tmp_path, "worker.db"))
    project, scenes = sample_scenes("tiny")
    done = await stack.wait((await stack.start(scenes, project=project)).render_id)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED and local_path(done.output_url).exists()


async def test_transient_failure_is_retried_then_succeeds(
    stack_factory: StartStack, redis: Redis
) -> None:
    server = AssetServer()
    try:
        stack = await stack_factory(asset_allowed_networks=("127.0.0.1/32",))
        url = server.url(f"/flaky-{uuid.uuid4().hex}.png")
        render = await stack.start([scene("image", 10, src=url), scene("color", 10, color="#000")])
        done = await stack.wait(render.render_id)
        assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
        assert done.retry_count == 1
        assert not done.HasField("error")  # the failed attempt's error is cleared
        assert server.requests.count(url[len(server.url("")) :]) == 2
        messages = [e.get("message", "") for e in await events_of(redis, render.render_id)]
        assert any("retrying" in m for m in messages)
    finally:
        server.close()


async def test_missing_asset_fails_at_once_with_its_url(
    stack_factory: StartStack, redis: Redis
) -> None:
    server = AssetServer()
    try:
        stack = await stack_factory(asset_allowed_networks=("127.0.0.1/32",))
        url = server.url("/missing.png")
        render = await stack.start([scene("image", 10, src=url)])
        done = await stack.wait(render.render_id)
        assert done.state == render_pb2.Render.STATE_FAILED
        assert done.error.reason == "ASSET_NOT_FOUND" and url in done.error.message
        assert done.error.retryable is False and done.retry_count == 0
        await stack.attempts_over()
        dead = await stream_fields(redis, streams.DEAD_STREAM)
        dead = [f for f in dead if f["render_id"] == render.render_id]
        assert len(dead) == 1 and dead[0]["reason"] == "ASSET_NOT_FOUND"
        events = await events_of(redis, render.render_id)
        assert events[-1]["state"] == "failed" and url in events[-1]["error_message"]
    finally:
        server.close()


async def test_slow_asset_fails_as_asset_timeout_after_its_setting(
    stack_factory: StartStack,
) -> None:
    # A server that trickles bytes: no read times out, ASSET_TIMEOUT_SECONDS bounds the total.
    server = AssetServer()
    try:
        stack = await stack_factory(
            asset_allowed_networks=("127.0.0.1/32",), asset_timeout_seconds=1.0
        )
        url = server.url("/trickle.png?size=large")
        render = await stack.start([scene("image", 10, src=url)])
        done = await stack.wait(render.render_id, timeout=120)
        assert done.state == render_pb2.Render.STATE_FAILED
        assert done.error.reason == "ASSET_TIMEOUT" and done.error.retryable
        assert done.error.message == f"asset not fetched within ASSET_TIMEOUT_SECONDS (1s): {url}"
        assert done.retry_count == stack.settings.max_attempts - 1
    finally:
        server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",
        "http://10.0.0.1/x.png",
        "http://169.254.169.254/latest/meta-data",
    ],
)
async def test_private_assets_are_refused(stack_factory: StartStack, url: str) -> None:
    stack = await stack_factory()
    render = await stack.start([scene("image", 10, src=url)])
    done = await stack.wait(render.render_id)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.reason == "ASSET_FORBIDDEN" and url in done.error.message


async def test_file_urls_are_refused_at_intake(stack_factory: StartStack) -> None:
    # The catalogue only admits http(s) sources; the worker refuses file:// too (test_assets).
    stack = await stack_factory(worker=False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.start([scene("image", 10, src="file:///etc/passwd")])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "scenes[0].props.src" in (caught.value.details() or "")


async def test_cancel_mid_render_stops_and_leaves_no_file(
    stack_factory: StartStack, redis: Redis
) -> None:
    stack = await stack_factory()
    render = await stack.start(long_scenes(1800))
    await stack.wait(
        render.render_id,
        until=lambda r: r.stage == render_pb2.STAGE_RENDERING and r.progress > 0.06,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await stack.stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=stack.auth
    )
    done = await stack.wait(render.render_id, timeout=10)
    assert done.state == render_pb2.Render.STATE_CANCELLED
    assert loop.time() - started < 5
    await stack.attempts_over()
    assert response.render.state in (
        render_pb2.Render.STATE_CANCELLED,
        render_pb2.Render.STATE_RUNNING,
    )
    storage = Path(stack.settings.data_dir) / "renders"
    assert not list(storage.rglob(f"{render.render_id}*"))
    assert attempt_dirs(stack) == []
    events = await events_of(redis, render.render_id)
    assert events[-1]["state"] == "cancelled"
    # The host is still usable after cancelling: the next render succeeds.
    project, scenes = sample_scenes("tiny")
    after = await stack.wait((await stack.start(scenes, project=project)).render_id)
    assert after.state == render_pb2.Render.STATE_SUCCEEDED


async def test_cancel_reaches_a_render_still_prefetching(
    stack_factory: StartStack, redis: Redis
) -> None:
    server = AssetServer()
    try:
        stack = await stack_factory(asset_allowed_networks=("127.0.0.1/32",))
        url = server.url(f"/slow/60/image-{uuid.uuid4().hex}.png")  # answers after 60 s
        render = await stack.start([scene("image", 10, src=url)])
        await stack.wait(
            render.render_id, until=lambda r: r.state == render_pb2.Render.STATE_RUNNING
        )
        await stack.stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id),
            metadata=stack.auth,
        )
        # Long before the asset could arrive: the prefetch was stopped, not waited for.
        done = await stack.wait(render.render_id, timeout=10)
        assert done.state == render_pb2.Render.STATE_CANCELLED
        await stack.attempts_over()
        assert (await events_of(redis, render.render_id))[-1]["state"] == "cancelled"
        assert attempt_dirs(stack) == []
    finally:
        server.close()


async def test_cancel_reaches_a_render_while_its_host_starts(stack_factory: StartStack) -> None:
    stack = await stack_factory(warm=False)  # the first render starts Node and Chromium
    assert stack.worker is not None
    host = stack.worker.engines["ssr"]._host  # type: ignore[attr-defined]
    render = await stack.start(simple_scenes())
    await stack.wait(render.render_id, until=lambda r: r.state == render_pb2.Render.STATE_RUNNING)
    await stack.stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=stack.auth
    )
    done = await stack.wait(render.render_id, timeout=10)
    assert done.state == render_pb2.Render.STATE_CANCELLED
    # The start went on in the background; the next render uses that host.
    project, scenes = sample_scenes("tiny")
    after = await stack.wait((await stack.start(scenes, project=project)).render_id)
    assert after.state == render_pb2.Render.STATE_SUCCEEDED, after.error
    await stack.attempts_over()
    assert host.pid is not None and attempt_dirs(stack) == []


async def test_failure_names_the_url_the_client_sent(stack_factory: StartStack) -> None:
    server = AssetServer()
    try:
        stack = await stack_factory(asset_allowed_networks=("127.0.0.1/32",))
        assert stack.worker is not None
        host = stack.worker.engines["ssr"]._host  # type: ignore[attr-defined]
        url = server.url(f"/broken-{uuid.uuid4().hex}.png")  # served, but not an image
        render = await stack.start([scene("image", 10, src=url)])
        done = await stack.wait(render.render_id)
        assert done.state == render_pb2.Render.STATE_FAILED
        assert url in done.error.message, done.error.message
        assert host.asset_base_url and host.asset_base_url not in done.error.message
    finally:
        server.close()


def _worker_process(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    env = worker_environment(settings, name)
    return subprocess.Popen(
        [sys.executable, "-m", "services.render_worker"], env=env, start_new_session=True
    )


async def test_killed_worker_is_taken_over_exactly_once(
    stack_factory: StartStack, redis: Redis
) -> None:
    stack = await stack_factory(worker=False)
    first = _worker_process(stack.settings, f"victim-{uuid.uuid4().hex[:6]}")
    second = None
    try:
        render = await stack.start(long_scenes(300))
        await stack.wait(
            render.render_id,
            until=lambda r: r.stage == render_pb2.STAGE_RENDERING and r.progress > 0.06,
        )
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its render host, mid-render
        first.wait()
        second = _worker_process(stack.settings, f"rescuer-{uuid.uuid4().hex[:6]}")
        done = await stack.wait(render.render_id, timeout=240)
        assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
        outputs = list((Path(stack.settings.data_dir) / "renders").rglob(f"{render.render_id}.*"))
        assert sorted(p.suffix for p in outputs) == [".jpg", ".mp4"]
        await stack.attempts_over()  # every entry acknowledged (the row ends before that)
        events = await events_of(redis, render.render_id)
        assert [e["state"] for e in events].count("succeeded") == 1
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)


async def test_upload_to_s3_compatible_server(
    stack_factory: StartStack, s3_server: S3Server
) -> None:
    endpoint = s3_server.endpoint
    s3 = s3_server.client()
    s3.create_bucket(Bucket="exports")
    stack = await stack_factory(storage_url="s3://exports/videos", s3_endpoint_url=endpoint)
    project, scenes = sample_scenes("tiny")
    render = await stack.start(scenes, project=project)
    done = await stack.wait(render.render_id)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    key = f"videos/renders/{project}/{render.render_id}.mp4"
    head = s3.head_object(Bucket="exports", Key=key)
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"]["format"] == "mp4" and head["Metadata"]["quality"] == "low"
    assert int(head["Metadata"]["filesize"]) == head["ContentLength"]
    assert "attachment" in head["ContentDisposition"]
    s3.head_object(Bucket="exports", Key=f"videos/renders/{project}/{render.render_id}.jpg")
    async with httpx.AsyncClient() as client:
        body = (await client.get(done.output_url)).content
    assert body == s3.get_object(Bucket="exports", Key=key)["Body"].read()
