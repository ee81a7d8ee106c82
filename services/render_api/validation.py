"""Validation of StartRender/EstimateRender requests into a RenderSpec, with every violation.

Field paths follow the proto (`scenes[2].props.text`), as BadRequest expects. Asset props
(marked `x-asset` in the catalogue, and only those) must also be well-formed http(s) URLs
with a host; text props are text, whatever they hold.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from render.v1 import render_pb2, render_service_pb2

from render_common.config import Settings
from render_common.errors import InvalidArgument
from render_common.ids import PROJECT_ID
from render_common.output_shape import OutputShape, ShapeRequest, default_shape, resolve_shape
from render_common.poster import poster_frame_problem
from render_common.pricing import Output
from render_common.resources import (
    ASPECT_RATIO_FROM_PROTO,
    ENGINE_FROM_PROTO,
    FORMAT_FROM_PROTO,
    QUALITY_FROM_PROTO,
    RESOLUTION_FROM_PROTO,
    VIDEO_CODEC_FROM_PROTO,
)
from render_common.scene_assets import asset_url_problem
from services.render_api import caller_fields, validation_media
from services.render_api.catalogue import SceneCatalogue
from services.render_api.props import compact_size, struct_dict


class OutputRequest(Protocol):
    """The fields StartRenderRequest and EstimateRenderRequest share."""

    @property
    def scenes(self) -> Sequence[render_pb2.Scene]: ...
    @property
    def format(self) -> int: ...
    @property
    def quality(self) -> int: ...
    @property
    def engine(self) -> int: ...
    @property
    def aspect_ratio(self) -> int: ...
    @property
    def resolution(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def fps(self) -> int: ...
    @property
    def video_codec(self) -> int: ...
    @property
    def transparent(self) -> bool: ...


REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_PROPS_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """A validated render request, in the stored (JSON) vocabulary."""

    scenes: list[dict[str, Any]]
    format: str
    quality: str
    requested_engine: str  # "", "auto", "ssr" or "lambda"
    frames_total: int
    project_id: str = ""
    request_id: str = ""
    webhook_url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    soundtrack: dict[str, Any] | None = None  # validation_media.py
    captions: dict[str, Any] | None = None
    poster_frame: int | None = None  # as requested; None: the default (render_common.poster)
    shape: OutputShape | None = None  # None only where validation failed
    # What pricing and routing read (frames, quality, size, fps), resolved with the shape.
    priced: Output | None = None

    @property
    def output(self) -> OutputShape:
        """The resolved output shape (the quality's defaults when none was resolved)."""
        return self.shape or default_shape(self.format, self.quality)

    @property
    def pricing(self) -> Output:
        """What a render of this request renders, as priced: frames, quality, size, fps."""
        if self.priced is not None:
            return self.priced
        return priced_output(self.frames_total, self.quality, self.output)

    def fingerprint(self) -> str:
        """A stable digest of what was asked, to tell a retry from a reuse of request_id."""
        import hashlib

        asked: list[Any] = [
            self.project_id,
            self.scenes,
            self.format,
            self.quality,
            self.requested_engine,
        ]
        if self.webhook_url or self.metadata:  # digests of earlier requests stay the same
            asked += [self.webhook_url, self.metadata]
        if self.soundtrack or self.captions:
            asked += [self.soundtrack, self.captions]
        if self.poster_frame is not None:
            asked.append({"poster_frame": self.poster_frame})
        if self.output != default_shape(self.format, self.quality):
            asked.append(self.output.columns())
        body = json.dumps(asked, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def priced_output(frames: int, quality: str, shape: OutputShape) -> Output:
    """What pricing reads of a render: its frames and quality, resolved size and fps."""
    return Output(
        frames=frames, quality=quality, width=shape.width, height=shape.height, fps=shape.fps
    )


def total_frames(scenes: Sequence[dict[str, Any]]) -> int:
    """Frames of the whole video, exactly as remotion/src/timeline.ts computes them.

    Each transition overlaps its scene and the next; it is clamped to what is left of its
    scene after the incoming transition and to the next scene's length; the last scene's
    transition is ignored.
    """
    total = 0
    transition_in = 0
    for index, scene in enumerate(scenes):
        length = int(scene["durationInFrames"])
        transition_out = 0
        transition = scene.get("transition")
        if index + 1 < len(scenes) and transition:
            following = int(scenes[index + 1]["durationInFrames"])
            transition_out = max(
                0, min(int(transition["durationInFrames"]), length - transition_in, following)
            )
        transition_in = transition_out
        total += length - transition_out
    return max(total, 1)


def requested_poster_frame(
    request: render_service_pb2.StartRenderRequest, frames_total: int
) -> int | None:
    """StartRenderRequest.poster_frame, checked to be a frame of the video (None: unset)."""
    if not request.HasField("poster_frame"):
        return None
    problem = poster_frame_problem(request.poster_frame, frames_total)
    if problem:
        raise InvalidArgument([("poster_frame", problem)])
    return request.poster_frame


class RequestValidator:
    """Checks requests against the settings' bounds and the scene catalogue."""

    def __init__(self, settings: Settings, catalogue: SceneCatalogue) -> None:
        self._settings = settings
        self._catalogue = catalogue

    def start_request(self, request: render_service_pb2.StartRenderRequest) -> RenderSpec:
        """Validate a StartRenderRequest; raise InvalidArgument with every violation."""
        violations: list[tuple[str, str]] = []
        if not request.project_id:
            violations.append(("project_id", "required"))
        elif not PROJECT_ID.match(request.project_id):
            violations.append(
                ("project_id", "must be 1-128 characters of letters, digits, '_' and '-'")
            )
        if request.request_id and not REQUEST_ID.match(request.request_id):
            violations.append(
                ("request_id", "must be 1-128 characters of letters, digits, '.', '_', ':', '-'")
            )
        url = caller_fields.webhook_url(request, self._settings, violations)
        metadata = caller_fields.metadata(request.metadata, violations)
        spec = self._spec(request, violations)
        poster_frame = requested_poster_frame(request, spec.frames_total)
        media = validation_media.checked_media(request, spec)
        return dataclasses.replace(  # the one copy: every field resolved above, once
            spec,
            project_id=request.project_id,
            request_id=request.request_id,
            webhook_url=url,
            metadata=metadata,
            poster_frame=poster_frame,
            soundtrack=media.soundtrack,
            captions=media.captions,
        )

    def estimate_request(self, request: render_service_pb2.EstimateRenderRequest) -> RenderSpec:
        """Validate an EstimateRenderRequest."""
        return validation_media.with_media(request, self._spec(request, []))

    def _spec(self, request: OutputRequest, violations: list[tuple[str, str]]) -> RenderSpec:
        fmt = FORMAT_FROM_PROTO.get(request.format)
        if fmt is None:
            allowed = ", ".join(f"FORMAT_{name.upper()}" for name in FORMAT_FROM_PROTO.values())
            violations.append(("format", f"must be {allowed}"))
        qual = QUALITY_FROM_PROTO.get(request.quality)
        if qual is None:
            violations.append(("quality", "must be QUALITY_LOW, QUALITY_MEDIUM or QUALITY_HIGH"))
        engine = request.engine
        requested_engine = (
            "" if engine == render_pb2.ENGINE_UNSPECIFIED else ENGINE_FROM_PROTO.get(engine)
        )
        if requested_engine is None:
            violations.append(("engine", "must be ENGINE_AUTO, ENGINE_SSR or ENGINE_LAMBDA"))
        shape = self._shape(request, fmt or "", qual or "", violations)
        converted = self._scenes(request.scenes, violations)
        frames = total_frames(converted) if converted and not violations else 0
        if frames > self._settings.max_total_frames:
            violations.append(
                (
                    "scenes",
                    f"total length {frames} frames exceeds the maximum of "
                    f"{self._settings.max_total_frames} frames",
                )
            )
        if violations:
            raise InvalidArgument(violations)
        return RenderSpec(
            scenes=converted,
            format=fmt or "",
            quality=qual or "",
            requested_engine=requested_engine or "",
            frames_total=frames,
            shape=shape,
            priced=priced_output(frames, qual or "", shape) if shape else None,
        )

    @staticmethod
    def _shape(
        request: OutputRequest, fmt: str, qual: str, violations: list[tuple[str, str]]
    ) -> OutputShape | None:
        """The output shape (render_common.output_shape), its violations added."""
        names = (
            ("aspect_ratio", ASPECT_RATIO_FROM_PROTO, request.aspect_ratio),
            ("resolution", RESOLUTION_FROM_PROTO, request.resolution),
            ("video_codec", VIDEO_CODEC_FROM_PROTO, request.video_codec),
        )
        chosen: dict[str, str] = {}
        for name, table, value in names:
            found = table.get(value)
            if found is None:
                violations.append((name, f"unknown value {value}"))
            chosen[name] = found or ""
        shape, problems = resolve_shape(
            ShapeRequest(
                format=fmt,
                quality=qual,
                width=request.width,
                height=request.height,
                fps=request.fps,
                transparent=request.transparent,
                **chosen,
            )
        )
        violations.extend(problems)
        return shape

    def _scenes(
        self, scenes: Sequence[render_pb2.Scene], violations: list[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        limit = self._settings.max_scenes
        if not scenes:
            violations.append(("scenes", "at least one scene is required"))
            return []
        if len(scenes) > limit:
            violations.append(("scenes", f"at most {limit} scenes are allowed, got {len(scenes)}"))
            return []
        converted = (
            self._scene(scene, f"scenes[{i}]", violations) for i, scene in enumerate(scenes)
        )
        return [item for item in converted if item is not None]

    def _scene(
        self, scene: render_pb2.Scene, prefix: str, violations: list[tuple[str, str]]
    ) -> dict[str, Any] | None:
        """One scene in the stored vocabulary (None when its props are too large)."""
        props = struct_dict(scene.props) if scene.HasField("props") else {}
        size = compact_size(props)
        if size > MAX_PROPS_BYTES:
            violations.append(
                (f"{prefix}.props", f"props are {size} bytes; at most {MAX_PROPS_BYTES}")
            )
            return None
        item: dict[str, Any] = {
            "type": scene.type,
            "durationInFrames": scene.duration_in_frames,
            "props": props,
        }
        self._frames(scene.duration_in_frames, f"{prefix}.duration_in_frames", violations)
        if scene.HasField("transition") and scene.transition.type:
            item["transition"] = self._transition(scene.transition, prefix, violations)
        scene_violations = self._catalogue.validate(item)
        for violation in scene_violations:
            violations.append((f"{prefix}.{violation.path}", violation.description))
        if not scene_violations:
            violations.extend(
                (f"{prefix}.{found.field_path}", problem)
                for found in self._catalogue.assets.find([item])
                if (problem := asset_url_problem(found.url))
            )
        return item

    def _transition(
        self, transition: render_pb2.Transition, prefix: str, violations: list[tuple[str, str]]
    ) -> dict[str, Any]:
        transitions = self._catalogue.transition_types
        if transitions and transition.type not in transitions:
            violations.append(
                (
                    f"{prefix}.transition.type",
                    f"unknown transition {transition.type!r}; expected one of "
                    + ", ".join(transitions),
                )
            )
        self._frames(
            transition.duration_in_frames, f"{prefix}.transition.duration_in_frames", violations
        )
        return {"type": transition.type, "durationInFrames": transition.duration_in_frames}

    def _frames(self, frames: int, path: str, violations: list[tuple[str, str]]) -> None:
        if not 1 <= frames <= self._settings.max_scene_frames:
            violations.append((path, f"must be between 1 and {self._settings.max_scene_frames}"))
