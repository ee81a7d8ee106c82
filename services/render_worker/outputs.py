"""What a finished render leaves on its row: its output (and thumbnail) stored, and the
columns saying where they are and what they are."""

from __future__ import annotations

import time
from typing import Any

from render_common.downloads import StoredObject
from render_common.presets import FORMAT_CONTENT_TYPES, FORMAT_EXTENSIONS
from render_common.renders.record import Render
from services.render_worker.engines.base import RenderOutput
from services.render_worker.sidecar import audio_metadata
from services.render_worker.storage import Storage, output_key


def location_columns(stored: StoredObject) -> dict[str, str]:
    """The row's columns saying where a render's objects are (links are made when read)."""
    return {"storage": stored.storage, "storage_location": stored.location}


def output_metadata(probe: dict[str, Any]) -> dict[str, Any]:
    """The row's `metadata` from the engine's probe of the output."""
    return {
        "duration": float(probe.get("durationSec", 0.0) or 0.0),
        "fileSize": int(probe.get("sizeBytes", 0) or 0),
        "resolution": {
            "width": int(probe.get("width", 0) or 0),
            "height": int(probe.get("height", 0) or 0),
        },
        "fps": float(probe.get("fps", 0.0) or 0.0),
        "codec": str(probe.get("codec", "")),
        "bitrate": int(probe.get("bitrate", 0) or 0),
        **audio_metadata(probe),
    }


async def store_output(storage: Storage, row: Render, output: RenderOutput) -> dict[str, Any]:
    """Upload output and thumbnail (unless the engine stored them); the row's columns."""
    metadata = output_metadata(output.probe)
    values: dict[str, Any] = {"metadata": metadata, **output.details}
    if output.stored is not None:  # stored by the engine (a private Lambda output)
        values.update(location_columns(output.stored), output_key=output.stored.key)
        return values
    if output.output_url:  # a URL that never expires (a public Lambda output)
        values["output_url"] = output.output_url
        return values
    assert output.output_path is not None
    extension = FORMAT_EXTENSIONS[row.format]
    object_metadata = {
        "format": row.format,
        "quality": row.quality,
        "fileSize": str(metadata["fileSize"] or output.output_path.stat().st_size),
        "duration": f"{metadata['duration']:.3f}",
        "render-id": row.id,
        "project-id": row.project_id,
    }
    stored = await storage.put(
        output.output_path,
        output_key(row.project_id, row.id, extension),
        content_type=FORMAT_CONTENT_TYPES[row.format],
        metadata=object_metadata,
        download_name=f"{row.project_id}-{int(time.time())}.{extension}",
    )
    values.update(location_columns(stored), output_key=stored.key)
    if output.thumbnail_path is not None and output.thumbnail_path.exists():
        thumb = await storage.put(
            output.thumbnail_path,
            output_key(row.project_id, row.id, "jpg"),
            content_type="image/jpeg",
            metadata={"render-id": row.id, "project-id": row.project_id},
            download_name=f"{row.project_id}-thumbnail.jpg",
        )
        values["thumbnail_key"] = thumb.key  # same storage and location as the output
    if not metadata["fileSize"]:
        metadata["fileSize"] = output.output_path.stat().st_size
    return values
