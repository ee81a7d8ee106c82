"""The render host protocol's vocabulary, read from its one description.

`remotion/protocol/host-protocol.schema.json` describes the JSON lines between the worker
and the Node render host (`remotion/render-host.mjs`, which validates render requests with
it). The codec, x264 preset, frame image format, pixel format and ProRes profile lists
live only there; this module reads them (settings validate `X264_PRESET` against them)
and the worker's typed messages (`services/render_worker/host_messages.py`) are checked
against the same file by tests/test_host_protocol.py.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = (
    Path(__file__).resolve().parent.parent / "remotion" / "protocol" / "host-protocol.schema.json"
)


@functools.cache
def schema() -> dict[str, Any]:
    """The protocol's JSON Schema (read once)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def definition(name: str) -> dict[str, Any]:
    """One of the schema's `$defs` (`render`, `progress`, `codec`, ...)."""
    found: dict[str, Any] = schema()["$defs"][name]
    return found


def enum(name: str) -> tuple[str, ...]:
    """The values of one of the schema's enums, in its order."""
    return tuple(str(value) for value in definition(name)["enum"])


CODECS = enum("codec")
X264_PRESETS = enum("x264Preset")
IMAGE_FORMATS = enum("imageFormat")
PIXEL_FORMATS = enum("pixelFormat")
PRORES_PROFILES = enum("proResProfile")
ERROR_REASONS = enum("hostErrorReason")
