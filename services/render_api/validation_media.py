"""Validation of a request's soundtrack and captions into their stored (composition) form.

The soundtrack's URL is checked like every asset URL (http(s) with a host; the worker
resolves it and refuses private addresses before fetching). Captions come as a WebVTT
or SubRip document or as cues; all three become one sorted cue list
(render_common/captions.py). Times are checked against the video's length at its frame
rate: a cue must start within the video (its end is cut at the video's end), and the
fades must fit in it. Field paths follow the proto: `soundtrack.volume`,
`captions.cues[3].end`, `captions.srt`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from google.protobuf import duration_pb2
from render.v1 import render_pb2

from render_common.captions import CaptionSyntaxError, Cue, parse_srt, parse_vtt
from render_common.errors import InvalidArgument
from render_common.presets import AUDIO_ONLY_FORMATS
from render_common.resources import CAPTION_STYLE_FROM_PROTO, soundtrack_props
from render_common.scene_assets import asset_url_problem

if TYPE_CHECKING:
    from services.render_api.validation import RenderSpec

DEFAULT_FPS = 30
MAX_VOLUME = 2.0
MAX_SRC_CHARS = 4096
MAX_START_FROM_SECONDS = 24 * 3600.0
MAX_CUES = 2000
MAX_CUE_CHARS = 500
MAX_CAPTION_CHARS = 100_000  # all cues' text together
MAX_DOCUMENT_BYTES = 512 * 1024
Violations = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """The soundtrack and captions of a request, as stored in `spec` (None when absent)."""

    soundtrack: dict[str, Any] | None = None
    captions: dict[str, Any] | None = None


def media_spec(
    request: Any, fmt: str, scenes: list[dict[str, Any]], frames_total: int, violations: Violations
) -> MediaSpec:
    """Check a Start/EstimateRenderRequest's soundtrack and captions; append violations."""
    seconds = frames_total / (request.fps or DEFAULT_FPS)
    soundtrack = (
        soundtrack_spec(request.soundtrack, fmt, seconds, violations)
        if request.HasField("soundtrack")
        else None
    )
    captions = (
        captions_spec(request.captions, fmt, seconds, violations)
        if request.HasField("captions")
        else None
    )
    if fmt in AUDIO_ONLY_FORMATS and soundtrack is None and not _has_sound(scenes):
        violations.append(
            ("format", f"an {fmt.upper()} export needs a soundtrack or a video scene with sound")
        )
    return MediaSpec(soundtrack, captions)


def _has_sound(scenes: list[dict[str, Any]]) -> bool:
    return any(
        scene.get("type") == "video"
        and not scene.get("props", {}).get("muted")
        and scene.get("props", {}).get("volume", 1) > 0
        for scene in scenes
    )


def _seconds_problem(value: float, name: str) -> str | None:
    if not math.isfinite(value) or value < 0:
        return f"{name} must be a finite number of seconds, at least 0"
    return None


def soundtrack_spec(
    track: render_pb2.Soundtrack, fmt: str, seconds: float, violations: Violations
) -> dict[str, Any] | None:
    """The composition's soundtrack props, or None with violations appended."""
    found: Violations = []
    props = soundtrack_props(track)
    problem = "required" if not track.src else asset_url_problem(track.src)
    if problem is None and len(track.src) > MAX_SRC_CHARS:
        problem = f"must be at most {MAX_SRC_CHARS} characters"
    if problem:
        found.append(("soundtrack.src", problem))
    volume = props["volume"]
    if not (math.isfinite(volume) and 0 <= volume <= MAX_VOLUME):
        found.append(("soundtrack.volume", f"must be between 0 and {MAX_VOLUME:g}"))
    for name in ("fade_in_seconds", "fade_out_seconds", "start_from_seconds"):
        if problem := _seconds_problem(getattr(track, name), name):
            found.append((f"soundtrack.{name}", problem))
    if track.start_from_seconds > MAX_START_FROM_SECONDS:
        found.append(("soundtrack.start_from_seconds", "must be at most 24 hours"))
    fades = track.fade_in_seconds + track.fade_out_seconds
    if math.isfinite(fades) and fades > seconds + 1e-9:
        found.append(
            (
                "soundtrack.fade_out_seconds",
                f"fade_in_seconds + fade_out_seconds ({fades:g}s) exceed the video's "
                f"length ({seconds:g}s)",
            )
        )
    if fmt == "gif":
        found.append(("soundtrack", "FORMAT_GIF has no sound; choose MP4, WEBM, MP3 or WAV"))
    violations.extend(found)
    return None if found else props


