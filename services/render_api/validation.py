"""Validation of StartRender/EstimateRender requests into a RenderSpec, with every violation.

Field paths follow the proto (`scenes[2].props.text`), as BadRequest expects. Asset props
(marked `x-asset` in the catalogue, and only those) must also be well-formed http(s) URLs
with a host; text props are text, whatever they hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from render.v1 import render_pb2, render_service_pb2

from render_common.config import Settings
from render_common.errors import InvalidArgument
from render_common.ids import PROJECT_ID
from render_common.poster import poster_frame_problem
from render_common.resources import ENGINE_FROM_PROTO, FORMAT_FROM_PROTO, QUALITY_FROM_PROTO
from render_common.scene_assets import asset_url_problem
from services.render_api import caller_fields, validation_media
from services.render_api.catalogue import SceneCatalogue

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
        body = json.dumps(asked, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


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
        spec = self._spec(
            request.scenes, request.format, request.quality, request.engine, violations
        )
        spec = RenderSpec(
            scenes=spec.scenes,
            format=spec.format,
            quality=spec.quality,
            requested_engine=spec.requested_engine,
            frames_total=spec.frames_total,
            project_id=request.project_id,
            request_id=request.request_id,
            webhook_url=url,
            metadata=metadata,
            poster_frame=requested_poster_frame(request, spec.frames_total),
        )
        return validation_media.with_media(request, spec)

    def estimate_request(self, request: render_service_pb2.EstimateRenderRequest) -> RenderSpec:
        """Validate an EstimateRenderRequest."""
        violations: list[tuple[str, str]] = []
        spec = self._spec(
            request.scenes, request.format, request.quality, request.engine, violations
        )
        return validation_media.with_media(request, spec)

    def _spec(
        self,
        scenes: Sequence[Any],
        format_: int,
        quality: int,
        engine: int,
        violations: list[tuple[str, str]],
    ) -> RenderSpec:
        fmt = FORMAT_FROM_PROTO.get(format_)
        if fmt is None:
            violations.append(("format", "must be FORMAT_MP4, FORMAT_WEBM or FORMAT_GIF"))
        qual = QUALITY_FROM_PROTO.get(quality)
        if qual is None:
            violations.append(("quality", "must be QUALITY_LOW, QUALITY_MEDIUM or QUALITY_HIGH"))
        requested_engine = (
            "" if engine == render_pb2.ENGINE_UNSPECIFIED else ENGINE_FROM_PROTO.get(engine)
        )
        if requested_engine is None:
            violations.append(("engine", "must be ENGINE_AUTO, ENGINE_SSR or ENGINE_LAMBDA"))
        converted = self._scenes(scenes, violations)
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
        )

    def _scenes(
        self, scenes: Sequence[Any], violations: list[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        limit = self._settings.max_scenes
        if not scenes:
            violations.append(("scenes", "at least one scene is required"))
            return []
        if len(scenes) > limit:
            violations.append(("scenes", f"at most {limit} scenes are allowed, got {len(scenes)}"))
            return []
        converted: list[dict[str, Any]] = []
        transitions = self._catalogue.transition_types
        for index, scene in enumerate(scenes):
            prefix = f"scenes[{index}]"
            props = json_format.MessageToDict(scene.props) if scene.HasField("props") else {}
            size = len(json.dumps(props, separators=(",", ":")))
            if size > MAX_PROPS_BYTES:
                violations.append(
                    (f"{prefix}.props", f"props are {size} bytes; at most {MAX_PROPS_BYTES}")
                )
                continue
            item: dict[str, Any] = {
                "type": scene.type,
                "durationInFrames": scene.duration_in_frames,
                "props": props,
            }
            if not 1 <= scene.duration_in_frames <= self._settings.max_scene_frames:
                violations.append(
                    (
                        f"{prefix}.duration_in_frames",
                        f"must be between 1 and {self._settings.max_scene_frames}",
                    )
                )
            if scene.HasField("transition") and scene.transition.type:
                transition = scene.transition
                if transitions and transition.type not in transitions:
                    violations.append(
                        (
                            f"{prefix}.transition.type",
                            f"unknown transition {transition.type!r}; expected one of "
                            + ", ".join(transitions),
                        )
                    )
                if not 1 <= transition.duration_in_frames <= self._settings.max_scene_frames:
                    violations.append(
                        (
                            f"{prefix}.transition.duration_in_frames",
                            f"must be between 1 and {self._settings.max_scene_frames}",
                        )
                    )
                item["transition"] = {
                    "type": transition.type,
                    "durationInFrames": transition.duration_in_frames,
                }
            scene_violations = self._catalogue.validate(item)
            for violation in scene_violations:
                violations.append((f"{prefix}.{violation.path}", violation.description))
            if not scene_violations:
                violations.extend(
                    (f"{prefix}.{found.field_path}", problem)
                    for found in self._catalogue.assets.find([item])
                    if (problem := asset_url_problem(found.url))
                )
            converted.append(item)
        return converted
