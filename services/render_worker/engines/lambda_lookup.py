"""Finding the Lambda render an uncertain start began.

Remotion Lambda has no idempotency key: a start whose answer is lost (the read timed out,
the connection closed after the request went out) may have started the render, and
sending it again would start a second one. So each attempt's render has an identity the
worker chooses before the call, its output name (`out_name`: the render id, plus the
attempt after the first), and the attempt's row is marked "start sent" (the function
and bucket recorded, no Lambda render id) before the call. After an uncertain start, or
when a later worker takes over an attempt marked so, the worker looks the render up in
the bucket: each `renders/<id>/progress.json` written since the start (Remotion writes
it before it answers the start), asked for its progress, whose render metadata names the
output. Found: it is followed as if the start had answered. Not found within
LOOKUP_SECONDS: nothing started, and a new start is safe.

The lookup lists the bucket's render folders (1,000 a page) and reads the date of each
progress file, so its cost grows with the renders kept in the bucket (Remotion's
lifecycle rules expire them); it runs only after an uncertain start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from botocore.exceptions import ClientError

from services.render_worker.engines.base import RenderJob
from services.render_worker.engines.lambda_client import LambdaClient, LambdaRender, out_name
from services.render_worker.failures import RenderFailure

log = logging.getLogger(__name__)

LOOKUP_SECONDS = 30.0  # how long a start may take to write its progress file after we gave up
LOOKUP_PAUSE_SECONDS = 1.0
CLOCK_SKEW_SECONDS = 300.0  # S3's clock against ours


def start_pending(job: RenderJob) -> bool:
    """Whether an earlier worker sent this attempt's start without learning its render."""
    return bool(job.resume.get("lambda_function_name")) and not job.resume.get("lambda_render_id")


def _recent_render_ids(s3: Any, bucket: str, since: float) -> list[str]:
    """Render ids of the bucket whose progress file was written at `since` or later,
    newest first."""
    found: list[tuple[float, str]] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="renders/", Delimiter="/"
    )
    for page in pages:
        for prefix in page.get("CommonPrefixes") or []:
            render_id = str(prefix["Prefix"]).split("/")[1]
            try:
                head = s3.head_object(Bucket=bucket, Key=f"renders/{render_id}/progress.json")
            except ClientError:
                continue
            written = head["LastModified"].timestamp()
            if written >= since - CLOCK_SKEW_SECONDS:
                found.append((written, render_id))
    return [render_id for _, render_id in sorted(found, reverse=True)]


async def _match(client: LambdaClient, bucket: str, name: str, since: float) -> LambdaRender | None:
    ids = await client.run("lookup", _recent_render_ids, client.s3(), bucket, since)
    for render_id in ids:
        render = LambdaRender(render_id, bucket, client.function_name)
        try:
            progress = await client.progress(render, paced=False)
        except RenderFailure:  # another render's trouble (gone, another function's)
            continue
        metadata = progress.get("renderMetadata") or {}
        if isinstance(metadata, dict) and metadata.get("outName") == name:
            return render
    return None


async def find_started(client: LambdaClient, job: RenderJob, since: float) -> LambdaRender | None:
    """The Lambda render of this attempt started at `since` (epoch seconds) or later, if
    any, looked for over LOOKUP_SECONDS; None if the bucket is unknown."""
    bucket = str(job.resume.get("lambda_bucket_name") or client.bucket)
    if not bucket:
        return None
    name = out_name(job)
    deadline = time.monotonic() + LOOKUP_SECONDS
    while True:
        try:
            render = await _match(client, bucket, name, since)
        except RenderFailure as failure:
            log.warning(
                "lambda start lookup failed",
                extra={"render_id": job.render_id, "error": failure.message},
            )
            render = None
        if render is not None or time.monotonic() >= deadline:
            return render
        await asyncio.sleep(LOOKUP_PAUSE_SECONDS)