def captions_spec(
    captions: render_pb2.Captions, fmt: str, seconds: float, violations: Violations
) -> dict[str, Any] | None:
    """The stored caption track (sorted cues, style, whether burned in), or None."""
    given = [name for name in ("vtt", "srt") if getattr(captions, name)]
    if captions.cues:
        given.append("cues")
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        violations.append(("captions", f"give exactly one of vtt, srt or cues (got {found})"))
        return None
    style = CAPTION_STYLE_FROM_PROTO.get(captions.style)
    before = len(violations)
    if style is None:
        violations.append(("captions.style", "must be a CaptionStyle"))
    cues = _cues(captions, given[0], seconds, violations)
    if len(violations) > before:
        return None
    return {
        "cues": [cue.as_json() for cue in sorted(cues, key=lambda cue: cue.start)],
        "style": style,
        "burn": not captions.sidecar_only and fmt not in AUDIO_ONLY_FORMATS,
    }


def _cues(
    captions: render_pb2.Captions, source: str, seconds: float, violations: Violations
) -> list[Cue]:
    if source == "cues":
        parsed = [(f"captions.cues[{i}]", _cue(c)) for i, c in enumerate(captions.cues)]
    else:
        document: str = getattr(captions, source)
        if len(document.encode()) > MAX_DOCUMENT_BYTES:
            violations.append((f"captions.{source}", f"at most {MAX_DOCUMENT_BYTES} bytes"))
            return []
        try:
            cues = parse_vtt(document) if source == "vtt" else parse_srt(document)
        except CaptionSyntaxError as exc:
            violations.append((f"captions.{source}", str(exc)))
            return []
        parsed = [(f"captions.{source}", cue) for cue in cues]
        if not parsed:
            violations.append((f"captions.{source}", "the document has no cues"))
            return []
    if len(parsed) > MAX_CUES:
        violations.append((f"captions.{source}", f"at most {MAX_CUES} cues, got {len(parsed)}"))
        return []
    total = sum(len(cue.text) for _, cue in parsed)
    if total > MAX_CAPTION_CHARS:
        violations.append((f"captions.{source}", f"at most {MAX_CAPTION_CHARS} characters"))
    kept: list[Cue] = []
    for number, (path, cue) in enumerate(parsed, start=1):
        for field, why in _cue_problems(cue, seconds):
            if source == "cues":
                violations.append((f"{path}.{field}", why))
            else:  # a document's cue: its number, line and field in the description
                violations.append((path, f"cue {number} (line {cue.line}): {field} {why}"))
        kept.append(Cue(cue.start, min(cue.end, seconds), cue.text))
    return kept


def _cue(cue: render_pb2.CaptionCue) -> Cue:
    return Cue(_duration(cue.start), _duration(cue.end), cue.text)


def _duration(value: duration_pb2.Duration) -> float:
    return value.seconds + value.nanos / 1e9


def _cue_problems(cue: Cue, seconds: float) -> list[tuple[str, str]]:
    """(field, why) of one cue: times within the video, text present and short."""
    problems: list[tuple[str, str]] = []
    if cue.start < 0:
        problems.append(("start", "must not be negative"))
    elif cue.start >= seconds:
        problems.append(("start", f"must be before the video's end ({seconds:g}s)"))
    if cue.end <= cue.start:
        problems.append(("end", "must be after start"))
    if not cue.text.strip():
        problems.append(("text", "is required"))
    elif len(cue.text) > MAX_CUE_CHARS:
        problems.append(("text", f"must be at most {MAX_CUE_CHARS} characters"))
    return problems


def checked_media(request: Any, spec: RenderSpec) -> MediaSpec:
    """The request's soundtrack and captions for `spec`; InvalidArgument when they are bad."""
    violations: Violations = []
    media = media_spec(request, spec.format, spec.scenes, spec.frames_total, violations)
    if violations:
        raise InvalidArgument(violations)
    return media


def with_media(request: Any, spec: RenderSpec) -> RenderSpec:
    """`spec` with the request's soundtrack and captions; InvalidArgument when they are bad."""
    media = checked_media(request, spec)
    return replace(spec, soundtrack=media.soundtrack, captions=media.captions)


def spec_json(spec: RenderSpec) -> dict[str, Any]:
    """The row's `spec` column: the scenes, and the soundtrack and captions when given."""
    stored: dict[str, Any] = {"scenes": spec.scenes}
    if spec.soundtrack is not None:
        stored["soundtrack"] = spec.soundtrack
    if spec.captions is not None:
        stored["captions"] = spec.captions
    return stored
