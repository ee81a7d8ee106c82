"""The engine contract: what every engine (SSR, Lambda) must do, as one reusable test class.

A test module subclasses `EngineContract`, provides the `engine` fixture (and, where the
engine needs them, overrides the hooks), and pytest runs every test below against it.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from render_common.renders.states import WORKING_STAGES
from services.render_worker.engines.base import (
    RENDERED_PROGRESS,
    Engine,
    RenderJob,
    RenderOutput,
)
from services.render_worker.failures import RenderFailure

STAGES = WORKING_STAGES


def make_job(
    work_dir: Path, scenes: list[dict[str, Any]] | None = None, **fields: Any
) -> RenderJob:
    """A small job: one second of title and colour at low quality, as MP4."""
    scenes = scenes or [
        {"type": "title", "durationInFrames": 15, "props": {"text": "Contract"}},
        {"type": "color", "durationInFrames": 15, "props": {"color": "#225588"}},
    ]
    work_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "render_id": str(uuid.uuid4()),
        "project_id": "contract",
        "scenes": scenes,
        "format": "mp4",
        "quality": "low",
        "frames_total": sum(int(s["durationInFrames"]) for s in scenes),
        "attempt": 1,
        "work_dir": work_dir,
    }
    values.update(fields)
    return RenderJob(**values)


class Reports:
    """Collects an engine's progress reports."""

    def __init__(self) -> None:
        self.items: list[tuple[str, float, int]] = []
        self.rendering = asyncio.Event()

    async def __call__(self, stage: str, progress: float, frames: int) -> None:
        self.items.append((stage, progress, frames))
        if stage == "rendering":
            self.rendering.set()


class EngineContract:
    """Tests every engine passes. Subclasses provide the `engine` fixture."""

    # Hooks a subclass may override -------------------------------------------------

    def output_bytes(self, output: RenderOutput) -> int:
        """Size of the produced output, wherever the engine put it."""
        if output.output_path is not None:
            return output.output_path.stat().st_size
        return int(output.probe.get("sizeBytes", 0))

    async def assert_stopped(self, engine: Engine, job: RenderJob) -> None:
        """After cancel: nothing of the render keeps running (engine-specific evidence)."""

    # Tests ---------------------------------------------------------------------------

    async def test_renders_and_reports_progress(self, engine: Engine, tmp_path: Path) -> None:
        job = make_job(tmp_path / "work")
        reports = Reports()
        output = await engine.render(job, reports)

        assert reports.items, "no progress reported"
        assert {stage for stage, _, _ in reports.items} <= STAGES
        progress = [p for _, p, _ in reports.items]
        # Up to RENDERED_PROGRESS: the processor's uploading step continues from there.
        assert all(0.0 <= p <= RENDERED_PROGRESS for p in progress)
        assert progress == sorted(progress), "progress went backwards"
        frames = [f for _, _, f in reports.items]
        assert all(0 <= f <= job.frames_total for f in frames)

        assert output.output_path is not None or output.output_url or output.stored is not None
        assert self.output_bytes(output) > 0
        shape = job.output
        assert int(output.probe["width"]) == shape.width
        assert int(output.probe["height"]) == shape.height
        assert float(output.probe["durationSec"]) == pytest.approx(job.frames_total / 30, abs=0.1)

    async def test_refuses_private_asset_without_retry(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        scenes = [
            {
                "type": "image",
                "durationInFrames": 15,
                "props": {"src": "http://169.254.169.254/latest/meta-data/x.png"},
            }
        ]
        job = make_job(tmp_path / "work", scenes)
        with pytest.raises(RenderFailure) as failure:
            await engine.render(job, Reports())
        assert failure.value.reason == "ASSET_FORBIDDEN"
        assert not failure.value.retryable
        assert "169.254.169.254" in failure.value.message

    async def test_text_that_looks_like_a_url_is_not_an_asset(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        # Only the catalogue's asset props are fetched (SSR) or checked (Lambda).
        scenes = [
            {
                "type": "title",
                "durationInFrames": 5,
                "props": {
                    "text": "Note: this is a title",
                    "subtitle": "http://169.254.169.254/latest/meta-data/",
                },
            },
            {"type": "text", "durationInFrames": 5, "props": {"text": "file:///etc/passwd 12:30"}},
        ]
        output = await engine.render(make_job(tmp_path / "work", scenes), Reports())
        assert self.output_bytes(output) > 0

    async def test_cancel_stops_the_render(self, engine: Engine, tmp_path: Path) -> None:
        scenes = [
            {"type": "gradient", "durationInFrames": 600, "props": {"from": "red", "to": "blue"}}
        ]
        job = make_job(tmp_path / "work", scenes)
        reports = Reports()
        task = asyncio.create_task(engine.render(job, reports))
        async with asyncio.timeout(120):
            await reports.rendering.wait()
        await engine.cancel(job)
        task.cancel()
        async with asyncio.timeout(10):
            with pytest.raises((asyncio.CancelledError, RenderFailure)):
                await task
        await self.assert_stopped(engine, job)
