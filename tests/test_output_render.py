"""Output shapes, frame rates and codecs rendered for real (API, SSR worker, S3) and probed.

One stack serves the module; its outputs go to the local S3 server, so each file is read
back through its download link, with the content type storage gave it. Clips are short:
the aspect-ratio renders are a few frames at 720p, the frame-rate and codec renders one
second at 256x144, the 2160p render two frames.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from render.v1 import render_pb2

from render_common.config import Settings
from tests.support.audio import COMPOSITOR, FFMPEG
from tests.support.s3_server import S3Server
from tests.support.scenes import scene
from tests.support.stack import FFPROBE, Stack, start_stack

pytestmark = pytest.mark.slow
SMALL = {"width": 256, "height": 144}
SHOW = ("-show_streams", "-show_format")
GRADIENT: dict[str, Any] = {"from": "#6366f1", "to": "#ec4899"}


@pytest_asyncio.fixture(scope="module")
async def stack(
    base_settings: Settings,
    postgres_url: str,
    s3_server: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    bucket = f"shape-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(create_bucket, s3_server, bucket)
    settings = base_settings.with_overrides(
        database_url=postgres_url,
        data_dir=str(tmp_path_factory.mktemp("shape")),
        storage_url=f"s3://{bucket}/out",
        s3_endpoint_url=s3_server.endpoint,
    )
    running = await start_stack(settings, f"user-{uuid.uuid4().hex[:12]}")
    yield running
    await running.close()


def create_bucket(s3_server: S3Server, bucket: str) -> None:
    """Create the module's bucket; moto's first bucket can outlast the gateway's 60 s on a
    loaded machine (it loads its S3 backend then), so a dropped call is tried again."""
    for attempt in range(3):
        try:
            s3_server.client().create_bucket(Bucket=bucket)
            return
        except ClientError as exc:  # an earlier, dropped attempt did create it
            if exc.response["Error"]["Code"] == "BucketAlreadyOwnedByYou":
                return
            raise
        except (ConnectionClosedError, ReadTimeoutError):
            if attempt == 2:
                raise


async def rendered(
    stack: Stack, tmp_path: Path, scenes: list[Any], **fields: Any
) -> tuple[render_pb2.Render, dict[str, Any], str]:
    """Render, download the output; the render, ffprobe's video stream and content type."""
    render = await stack.start(scenes, **fields)
    done = await stack.wait(render.render_id, timeout=420)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(done.output_url)
    response.raise_for_status()
    extension = done.output_url.split("?")[0].rsplit(".", 1)[-1]
    output = tmp_path / f"{done.render_id}.{extension}"
    output.write_bytes(response.content)
    return done, probe(output), response.headers["content-type"]


def probe(path: Path) -> dict[str, Any]:
    """The first video stream as ffprobe sees it (frames counted)."""
    command = [str(FFPROBE), "-v", "error", "-count_frames", "-print_format", "json"]
    out = subprocess.run(
        [*command, *SHOW, str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    data = json.loads(out)
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    return {**video, "path": path, "duration": float(data["format"]["duration"])}


def decoded_pixel_format(path: Path, decoder: str) -> str:
    """The pixel format `decoder` decodes the first frame to: FFmpeg's native VP9 decoder
    drops WebM's alpha (BlockAdditional), libvpx-vp9 keeps it. Remotion's ffprobe takes no
    decoder option, so its ffmpeg decodes one frame and reports the stream."""
    decode = [str(FFMPEG), "-hide_banner", "-c:v", decoder, "-i", str(path), "-frames:v", "1"]
    log = subprocess.run(
        [*decode, "-f", "image2", "-c:v", "png", "-y", str(path.with_suffix(".png"))],
        capture_output=True,
        check=True,
        text=True,
        env={**os.environ, "LD_LIBRARY_PATH": str(COMPOSITOR)},
    ).stderr
    found = re.search(rf"Stream #0:0.*Video: \w+ \({re.escape(decoder)}\), (\w+)", log)
    assert found, log
    return found[1]


def rate(stream: dict[str, Any]) -> float:
    numerator, denominator = stream["r_frame_rate"].split("/")
    return int(numerator) / int(denominator)


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        (render_pb2.ASPECT_RATIO_16_9, (1280, 720)),
        (render_pb2.ASPECT_RATIO_9_16, (720, 1280)),
        (render_pb2.ASPECT_RATIO_1_1, (720, 720)),
        (render_pb2.ASPECT_RATIO_4_5, (720, 900)),
    ],
)
async def test_each_aspect_ratio_has_its_size(
    stack: Stack, tmp_path: Path, ratio: int, size: tuple[int, int]
) -> None:
    scenes = [scene("title", 6, text="Shape", subtitle="every screen")]
    done, video, content_type = await rendered(stack, tmp_path, scenes, aspect_ratio=ratio)
    assert (video["width"], video["height"]) == size == (done.width, done.height)
    assert (done.metadata.width, done.metadata.height) == size
    assert content_type == "video/mp4" and video["codec_name"] == "h264"


