"""`make demo`: bring the stack up, render the sample scenes with a progress bar, show the MP4."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import grpc
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc

from render_common.config import ROOT, Settings
from services.cli.client import Endpoints, describe_error
from services.cli.output import ProgressBar, render_summary
from services.cli.scenes import load_scenes
from services.cli.watch import watch_render
from services.local_stack import control
from services.local_stack.paths import StackPaths

SAMPLE = ROOT / "remotion" / "samples" / "demo.json"
FFPROBE = ROOT / "remotion" / "node_modules" / "@remotion" / "compositor-linux-x64-gnu" / "ffprobe"


def local_file(url: str) -> Path | None:
    """The path of a file:// URL."""
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


async def render_sample(settings: Settings) -> render_pb2.Render:
    """Start the sample render and follow it to the end."""
    endpoints = Endpoints.from_env(settings, "demo")
    project, scenes = load_scenes(SAMPLE)
    async with grpc.aio.insecure_channel(endpoints.render_api) as channel:
        stub = render_service_pb2_grpc.RenderServiceStub(channel)
        response = await stub.StartRender(
            render_service_pb2.StartRenderRequest(
                project_id=project,
                scenes=scenes,
                format=render_pb2.FORMAT_MP4,
                quality=render_pb2.QUALITY_MEDIUM,
                engine=render_pb2.ENGINE_SSR,
            ),
            metadata=endpoints.metadata,
        )
    frames = response.render.frames_total
    print(f"\nrendering {SAMPLE.relative_to(ROOT)} ({frames} frames, 1920x1080 mp4)")
    bar = ProgressBar()
    final = await watch_render(endpoints, response.render.render_id, bar.update)
    bar.finish()
    return final


def run(settings: Settings) -> int:
    """Up (if needed), render, report, down (if this call started the stack)."""
    paths = StackPaths.from_settings(settings)
    started = control.up(settings, paths)
    try:
        final = asyncio.run(render_sample(settings))
    except grpc.RpcError as exc:
        line, code = describe_error(exc)
        print(f"demo: {line}")
        return code
    finally:
        if started:
            print("\nstopping the stack")
            control.down(paths)
    print()
    print(render_summary(final))
    if final.state != render_pb2.Render.STATE_SUCCEEDED:
        return 1
    video = local_file(final.output_url)
    thumbnail = local_file(final.thumbnail_url)
    if video is not None and FFPROBE.exists():
        probe = subprocess.run(
            [
                str(FFPROBE),
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height:format=duration",
                "-of",
                "compact=p=0:nk=0",
                str(video),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        print(f"ffprobe  {' | '.join(probe.stdout.split())}")
    print(
        f"\nMP4:       {video or final.output_url}\nthumbnail: {thumbnail or final.thumbnail_url}"
    )
    return 0
