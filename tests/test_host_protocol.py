"""The Python side of the render host protocol agrees with its JSON Schema.

remotion/protocol/host-protocol.schema.json is the one description (the Node host
validates with it); these tests fail when the typed messages of
services/render_worker/host_messages.py or the enums Python uses drift from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_type_hints

import pytest

from render_common import host_protocol
from render_common.config import Settings
from render_common.host_protocol import X264_PRESETS
from render_common.output_shape import ShapeRequest, resolve_shape
from render_common.presets import FORMAT_CODECS, FRAME_IMAGE_FORMAT, PIXEL_FORMAT
from services.render_worker.engines.base import RenderJob
from services.render_worker.engines.ssr import host_request
from services.render_worker.host_messages import SCHEMA_DEFS, RenderOptions, decode, encode


@pytest.mark.parametrize("name", sorted(SCHEMA_DEFS))
def test_message_fields_and_required_fields_match_the_schema(name: str) -> None:
    """Every message class names exactly the schema's properties, required where it says."""
    cls = SCHEMA_DEFS[name]
    definition = host_protocol.definition(name)
    assert set(get_type_hints(cls)) == set(definition["properties"]), name
    assert set(cls.__required_keys__) == set(definition.get("required", [])), name


def test_the_schema_has_a_class_for_every_message() -> None:
    """Requests and host messages alike: none undescribed in Python."""
    listed = {
        ref.rsplit("/", 1)[1]
        for union in ("request", "hostMessage")
        for ref in (b["$ref"] for b in host_protocol.definition(union)["oneOf"])
    }
    assert listed | {"hostError"} == set(SCHEMA_DEFS)


def test_render_options_are_the_render_request_without_type_and_id() -> None:
    """What a caller gives RenderHost.render: every render property but the envelope."""
    properties = set(host_protocol.definition("render")["properties"])
    assert set(get_type_hints(RenderOptions)) == properties - {"type", "id"}


def test_enums_are_read_from_the_schema() -> None:
    """The codec and x264 preset lists exist once: in the schema."""
    schema = host_protocol.schema()["$defs"]
    assert tuple(schema["codec"]["enum"]) == host_protocol.CODECS
    assert set(host_protocol.CODECS) == {
        "h264",
        "h265",
        "vp8",
        "vp9",
        "prores",
        "gif",
        "mp3",
        "wav",
    }
    for preset in X264_PRESETS:  # settings accept exactly the schema's presets
        assert Settings.from_env({"X264_PRESET": preset}).x264_preset == preset
    assert tuple(schema["x264Preset"]["enum"]) == X264_PRESETS
    assert "medium" in X264_PRESETS and "veryfast" in X264_PRESETS
    assert host_protocol.IMAGE_FORMATS == ("jpeg", "png")
    assert set(FORMAT_CODECS.values()) <= set(host_protocol.CODECS)
    assert FRAME_IMAGE_FORMAT in host_protocol.IMAGE_FORMATS
    assert PIXEL_FORMAT in host_protocol.PIXEL_FORMATS
    assert "RENDER_TIMEOUT" in host_protocol.ERROR_REASONS


@pytest.mark.parametrize("fmt", sorted(FORMAT_CODECS))
@pytest.mark.parametrize("quality", ["low", "medium", "high"])
def test_the_worker_requests_satisfy_the_schema(fmt: str, quality: str, tmp_path: Path) -> None:
    """The SSR engine's request: only schema properties, each value of an allowed kind."""
    job = RenderJob(
        render_id="r",
        project_id="p",
        scenes=[],
        format=fmt,
        quality=quality,
        frames_total=150,
        attempt=1,
        work_dir=tmp_path,
    )
    request = host_request(job, [], 2, 60_000, "veryfast")
    assert_in_schema(request)


@pytest.mark.parametrize(
    ("fmt", "codec", "transparent"),
    [
        ("mp4", "h265", False),
        ("webm", "vp9", True),
        ("mov", "prores", False),
        ("mov", "prores", True),
    ],
)
def test_requests_of_every_codec_satisfy_the_schema(
    fmt: str, codec: str, transparent: bool, tmp_path: Path
) -> None:
    shape, problems = resolve_shape(
        ShapeRequest(fmt, "high", "9:16", fps=60, video_codec=codec, transparent=transparent)
    )
    assert shape is not None, problems
    job = RenderJob("r", "p", [], fmt, "high", 150, 1, tmp_path, shape=shape)
    request = host_request(job, [], 2, 60_000, "veryfast")
    assert_in_schema(request)
    assert (request["width"], request["height"], request["fps"]) == (1080, 1920, 60)
    assert request["inputProps"]["transparent"] is transparent
    alpha = {"vp9": "yuva420p", "prores": "yuva444p10le"}
    if transparent:
        assert (request["imageFormat"], request["pixelFormat"]) == ("png", alpha[codec])
    assert request.get("proResProfile") == (
        ("4444" if transparent else "hq") if codec == "prores" else None
    )


def assert_in_schema(request: RenderOptions) -> None:
    """Only schema properties, the required ones, each value of an allowed kind."""
    render = host_protocol.definition("render")
    assert set(request) <= set(render["properties"])
    assert set(render["required"]) - {"type", "id"} <= set(request)
    for key in ("codec", "x264Preset", "imageFormat", "pixelFormat", "proResProfile"):
        value = request.get(key)
        assert value is None or value in host_protocol.enum(key), (key, value)
    assert request.get("videoBitrate") is None  # CRF only (render_common/presets.py)


def test_codec_round_trip() -> None:
    """Requests are JSON lines; host lines that are not messages decode to None."""
    line = encode({"type": "cancel", "id": "r:1"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(b'{"type": "pong", "id": "x"}') == {"type": "pong", "id": "x"}
    assert decode(b"Detected differing memory amounts") is None
    assert decode(b"[1, 2]") is None
    assert decode(b'{"id": "x"}') is None