@pytest.mark.parametrize("fps", [24, 25, 50, 60])
async def test_each_frame_rate_keeps_frames_and_time(
    stack: Stack, tmp_path: Path, fps: int
) -> None:
    # one second: a scene of `fps` frames at `fps`
    done, video, _ = await rendered(
        stack, tmp_path, [scene("gradient", fps, **GRADIENT)], fps=fps, **SMALL
    )
    assert rate(video) == fps and done.fps == fps
    assert int(video["nb_read_frames"]) == fps == done.frames_total
    assert video["duration"] == pytest.approx(1.0, abs=0.05)


async def test_h265_mp4(stack: Stack, tmp_path: Path) -> None:
    done, video, content_type = await rendered(
        stack,
        tmp_path,
        [scene("gradient", 30, **GRADIENT)],
        video_codec=render_pb2.VIDEO_CODEC_H265,
        **SMALL,
    )
    assert video["codec_name"] == "hevc" and content_type == "video/mp4"
    assert done.video_codec == render_pb2.VIDEO_CODEC_H265


async def test_vp9_webm_keeps_alpha(stack: Stack, tmp_path: Path) -> None:
    scenes = [scene("text", 30, text="alpha", background="transparent")]
    done, video, content_type = await rendered(
        stack, tmp_path, scenes, format=render_pb2.FORMAT_WEBM, transparent=True, **SMALL
    )
    assert video["codec_name"] == "vp9" and content_type == "video/webm"
    assert decoded_pixel_format(video["path"], "libvpx-vp9") == "yuva420p"
    assert done.transparent and done.video_codec == render_pb2.VIDEO_CODEC_VP9


async def test_prores_mov_opaque_and_4444_with_alpha(stack: Stack, tmp_path: Path) -> None:
    scenes = [scene("color", 30, color="transparent")]
    mov = {"format": render_pb2.FORMAT_MOV, **SMALL}
    done, video, content_type = await rendered(stack, tmp_path, scenes, **mov)
    assert (video["codec_name"], video["pix_fmt"]) == ("prores", "yuv422p10le")
    assert content_type == "video/quicktime" and done.output_url.split("?")[0].endswith(".mov")
    _, alpha, _ = await rendered(stack, tmp_path, scenes, transparent=True, **mov)
    assert alpha["codec_name"] == "prores"
    assert alpha["pix_fmt"] in ("yuva444p10le", "yuva444p12le")


async def test_2160p_is_3840x2160(stack: Stack, tmp_path: Path) -> None:
    done, video, _ = await rendered(
        stack,
        tmp_path,
        [scene("color", 2, color="#336699")],
        quality=render_pb2.QUALITY_HIGH,
        resolution=render_pb2.RESOLUTION_2160P,
    )
    assert (video["width"], video["height"]) == (3840, 2160)
    assert done.resolution == render_pb2.RESOLUTION_2160P
