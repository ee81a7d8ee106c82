"""SSR engine: the catalogue's asset props prefetched, then rendered by the warm render host."""

from __future__ import annotations

import os
from typing import Any

from render_common.poster import resolve_poster_frame
from render_common.presets import output_encoding
from render_common.renders.states import Stage
from render_common.scene_assets import AssetCatalogue
from services.render_worker.assets import AssetFetcher
from services.render_worker.engines.base import (
    PREPARED_PROGRESS,
    ProgressReport,
    RenderJob,
    RenderOutput,
    engine_progress,
)
from services.render_worker.failures import RenderFailure
from services.render_worker.host import RenderHost
from services.render_worker.host_messages import ProgressMessage, RenderOptions
from services.render_worker.media import asset_urls, input_props


def client_urls(failure: RenderFailure, local: dict[str, str]) -> RenderFailure:
    """The failure as the client should read it: each prefetched copy's URL on the render
    host (an address of this machine) replaced by the URL the client sent."""
    message, stack = failure.message, failure.stack
    for url, copy in sorted(local.items(), key=lambda item: -len(item[1])):
        message, stack = message.replace(copy, url), stack.replace(copy, url)
    return RenderFailure(failure.reason, message, retryable=failure.retryable, stack=stack)


def default_render_concurrency() -> int:
    """Chromium tabs per render: half the cores, at least 1 (seed: "50%")."""
    return max(1, (os.cpu_count() or 2) // 2)


def host_request(
    job: RenderJob,
    scenes: list[dict[str, Any]],
    concurrency: int,
    timeout_ms: int,
    x264_preset: str,
    skip_static_frames: bool = True,
    local: dict[str, str] | None = None,
) -> RenderOptions:
    """The render host's render request for a job: the quality's CRF and JPEG quality, the
    shape's size, frame rate and codec (render_common.output_shape).

    `local` maps asset URLs to the host's prefetched copies (the soundtrack's; the scenes
    come already mapped). Audio-only formats have no picture: no CRF, no thumbnail.
    """
    shape = job.output
    out = output_encoding(job.format, job.quality, shape.video_codec, shape.transparent)
    return {
        "compositionId": "MainComposition",
        "inputProps": input_props(job, scenes, local),
        "codec": out.codec,
        "outputPath": str(job.work_dir / f"output.{out.extension}"),
        "width": shape.width,
        "height": shape.height,
        "fps": shape.fps,
        "crf": out.crf,
        "jpegQuality": out.jpeg_quality,
        "imageFormat": out.image_format,
        "pixelFormat": out.pixel_format,
        "proResProfile": out.prores_profile,
        "videoBitrate": None,  # CRF only (render_common/presets.py)
        "concurrency": concurrency,
        "timeoutMs": timeout_ms,
        "x264Preset": x264_preset if out.codec == "h264" else None,
        "skipStaticFrames": skip_static_frames,
        "thumbnailPath": None if out.audio_only else str(job.work_dir / "thumbnail.jpg"),
        # The caller's poster frame, or one second in (render_common/poster.py).
        "thumbnailFrame": resolve_poster_frame(job.poster_frame, job.frames_total, job.output.fps),
    }


class SsrEngine:
    """Renders on this machine with Remotion and Chromium."""

    name = "ssr"

    def __init__(
        self,
        host: RenderHost,
        fetcher: AssetFetcher,
        *,
        assets: AssetCatalogue,
        concurrency: int,
        timeout_seconds: float,
        x264_preset: str,
        skip_static_frames: bool = True,
    ) -> None:
        self._host = host
        self._fetcher = fetcher
        self._assets = assets
        self._x264_preset = x264_preset
        self._skip_static_frames = skip_static_frames
        self._concurrency = concurrency or default_render_concurrency()
        self._timeout_ms = int(timeout_seconds * 1000)

    async def warm(self) -> None:
        """Start the render host now (Node, the bundle, Chromium), not at the first render."""
        await self._host.start()

    async def render(self, job: RenderJob, report: ProgressReport) -> RenderOutput:
        """Prefetch, render, thumbnail and probe; the output stays in the job's work dir."""
        await report(Stage.BUNDLING, 0.0, 0)
        urls = asset_urls(self._assets, job)  # the catalogue's asset props, the soundtrack
        scenes = job.scenes
        local: dict[str, str] = {}  # client URL -> the host's URL of its prefetched copy
        if urls:
            cached = await self._fetcher.fetch_all(urls)
            await self._host.start()
            base = self._host.asset_base_url
            local = {url: base + name for url, name in cached.items()}
            scenes = self._assets.replace(job.scenes, local)
        await report(Stage.BUNDLING, PREPARED_PROGRESS, 0)

        async def on_progress(message: ProgressMessage) -> None:
            stage = Stage.ENCODING if message.get("stage") == "encoding" else Stage.RENDERING
            share = float(message.get("progress", 0.0))
            await report(stage, engine_progress(share), int(message.get("renderedFrames", 0)))

        request = host_request(
            job,
            scenes,
            self._concurrency,
            self._timeout_ms,
            self._x264_preset,
            self._skip_static_frames,
            local,
        )
        try:
            done = await self._host.render(f"{job.render_id}:{job.attempt}", request, on_progress)
        except RenderFailure as failure:
            raise client_urls(failure, local) from None
        thumbnail = done.get("thumbnailPath")
        return RenderOutput(
            probe=dict(done.get("probe") or {}),
            output_path=job.work_dir
            / os.path.basename(str(done.get("outputPath") or request["outputPath"])),
            thumbnail_path=job.work_dir / "thumbnail.jpg" if thumbnail else None,
        )

    async def cancel(self, job: RenderJob) -> None:
        """Nothing runs elsewhere: cancelling the render task stops Chromium."""

    async def close(self) -> None:
        """Stop the render host."""
        await self._host.close()
