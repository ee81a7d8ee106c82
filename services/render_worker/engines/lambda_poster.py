"""The thumbnail (poster) of a Lambda render: `renderStillOnLambda` at the poster frame.

It renders while the video does (one more function invocation, done when the call
returns), into the video's bucket as `renders/{still render id}/{render_id}.jpg`, with the
video's privacy: a public still keeps its URL (it never expires), a private one its key,
signed each time the render is read, like the output. A still that fails costs the
render nothing but its thumbnail, as on SSR.
"""

from __future__ import annotations

import logging
from typing import Any

from remotion_lambda import RenderStillParams
from remotion_lambda.models import Privacy, ShouldDownload, ValidStillImageFormats

from render_common.poster import resolve_poster_frame
from render_common.presets import AUDIO_ONLY_FORMATS, QUALITY_PRESETS
from services.render_worker.engines.base import RenderJob
from services.render_worker.engines.lambda_client import (
    COMPOSITION_ID,
    DELAY_RENDER_TIMEOUT_MS,
    LambdaClient,
)
from services.render_worker.failures import RenderFailure
from services.render_worker.media import input_props

log = logging.getLogger(__name__)

STILL_MAX_RETRIES = 1  # Remotion's default for stills


def still_params(job: RenderJob, privacy: str, bucket: str) -> RenderStillParams:
    """renderStillOnLambda's options for a job's poster: the video's props, size, JPEG
    quality, privacy and bucket, at the poster frame."""
    preset = QUALITY_PRESETS[job.quality]
    shape = job.output
    params = RenderStillParams(
        composition=COMPOSITION_ID,
        input_props=input_props(job, job.scenes),
        image_format=ValidStillImageFormats.JPEG,
        privacy=Privacy(privacy),
        jpeg_quality=preset.jpeg_quality,
        frame=resolve_poster_frame(job.poster_frame, job.frames_total, shape.fps),
        out_name=f"{job.render_id}.jpg",
        force_width=shape.width,
        force_height=shape.height,
        force_fps=shape.fps,
        force_bucket_name=bucket,
        max_retries=STILL_MAX_RETRIES,
        timeout_in_milliseconds=DELAY_RENDER_TIMEOUT_MS,
        download_behavior=ShouldDownload(
            type="download", fileName=f"{job.project_id}-thumbnail.jpg"
        ),
    )
    # As for the video: options go as a plain camelCase dict (lambda_client.render_params).
    params.chromium_options = {}
    return params


async def poster_details(client: LambdaClient, job: RenderJob, bucket: str) -> dict[str, Any]:
    """The render's thumbnail columns after rendering its poster ({} if the still failed,
    and for audio-only formats, which have no picture)."""
    if job.format in AUDIO_ONLY_FORMATS:
        return {}
    try:
        still = await client.still(still_params(job, client.privacy, bucket))
    except RenderFailure as failure:
        log.warning(
            "lambda poster failed; the render has no thumbnail",
            extra={"render_id": job.render_id, "error": failure.message},
        )
        return {}
    if still is None or not (still.outKey or still.url):
        return {}
    if still.bucket_name and still.bucket_name != bucket:
        log.warning(
            "lambda poster landed in another bucket; not linked",
            extra={"render_id": job.render_id, "bucket": still.bucket_name},
        )
        return {}
    if client.privacy == "public":
        return {"thumbnail_url": still.url, "thumbnail_key": still.outKey}
    return {"thumbnail_key": still.outKey}
