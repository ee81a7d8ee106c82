"""The output's shape: aspect ratio and size tier (or an explicit size), frame rate, codec.

One pure resolver for the API (validation, EstimateRender, pricing), the stored record and
both engines: `resolve_shape` turns a request's choices into an `OutputShape` or the list
of what is wrong with them, as (field path, message) pairs for BadRequest.

Tiers name the picture's shorter side (720, 1080 or 2160 pixels); the longer side follows
the aspect ratio, so 9:16 at 1080p is 1080x1920 and 4:5 is 1080x1350. 2160p is for
QUALITY_HIGH only. An explicit width and height override ratio and tier: even sides of
128-3840 pixels, at most 3840x2160 pixels in all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

ASPECT_RATIOS: dict[str, Fraction] = {  # width / height
    "16:9": Fraction(16, 9),
    "9:16": Fraction(9, 16),
    "1:1": Fraction(1, 1),
    "4:5": Fraction(4, 5),
}
DEFAULT_ASPECT_RATIO = "16:9"
RESOLUTIONS: dict[str, int] = {"720p": 720, "1080p": 1080, "2160p": 2160}  # shorter side
QUALITY_RESOLUTIONS: dict[str, str] = {"low": "720p", "medium": "1080p", "high": "1080p"}
HIGH_ONLY_RESOLUTIONS = frozenset({"2160p"})
FRAME_RATES = (24, 25, 30, 50, 60)
DEFAULT_FPS = 30
# A GIF keeps about 15 frames a second at any of these rates (the render host's
# everyNthFrame: every 2nd at 24-30 fps, 3rd at 50, 4th at 60), its delays summing to
# the clip's length (remotion/lib/gif-timing.mjs).
MIN_SIDE = 128
MAX_SIDE = 3840
MAX_PIXELS = 3840 * 2160

# Video codecs per format, the first the default; audio-only formats have none.
FORMAT_VIDEO_CODECS: dict[str, tuple[str, ...]] = {
    "mp4": ("h264", "h265"),
    "webm": ("vp8", "vp9"),
    "mov": ("prores",),
    "gif": ("gif",),
    "mp3": (),
    "wav": (),
}
# Codecs that keep an alpha channel, and the default a transparent render of a format gets.
ALPHA_CODECS = frozenset({"vp9", "prores"})
TRANSPARENT_DEFAULTS: dict[str, str] = {"webm": "vp9", "mov": "prores"}

Violations = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class OutputShape:
    """A render's resolved picture: size, frame rate, codec and transparency."""

    aspect_ratio: str  # as requested: "16:9", "9:16", "1:1" or "4:5"
    resolution: str  # the tier: "720p", "1080p" or "2160p" (of the shorter side)
    width: int
    height: int
    fps: int
    video_codec: str  # "h264", "h265", "vp8", "vp9", "prores", "gif"; "" for audio only
    transparent: bool = False

    @property
    def pixels(self) -> int:
        """Pixels per frame (what pricing scales with, beside the frame count)."""
        return self.width * self.height

    def seconds(self, frames: int) -> float:
        """Playing time of `frames` at this shape's frame rate."""
        return frames / self.fps

    def columns(self) -> dict[str, Any]:
        """The `video_renders` columns of this shape (migration 0004)."""
        return {
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "video_codec": self.video_codec or None,
            "transparent": self.transparent,
        }


@functools.cache
def tier_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height of a ratio at a tier: the shorter side is the tier, both even.

    Cached: its Fraction arithmetic showed in the intake profile (twice per StartRender).
    """
    ratio = ASPECT_RATIOS[aspect_ratio]
    short = RESOLUTIONS[resolution]
    if ratio >= 1:
        return _even(short * ratio), short
    return short, _even(short / ratio)


def tier_of(width: int, height: int) -> str:
    """The smallest tier whose shorter side is at least the picture's shorter side."""
    short = min(width, height)
    for name, side in RESOLUTIONS.items():
        if short <= side:
            return name
    return "2160p"


def quality_size(quality: str) -> tuple[int, int]:
    """A quality's default picture: 16:9 at its tier (LOW 1280x720, else 1920x1080)."""
    return tier_size(DEFAULT_ASPECT_RATIO, QUALITY_RESOLUTIONS.get(quality, "1080p"))


@functools.cache
def default_shape(format_: str, quality: str) -> OutputShape:
    """The shape of a render stored before migration 0004 (16:9, the quality's tier, 30 fps).

    Cached (a frozen value): fingerprints and old rows ask for it on every request.
    """
    resolution = QUALITY_RESOLUTIONS.get(quality, "1080p")
    width, height = tier_size(DEFAULT_ASPECT_RATIO, resolution)
    codecs = FORMAT_VIDEO_CODECS.get(format_, ())
    return OutputShape(
        DEFAULT_ASPECT_RATIO, resolution, width, height, DEFAULT_FPS, codecs[0] if codecs else ""
    )


