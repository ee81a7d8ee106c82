"""Building render.v1 requests from the sample scene files in remotion/samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from render.v1 import render_pb2, render_service_pb2

from render_common.config import ROOT

SAMPLES = ROOT / "remotion" / "samples"


def scene(
    type_: str, frames: int, transition: tuple[str, int] | None = None, **props: Any
) -> render_pb2.Scene:
    """One Scene message."""
    message = render_pb2.Scene(type=type_, duration_in_frames=frames)
    struct = struct_pb2.Struct()
    struct.update(props)
    message.props.CopyFrom(struct)
    if transition is not None:
        message.transition.CopyFrom(
            render_pb2.Transition(type=transition[0], duration_in_frames=transition[1])
        )
    return message


def simple_scenes() -> list[render_pb2.Scene]:
    """Two short valid scenes."""
    return [
        scene("title", 30, ("fade", 10), text="Hello", subtitle="render-export"),
        scene("color", 30, color="#336699"),
    ]


def start_request(**overrides: Any) -> render_service_pb2.StartRenderRequest:
    """A valid StartRenderRequest, with fields overridden."""
    fields: dict[str, Any] = {
        "project_id": "project-1",
        "scenes": simple_scenes(),
        "format": render_pb2.FORMAT_MP4,
        "quality": render_pb2.QUALITY_LOW,
        "engine": render_pb2.ENGINE_SSR,
    }
    fields.update(overrides)
    return render_service_pb2.StartRenderRequest(**fields)


def scene_messages(items: list[dict[str, Any]]) -> list[render_pb2.Scene]:
    """Scenes in the catalogue's JSON shape as Scene messages (props as a Struct)."""
    scenes = []
    for item in items:
        transition = item.get("transition")
        scenes.append(
            scene(
                item["type"],
                item["durationInFrames"],
                (transition["type"], transition["durationInFrames"]) if transition else None,
                **item.get("props", {}),
            )
        )
    return scenes


def sample_scenes(name: str) -> tuple[str, list[render_pb2.Scene]]:
    """(project id, scenes) of a sample file such as "tiny" or "demo"."""
    data = json.loads(Path(SAMPLES / f"{name}.json").read_text())
    return data.get("projectId", "sample"), scene_messages(data["scenes"])
