"""Typed messages of the render host protocol, and their JSON-lines codec.

The protocol is described once, in `remotion/protocol/host-protocol.schema.json` (its
enums: `render_common.host_protocol`). These TypedDicts name the same fields, required
where the schema requires them; tests/test_host_protocol.py fails when the two disagree.
"""

# No `from __future__ import annotations`: TypedDict reads NotRequired[...] from evaluated
# annotations only (Python 3.11), and the agreement test reads __required_keys__.
import json
import logging
from typing import Any, Literal, NotRequired, TypedDict, cast

log = logging.getLogger(__name__)


class RenderOptions(TypedDict):
    """What to render (the `render` request without its type and id); null = default."""

    compositionId: NotRequired[str]
    inputProps: dict[str, Any]
    codec: NotRequired[str | None]  # render_common.host_protocol.CODECS
    outputPath: str
    thumbnailPath: NotRequired[str | None]
    width: NotRequired[int | None]
    height: NotRequired[int | None]
    fps: NotRequired[int | None]
    crf: NotRequired[float | None]
    jpegQuality: NotRequired[int | None]
    videoBitrate: NotRequired[str | None]
    concurrency: NotRequired[int | None]
    timeoutMs: NotRequired[int | None]
    thumbnailFrame: NotRequired[int | None]
    x264Preset: NotRequired[str | None]  # X264_PRESETS
    imageFormat: NotRequired[str | None]  # IMAGE_FORMATS
    pixelFormat: NotRequired[str | None]  # PIXEL_FORMATS
    proResProfile: NotRequired[str | None]  # PRORES_PROFILES
    skipStaticFrames: NotRequired[bool | None]


class RenderRequest(RenderOptions):
    """Render one video."""

    type: Literal["render"]
    id: str


class CancelRequest(TypedDict):
    """Cancel a running render."""

    type: Literal["cancel"]
    id: str


class PingRequest(TypedDict):
    """Answered with a pong of the same id."""

    type: Literal["ping"]
    id: NotRequired[str | None]


class ShutdownRequest(TypedDict):
    """Cancel everything, close Chromium, exit 0."""

    type: Literal["shutdown"]


class HostError(TypedDict):
    """Why a render failed (reason: render_common.host_protocol.ERROR_REASONS)."""

    reason: str
    message: str
    stack: str
    retryable: bool


class ReadyMessage(TypedDict):
    """The host is up (bundle built or cached, asset server listening)."""

    type: Literal["ready"]
    bundleHash: str
    bundleMs: float
    cached: bool
    assetBaseUrl: str
    remotionVersion: str
    pid: int


class ProgressMessage(TypedDict):
    """A render's progress (0..1: 70% capture, 30% encoding)."""

    type: Literal["progress"]
    id: str
    stage: Literal["rendering", "encoding"]
    progress: float
    renderedFrames: int
    encodedFrames: int
    totalFrames: int


class Frames(TypedDict):
    """Frames Chromium captured, and frames of the output."""

    captured: int
    total: int


class DoneMessage(TypedDict):
    """A render finished: its file, thumbnail, ffprobe and step timings."""

    type: Literal["done"]
    id: str
    outputPath: str
    thumbnailPath: str | None
    thumbnailError: NotRequired[str]
    probe: dict[str, Any]
    renderMs: int
    frames: Frames
    timings: dict[str, int]


class ErrorMessage(TypedDict):
    """A render failed, or a request was refused (id None when it had none)."""

    type: Literal["error"]
    id: str | None
    error: HostError


class FatalMessage(TypedDict):
    """The host cannot go on; it exits."""

    type: Literal["fatal"]
    error: HostError


class PongMessage(TypedDict):
    """The answer to a ping."""

    type: Literal["pong"]
    id: str | None


Request = RenderRequest | CancelRequest | PingRequest | ShutdownRequest
HostMessage = (
    ReadyMessage | ProgressMessage | DoneMessage | ErrorMessage | FatalMessage | PongMessage
)

# The schema's $defs name of each class (the agreement test walks this).
SCHEMA_DEFS: dict[str, type[Any]] = {
    "render": RenderRequest,
    "cancel": CancelRequest,
    "ping": PingRequest,
    "shutdown": ShutdownRequest,
    "hostError": HostError,
    "ready": ReadyMessage,
    "progress": ProgressMessage,
    "done": DoneMessage,
    "error": ErrorMessage,
    "fatal": FatalMessage,
    "pong": PongMessage,
}


def encode(request: Request) -> bytes:
    """One request as a JSON line."""
    return json.dumps(request).encode() + b"\n"


def decode(line: bytes) -> HostMessage | None:
    """One line of the host's stdout as a message; None (logged) when it is not one."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        log.debug("render host printed a non-JSON line: %r", line[:200])
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return None
    return cast("HostMessage", message)  # the host sends the schema's messages