@dataclass(frozen=True, slots=True)
class ShapeRequest:
    """A request's output choices in the stored vocabulary ("" and 0 for not set)."""

    format: str
    quality: str
    aspect_ratio: str = ""
    resolution: str = ""
    width: int = 0
    height: int = 0
    fps: int = 0
    video_codec: str = ""
    transparent: bool = False


def resolve_shape(asked: ShapeRequest) -> tuple[OutputShape | None, Violations]:
    """The shape `asked` resolves to, or None and every violation (field path, message).

    `format` and `quality` are checked by the caller: an unknown one only skips the checks
    that depend on it here.
    """
    violations: Violations = []
    aspect_ratio = asked.aspect_ratio or DEFAULT_ASPECT_RATIO
    size = _size(asked, aspect_ratio, violations)
    fps = _fps(asked, violations)
    codec = _codec(asked, violations)
    if violations or size is None:
        return None, violations
    width, height, resolution = size
    shape = OutputShape(
        aspect_ratio, resolution, width, height, fps, codec, transparent=asked.transparent
    )
    return shape, []


def _size(
    asked: ShapeRequest, aspect_ratio: str, violations: Violations
) -> tuple[int, int, str] | None:
    """Width, height and tier, from the explicit size or from ratio and tier."""
    if asked.width or asked.height:
        return _explicit_size(asked, violations)
    resolution = asked.resolution or QUALITY_RESOLUTIONS.get(asked.quality, "1080p")
    if resolution in HIGH_ONLY_RESOLUTIONS and asked.quality and asked.quality != "high":
        violations.append(("resolution", f"{resolution} needs QUALITY_HIGH"))
        return None
    width, height = tier_size(aspect_ratio, resolution)
    return width, height, resolution


def _explicit_size(asked: ShapeRequest, violations: Violations) -> tuple[int, int, str] | None:
    width, height = asked.width, asked.height
    before = len(violations)
    for name, value, other in (("width", width, "height"), ("height", height, "width")):
        if not value:
            violations.append((name, f"required with {other} (or set neither)"))
        elif not MIN_SIDE <= value <= MAX_SIDE or value % 2:
            violations.append((name, f"must be an even number of pixels, {MIN_SIDE}-{MAX_SIDE}"))
    if len(violations) == before and width * height > MAX_PIXELS:
        violations.append(("width", f"{width}x{height} is more than 3840x2160 pixels in all"))
    if len(violations) > before:
        return None
    resolution = tier_of(width, height)
    if resolution in HIGH_ONLY_RESOLUTIONS and asked.quality and asked.quality != "high":
        violations.append(("width", f"{width}x{height} is larger than 1080p: needs QUALITY_HIGH"))
        return None
    return width, height, resolution


def gif_every_nth_frame(fps: int) -> int:
    """Composition frames per GIF frame at `fps`: about 15 GIF frames a second. The render
    host applies the same rule (remotion/lib/gif-timing.mjs gifEveryNthFrame)."""
    return max(1, round(fps / 15))


def _fps(asked: ShapeRequest, violations: Violations) -> int:
    fps = asked.fps or DEFAULT_FPS
    if fps not in FRAME_RATES:
        violations.append(("fps", "must be 24, 25, 30, 50 or 60 (0 means 30)"))
    return fps


def _codec(asked: ShapeRequest, violations: Violations) -> str:
    """The codec asked for (or the format's default), checked against format and alpha."""
    codecs = FORMAT_VIDEO_CODECS.get(asked.format)
    if codecs is None:  # unknown format: the caller reports it
        return ""
    if asked.video_codec and asked.video_codec not in codecs:
        allowed = ", ".join(codecs) if codecs else "none (audio only)"
        violations.append(
            ("video_codec", f"{asked.video_codec} does not go in {asked.format}: {allowed}")
        )
        return ""
    codec = asked.video_codec or (
        TRANSPARENT_DEFAULTS.get(asked.format, "") if asked.transparent else ""
    )
    codec = codec or (codecs[0] if codecs else "")
    if asked.transparent and codec not in ALPHA_CODECS:
        violations.append(
            (
                "transparent",
                f"{asked.format} with {codec or 'no video'} has no alpha channel: "
                "use FORMAT_WEBM with VP9 or FORMAT_MOV (ProRes 4444)",
            )
        )
    return codec


def _even(value: Fraction | int) -> int:
    """The nearest even integer (encoders need even sides for 4:2:0)."""
    return 2 * round(Fraction(value) / 2)


def lambda_limitation(shape: OutputShape) -> str:
    """Why Remotion Lambda cannot render `shape` as asked ("" when it can).

    Remotion's renderMediaOnLambda documentation (framesPerLambda): "When rendering
    transparent WebM videos, chunk boundaries can be visible in the alpha channel." Lambda
    renders in chunks and concatenates them, so VP9 with alpha stays on SSR; ProRes 4444,
    H.265, VP9, every size and frame rate are supported there (forceWidth, forceHeight,
    forceFps, proResProfile, pixelFormat).
    """
    if shape.transparent and shape.video_codec == "vp9":
        return "transparent WebM (VP9 with alpha) shows chunk boundaries on Remotion Lambda"
    return ""
