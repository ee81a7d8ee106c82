"""Rendered frames as pixels: decoded with Remotion's bundled ffmpeg, cut into glyphs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import FFPROBE

FFMPEG = FFPROBE.with_name("ffmpeg")


@dataclass(frozen=True)
class Image:
    """An RGB image, 3 bytes a pixel, row by row."""

    width: int
    height: int
    rgb: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """The (r, g, b) of one pixel."""
        i = (y * self.width + x) * 3
        return self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]

    def crop(self, box: Box) -> bytes:
        """The RGB bytes of a box, row by row."""
        rows = []
        for y in range(box.top, box.bottom):
            start = (y * self.width + box.left) * 3
            rows.append(self.rgb[start : start + box.width * 3])
        return b"".join(rows)


@dataclass(frozen=True)
class Box:
    """A rectangle of an image: left/top inclusive, right/bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        """Columns in the box."""
        return self.right - self.left

    @property
    def height(self) -> int:
        """Rows in the box."""
        return self.bottom - self.top


def decode(path: Path, width: int, height: int) -> Image:
    """An image file (JPEG, PNG) decoded to RGB."""
    raw = subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-i", str(path)),
            *("-pix_fmt", "rgb24", "-c:v", "rawvideo", "-f", "image2pipe", "-"),
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert len(raw) == width * height * 3, f"{path}: {len(raw)} bytes, not {width}x{height} RGB"
    return Image(width, height, raw)


def to_png(path: Path, png: Path) -> Path:
    """Converts an image file to PNG (to look at it)."""
    subprocess.run([str(FFMPEG), "-v", "error", "-y", "-i", str(path), str(png)], check=True)
    return png


def _runs(flags: list[bool], min_gap: int) -> list[tuple[int, int]]:
    """[start, end) runs of True, merging runs separated by fewer than min_gap False."""
    runs: list[tuple[int, int]] = []
    for i, on in enumerate(flags):
        if not on:
            continue
        if runs and i - runs[-1][1] < min_gap:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def glyph_boxes(
    image: Image, *, ink: int = 64, line_gap: int = 12, glyph_gap: int = 14
) -> list[list[Box]]:
    """Bounding boxes of the glyphs on a plain black background, line by line, left to right.

    A pixel is ink when a channel is above `ink`. Lines are separated by at least `line_gap`
    blank rows, glyphs on a line by at least `glyph_gap` blank columns (wider than any gap
    inside one glyph, narrower than the spaces between them).
    """
    w, h, rgb = image.width, image.height, image.rgb
    inked = [max(rgb[i], rgb[i + 1], rgb[i + 2]) > ink for i in range(0, len(rgb), 3)]
    rows = [any(inked[y * w : (y + 1) * w]) for y in range(h)]
    lines = []
    for top, bottom in _runs(rows, line_gap):
        columns = [any(inked[y * w + x] for y in range(top, bottom)) for x in range(w)]
        lines.append([Box(left, top, right, bottom) for left, right in _runs(columns, glyph_gap)])
    return lines


def saturated_share(image: Image, box: Box, *, spread: int = 80) -> float:
    """Share of the box's pixels that are coloured (max - min channel above `spread`)."""
    crop = image.crop(box)
    pixels = len(crop) // 3
    coloured = sum(
        1 for i in range(0, len(crop), 3) if max(crop[i : i + 3]) - min(crop[i : i + 3]) > spread
    )
    return coloured / pixels


def difference(image: Image, a: Box, b: Box) -> float:
    """How different two glyph boxes look: mean absolute channel difference (0..255) over
    their common top-left-aligned area, or 255 when their sizes differ by more than 2 px
    (the same glyph drawn twice differs only by sub-pixel positioning)."""
    if abs(a.width - b.width) > 2 or abs(a.height - b.height) > 2:
        return 255.0
    w, h = min(a.width, b.width), min(a.height, b.height)
    crop_a = image.crop(Box(a.left, a.top, a.left + w, a.top + h))
    crop_b = image.crop(Box(b.left, b.top, b.left + w, b.top + h))
    return sum(abs(x - y) for x, y in zip(crop_a, crop_b, strict=True)) / len(crop_a)
