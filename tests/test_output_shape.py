"""The output shape: the resolver's sizes, and the refusals of bad combinations."""

from __future__ import annotations

from typing import Any

import pytest
from render.v1 import render_pb2

from render_common.config import Settings
from render_common.errors import InvalidArgument
from render_common.output_shape import (
    ASPECT_RATIOS,
    RESOLUTIONS,
    OutputShape,
    ShapeRequest,
    lambda_limitation,
    resolve_shape,
    tier_size,
)
from services.render_api.catalogue import SceneCatalogue
from services.render_api.validation import RenderSpec, RequestValidator
from tests.support.scenes import start_request

SIZES = {
    ("16:9", "720p"): (1280, 720),
    ("16:9", "1080p"): (1920, 1080),
    ("16:9", "2160p"): (3840, 2160),
    ("9:16", "720p"): (720, 1280),
    ("9:16", "1080p"): (1080, 1920),
    ("9:16", "2160p"): (2160, 3840),
    ("1:1", "720p"): (720, 720),
    ("1:1", "1080p"): (1080, 1080),
    ("1:1", "2160p"): (2160, 2160),
    ("4:5", "720p"): (720, 900),
    ("4:5", "1080p"): (1080, 1350),
    ("4:5", "2160p"): (2160, 2700),
}
ASPECT = {
    "16:9": render_pb2.ASPECT_RATIO_16_9,
    "9:16": render_pb2.ASPECT_RATIO_9_16,
    "1:1": render_pb2.ASPECT_RATIO_1_1,
    "4:5": render_pb2.ASPECT_RATIO_4_5,
}
TIER = {
    "720p": render_pb2.RESOLUTION_720P,
    "1080p": render_pb2.RESOLUTION_1080P,
    "2160p": render_pb2.RESOLUTION_2160P,
}


def validate(**overrides: Any) -> RenderSpec:
    """A StartRenderRequest with `overrides`, through the API's validator."""
    validator = RequestValidator(Settings(), SceneCatalogue.load())
    return validator.start_request(start_request(**overrides))


def refusals(**overrides: Any) -> dict[str, str]:
    """The BadRequest field paths (and messages) of an invalid request."""
    with pytest.raises(InvalidArgument) as caught:
        validate(**overrides)
    return dict(caught.value.violations)


@pytest.mark.parametrize(("ratio", "tier"), sorted(SIZES))
def test_every_ratio_at_every_tier_through_the_api(ratio: str, tier: str) -> None:
    assert tier_size(ratio, tier) == SIZES[ratio, tier]
    spec = validate(
        aspect_ratio=ASPECT[ratio], resolution=TIER[tier], quality=render_pb2.QUALITY_HIGH
    )
    shape = spec.output
    assert (shape.width, shape.height, shape.aspect_ratio, shape.resolution) == (
        *SIZES[ratio, tier],
        ratio,
        tier,
    )
    assert shape.width % 2 == 0 and shape.height % 2 == 0
    assert set(SIZES) == {(r, t) for r in ASPECT_RATIOS for t in RESOLUTIONS}


@pytest.mark.parametrize(
    ("quality", "size"),
    [
        (render_pb2.QUALITY_LOW, (1280, 720)),
        (render_pb2.QUALITY_MEDIUM, (1920, 1080)),
        (render_pb2.QUALITY_HIGH, (1920, 1080)),
    ],
)
def test_defaults_are_as_before(quality: int, size: tuple[int, int]) -> None:
    shape = validate(quality=quality).output
    assert (shape.width, shape.height) == size
    assert (shape.aspect_ratio, shape.fps, shape.video_codec) == ("16:9", 30, "h264")
    assert shape.transparent is False


def test_explicit_size_and_options() -> None:
    shape = validate(
        width=1000,
        height=500,
        fps=24,
        format=render_pb2.FORMAT_WEBM,
        video_codec=render_pb2.VIDEO_CODEC_VP9,
        transparent=True,
    ).output
    assert shape == OutputShape("16:9", "720p", 1000, 500, 24, "vp9", transparent=True)
    # transparent WebM with the format's default codec takes VP9 (VP8 would lose alpha)
    assert validate(format=render_pb2.FORMAT_WEBM, transparent=True).output.video_codec == "vp9"
    mov = validate(format=render_pb2.FORMAT_MOV).output
    assert (mov.video_codec, mov.transparent) == ("prores", False)
    assert validate(quality=render_pb2.QUALITY_HIGH, width=3840, height=2160).output.pixels == (
        3840 * 2160
    )


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"resolution": render_pb2.RESOLUTION_2160P}, "resolution"),  # quality LOW
        ({"width": 1280}, "height"),
        ({"height": 720}, "width"),
        ({"width": 1281, "height": 720}, "width"),
        ({"width": 1280, "height": 100}, "height"),
        ({"width": 3842, "height": 720}, "width"),
        ({"quality": render_pb2.QUALITY_HIGH, "width": 3840, "height": 2400}, "width"),
        ({"width": 2160, "height": 2160}, "width"),  # above 1080p without QUALITY_HIGH
        ({"fps": 29}, "fps"),
        ({"fps": 120}, "fps"),
        ({"video_codec": render_pb2.VIDEO_CODEC_VP9}, "video_codec"),  # in an MP4
        (
            {"format": render_pb2.FORMAT_WEBM, "video_codec": render_pb2.VIDEO_CODEC_H265},
            "video_codec",
        ),
        (
            {"format": render_pb2.FORMAT_GIF, "video_codec": render_pb2.VIDEO_CODEC_H264},
            "video_codec",
        ),
        ({"transparent": True}, "transparent"),  # H.264 has no alpha
        (
            {
                "format": render_pb2.FORMAT_WEBM,
                "video_codec": render_pb2.VIDEO_CODEC_VP8,
                "transparent": True,
            },
            "transparent",
        ),
        ({"format": render_pb2.FORMAT_GIF, "transparent": True}, "transparent"),
        ({"aspect_ratio": 42}, "aspect_ratio"),
        ({"resolution": 42}, "resolution"),
        ({"video_codec": 42}, "video_codec"),
    ],
)
def test_bad_combinations_are_refused_with_their_field(
    overrides: dict[str, Any], path: str
) -> None:
    found = refusals(**overrides)
    assert path in found, found
    assert found[path]


def test_every_violation_is_reported_at_once() -> None:
    found = refusals(fps=7, width=99, video_codec=render_pb2.VIDEO_CODEC_PRORES, transparent=True)
    assert {"fps", "width", "height", "video_codec"} <= set(found)


def test_lambda_limitation_is_transparent_webm_only() -> None:
    def shape(codec: str, transparent: bool) -> OutputShape:
        found, problems = resolve_shape(
            ShapeRequest(
                format="webm" if codec.startswith("vp") else "mov",
                quality="high",
                video_codec=codec,
                transparent=transparent,
            )
        )
        assert found is not None, problems
        return found

    assert lambda_limitation(shape("vp9", True))
    assert not lambda_limitation(shape("vp9", False))
    assert not lambda_limitation(shape("prores", True))


def test_fingerprint_tells_shapes_apart_and_keeps_old_digests() -> None:
    plain = validate()
    assert (
        plain.fingerprint()
        == validate(fps=30, aspect_ratio=render_pb2.ASPECT_RATIO_16_9).fingerprint()
    )
    assert plain.fingerprint() != validate(fps=60).fingerprint()
    assert plain.fingerprint() != validate(aspect_ratio=render_pb2.ASPECT_RATIO_9_16).fingerprint()
