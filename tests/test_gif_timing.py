"""GIF outputs last as long as the composition at every frame rate.

GIF frame delays are whole hundredths of a second; a delay of 1/12 s (24 fps, every second
frame kept) rounded to 8 cs on every frame plays 4% fast. Rendered for real (API, SSR
worker with Remotion and ffmpeg) at 256x144, 5 s each, and read back with ffprobe: the
sum of the frame delays must be 5.00 s (+-0.02).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from render.v1 import render_pb2

from render_common.config import Settings
from tests.support.scenes import scene
from tests.support.stack import Stack, ffprobe, ffprobe_json, start_stack

pytestmark = pytest.mark.slow
SECONDS = 5
GRADIENT: dict[str, Any] = {"from": "#0ea5e9", "to": "#f97316"}


@pytest_asyncio.fixture(scope="module")
async def stack(
    base_settings: Settings, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    settings = base_settings.with_overrides(
        database_url=postgres_url, data_dir=str(tmp_path_factory.mktemp("gif"))
    )
    running = await start_stack(settings, f"user-{uuid.uuid4().hex[:12]}")
    yield running
    await running.close()


def gif_delays(path: Path) -> list[float]:
    """Each frame's display time in seconds, as a player reads the GIF."""
    packets = ffprobe_json(path, "-show_packets")["packets"]
    return [float(p["duration_time"]) for p in packets]


@pytest.mark.parametrize("fps", [24, 25, 30, 50, 60])
async def test_gif_lasts_as_long_as_the_composition(stack: Stack, fps: int) -> None:
    render = await stack.start(
        [scene("gradient", SECONDS * fps, **GRADIENT)],
        format=render_pb2.FORMAT_GIF,
        fps=fps,
        width=256,
        height=144,
    )
    done = await stack.wait(render.render_id, timeout=420)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    assert done.fps == fps
    output = Path(done.output_url.removeprefix("file://"))
    delays = gif_delays(output)
    assert sum(delays) == pytest.approx(SECONDS, abs=0.02), (fps, delays[:12], len(delays))
    assert float(ffprobe(output)["format"]["duration"]) == pytest.approx(SECONDS, abs=0.02)
    # No frame held long to make up the time: the delays differ by at most a hundredth
    # (rounding), but the last, which may stand for fewer composition frames.
    steady = delays[:-1]
    assert max(steady) - min(steady) <= 0.0101, sorted(set(delays))
    assert 0 < delays[-1] <= max(steady) + 0.001, delays[-3:]
