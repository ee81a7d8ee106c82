"""The WebVTT sidecar of a render with captions, and the audio fields of the metadata.

The sidecar is always written by the worker from the validated cue list (whichever
engine rendered, and whether or not the captions were burned in) and stored beside the
output with the same key and a `.vtt` extension: in our storage (local or S3) for an SSR
output, in the Remotion bucket for a Lambda output, so that one storage and location on
the row describe every object of the render. Its key goes in `captions_key`; the link is
signed when the render is read (render_common/downloads.py). Beside a public Lambda
output (a permanent URL, no storage on the row) the sidecar is public-read, and its link
is the output's URL with the sidecar's key.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from render_common.captions import Cue, to_vtt
from render_common.config import Settings
from render_common.downloads import LAMBDA, StoredObject
from render_common.renders.record import Render
from services.render_worker.engines.base import RenderOutput
from services.render_worker.storage import S3Storage, Storage, output_key

CONTENT_TYPE = "text/vtt; charset=utf-8"


def audio_metadata(probe: dict[str, Any]) -> dict[str, Any]:
    """The render metadata's audio fields from the render host's probe."""
    return {
        "audioCodec": str(probe.get("audioCodec") or ""),
        "audioSampleRate": int(probe.get("audioSampleRate") or 0),
        "audioChannels": int(probe.get("audioChannels") or 0),
    }


def _beside(key: str) -> str:
    """`renders/p/r.mp4` -> `renders/p/r.vtt`."""
    stem, dot, _ = key.rpartition(".")
    return f"{stem}.vtt" if dot and "/" not in key[len(stem) :] else f"{key}.vtt"


async def store_sidecar(
    row: Render,
    output: RenderOutput,
    values: dict[str, Any],
    work_dir: Path,
    storage: Storage,
    settings: Settings,
) -> dict[str, Any]:
    """Write and upload the sidecar of a render with captions; the row's columns for it."""
    captions = row.captions
    if not captions:
        return {}
    path = work_dir / "captions.vtt"
    cues = [Cue.from_json(cue) for cue in captions.get("cues", [])]
    await asyncio.to_thread(path.write_text, to_vtt(cues), "utf-8")
    metadata = {"render-id": row.id, "project-id": row.project_id}
    name = f"{row.project_id}-{int(time.time())}.vtt"
    if output.output_path is not None:  # uploaded by the worker: beside it in our storage
        key = output_key(row.project_id, row.id, "vtt")
        stored = await storage.put(
            path, key, content_type=CONTENT_TYPE, metadata=metadata, download_name=name
        )
        return {"captions_key": stored.key}
    # A Lambda output, in the Remotion bucket: the sidecar goes beside it there.
    acl: str | None = None
    if output.output_url:  # public: the sidecar too, its link made from the output's
        bucket = str(values.get("lambda_bucket_name") or settings.lambda_bucket)
        lambda_key, acl = str(values.get("output_key") or f"renders/{row.id}"), "public-read"
    else:  # private (or no-acl): presigned when read
        assert output.stored is not None
        bucket, lambda_key = output.stored.location, output.stored.key
    target = S3Storage(bucket, "", endpoint_url="", region=settings.aws_region, acl=acl)
    stored = await target.put(
        path, _beside(lambda_key), content_type=CONTENT_TYPE, metadata=metadata, download_name=name
    )
    if acl:  # the row keeps no storage: its output's URL is permanent
        return {"captions_key": stored.key}
    return {
        "captions_key": stored.key,
        "storage": LAMBDA,
        "storage_location": StoredObject(LAMBDA, bucket, stored.key).location,
    }
