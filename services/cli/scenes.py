"""Reading a scenes file ({"projectId", "scenes": [...]}, as in remotion/samples) into messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from render.v1 import render_pb2


class ScenesFileError(ValueError):
    """The scenes file cannot be read or has the wrong shape."""


def load_scenes(path: Path) -> tuple[str, list[render_pb2.Scene]]:
    """(project id, scenes) from a JSON file."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ScenesFileError(f"cannot read {path}: {exc}") from exc
    items = data.get("scenes") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ScenesFileError(f'{path}: expected {{"scenes": [...]}} or a list of scenes')
    project = str(data.get("projectId", "")) if isinstance(data, dict) else ""
    scenes = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ScenesFileError(f"{path}: scene {index} is not an object")
        scene = render_pb2.Scene(
            type=str(item.get("type", "")), duration_in_frames=int(item.get("durationInFrames", 0))
        )
        props = struct_pb2.Struct()
        props.update(item.get("props") or {})
        scene.props.CopyFrom(props)
        transition = item.get("transition")
        if isinstance(transition, dict):
            scene.transition.CopyFrom(
                render_pb2.Transition(
                    type=str(transition.get("type", "")),
                    duration_in_frames=int(transition.get("durationInFrames", 0)),
                )
            )
        scenes.append(scene)
    return project, scenes
