"""Burned-in captions laid out in a 9:16 picture: readable size, wrapped, within safe margins.

Rendered by the render host at 540x960 (a vertical clip at half of 1080p), compared pixel
by pixel with the same frame without captions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from render_common.config import ROOT
from services.render_worker.host import RenderHost
from services.render_worker.host_messages import ProgressMessage
from tests.support.images import Box, Image, decode

pytestmark = pytest.mark.slow
WIDTH, HEIGHT = 540, 960
LONG = "Captions wrap onto several lines when a cue is longer than the picture is wide"
# Font size of each style at a shorter side of 1080 px (remotion/src/media/Captions.tsx).
FONT_SIZE = {"boxed": 48, "outline": 58, "bar": 40}


@pytest_asyncio.fixture(scope="module")
async def host() -> AsyncIterator[RenderHost]:
    running = RenderHost(ROOT / "remotion")
    await running.start()
    yield running
    await running.close()


async def frame(
    host: RenderHost,
    out: Path,
    name: str,
    captions: dict[str, Any] | None,
    scenes: list[dict[str, Any]] | None = None,
) -> Image:
    """Frame 15 of a one-second clip (grey unless `scenes`), with or without captions."""

    async def ignore(_: ProgressMessage) -> None:
        return None

    props: dict[str, Any] = {
        "projectId": "layout",
        "scenes": scenes
        or [{"type": "color", "durationInFrames": 30, "props": {"color": "#9ca3af"}}],
    }
    if captions is not None:
        props["captions"] = captions
    thumbnail = out / f"{name}.jpg"
    request: dict[str, Any] = {"inputProps": props, "codec": "h264", "concurrency": 1}
    request |= {"outputPath": str(out / f"{name}.mp4"), "width": WIDTH, "height": HEIGHT}
    request |= {"thumbnailPath": str(thumbnail), "thumbnailFrame": 15, "jpegQuality": 95}
    await host.render(name, request, ignore)  # type: ignore[arg-type]
    return decode(thumbnail, WIDTH, HEIGHT)


def changed_pixels(a: Image, b: Image) -> int:
    """How many pixels (every second column) differ clearly between two images."""
    return sum(
        max(abs(p - q) for p, q in zip(a.pixel(x, y), b.pixel(x, y), strict=True)) > 40
        for y in range(a.height)
        for x in range(0, a.width, 2)
    )


def changed_box(a: Image, b: Image) -> Box:
    """The bounding box of the pixels that differ clearly between two images."""
    xs, ys = [], []
    for y in range(a.height):
        for x in range(0, a.width, 2):
            if max(abs(p - q) for p, q in zip(a.pixel(x, y), b.pixel(x, y), strict=True)) > 40:
                xs.append(x)
                ys.append(y)
    assert xs, "the captions changed no pixel"
    return Box(min(xs), min(ys), max(xs) + 1, max(ys) + 1)


@pytest.mark.parametrize("style", ["boxed", "outline", "bar"])
async def test_vertical_captions_wrap_within_safe_margins(
    host: RenderHost, tmp_path: Path, style: str
) -> None:
    plain = await frame(host, tmp_path, f"plain-{style}", None)
    cue = {"start": 0.0, "end": 1.0, "text": LONG}
    shown = await frame(host, tmp_path, style, {"cues": [cue], "style": style})
    box = changed_box(plain, shown)
    # Wrapped: at least two lines at the style's size (scaled to the 540 px shorter side).
    assert box.height > 2 * FONT_SIZE[style] * WIDTH / 1080, box
    assert box.width > 0.6 * WIDTH, box
    # In the lower part of the picture, clear of the top; within the sides.
    assert box.top > HEIGHT / 2, box
    if style == "bar":
        assert box.bottom == HEIGHT and box.width >= WIDTH - 2, box  # across the bottom edge
    else:
        assert box.bottom < HEIGHT * 0.86 and box.left > 0.04 * WIDTH, box
        assert box.right < 0.96 * WIDTH, box


async def test_right_to_left_titles_and_captions_read_right_to_left(
    host: RenderHost, tmp_path: Path
) -> None:
    """A Hebrew title and an Arabic caption ending in "!" are laid out right to left (the
    "!" on the left), as when wrapped in an explicit right-to-left embedding; a
    left-to-right embedding (how they were drawn before) puts the "!" on the right."""

    async def draw(name: str, wrap: str) -> Image:
        title, cue = f"{wrap}שלום!\u202c", f"{wrap}مرحبا بكم!\u202c"
        scenes = [{"type": "title", "durationInFrames": 30, "props": {"text": title}}]
        cues = {"cues": [{"start": 0.0, "end": 1.0, "text": cue}], "style": "boxed"}
        return await frame(host, tmp_path, name, cues, scenes)

    natural = await draw("rtl-natural", "")
    assert changed_pixels(natural, await draw("rtl-embedded", "\u202b")) == 0
    assert changed_pixels(natural, await draw("ltr-embedded", "\u202a")) > 100
