"""Lambda engine: the render runs on Remotion Lambda; this follows it to the end.

Progress comes from `get_render_progress` every REMOTION_POLL_INTERVAL_SECONDS and from the
webhook, whichever tells first: the webhook endpoint (services/render_worker/webhook.py)
parks the verified payload in Redis, and the engine waits on that key between polls, so a
webhook ends the wait at once. Either way the engine returns once, and the processor's
lease-conditional completion makes a second completion impossible.

The Lambda render id, function and bucket are recorded on the render as soon as the render
starts. A worker that takes the render over (after a crash, or a hand-back at shutdown)
finds them in `job.resume` and follows the same Lambda render instead of starting another.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from render_common import streams
from render_common.downloads import LAMBDA, StoredObject
from render_common.presets import FORMAT_EXTENSIONS
from render_common.renders.states import Stage
from render_common.scene_assets import AssetCatalogue
from services.render_worker.assets import AssetFetcher
from services.render_worker.engines.base import (
    PREPARED_PROGRESS,
    ProgressReport,
    RenderJob,
    RenderOutput,
    engine_progress,
)
from services.render_worker.engines.lambda_client import (
    LambdaClient,
    LambdaRender,
    classify_render_errors,
)
from services.render_worker.engines.lambda_poster import poster_details
from services.render_worker.failures import RenderFailure
from services.render_worker.media import asset_urls

log = logging.getLogger(__name__)

MAX_PROGRESS_FAILURES = 5  # consecutive failed status calls before giving the attempt up


def lambda_details(render: LambdaRender) -> dict[str, Any]:
    """The render row's Lambda columns."""
    return {
        "lambda_render_id": render.render_id,
        "lambda_function_name": render.function_name,
        "lambda_bucket_name": render.bucket_name,
    }


def cost_actual(costs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Remotion's reported cost in the stored cost shape (compute only)."""
    if not costs:
        return None
    total = float(costs.get("accruedSoFar", 0.0) or 0.0)
    return {
        "total_usd": total,
        "compute_usd": total,
        "storage_usd": 0.0,
        "currency": str(costs.get("currency", "USD")),
        "display": str(costs.get("displayCost", "")),
        "disclaimer": str(costs.get("disclaimer", "")),
    }


class LambdaEngine:
    """Renders on Remotion Lambda."""

    name = "lambda"

    def __init__(
        self,
        client: LambdaClient,
        redis: Redis,
        fetcher: AssetFetcher,
        *,
        assets: AssetCatalogue,
        poll_interval_seconds: float,
    ) -> None:
        self._client = client
        self._redis = redis  # blocking reads (BLMOVE) of webhook payloads
        self._fetcher = fetcher
        self._assets = assets
        self._poll_interval = poll_interval_seconds
        self._running: dict[str, LambdaRender] = {}

    async def render(self, job: RenderJob, report: ProgressReport) -> RenderOutput:
        """Start (or resume) the Lambda render and follow it until it ends."""
        await report(Stage.BUNDLING, 0.0, 0)
        render = self._resumed(job)
        started = render is None
        if render is not None:
            log.info(
                "following lambda render of an earlier worker",
                extra={"render_id": job.render_id, "lambda_render_id": render.render_id},
            )
        else:
            # Lambda fetches the assets itself: check the catalogue's asset props (not text).
            await self._fetcher.check_all(asset_urls(self._assets, job))
            render = await self._client.start(job)
            log.info(
                "lambda render started",
                extra={"render_id": job.render_id, "lambda_render_id": render.render_id},
            )
        # Known to `cancel` from here on, before anything else can fail or wait.
        self._running[job.render_id] = render
        poster = asyncio.create_task(poster_details(self._client, job, render.bucket_name))
        try:
            if started and job.record is not None:
                await job.record(lambda_details(render))
            await report(Stage.RENDERING, PREPARED_PROGRESS, 0)
            output = await self._follow(job, render, report)
            output.details.update(await poster)  # the thumbnail, rendered meanwhile
            return output
        finally:
            poster.cancel()
            self._running.pop(job.render_id, None)

    def _resumed(self, job: RenderJob) -> LambdaRender | None:
        render_id = job.resume.get("lambda_render_id")
        bucket = job.resume.get("lambda_bucket_name")
        if not render_id or not bucket:
            return None
        function = job.resume.get("lambda_function_name") or self._client.function_name
        return LambdaRender(str(render_id), str(bucket), str(function))

    async def _follow(
        self, job: RenderJob, render: LambdaRender, report: ProgressReport
    ) -> RenderOutput:
        failures = 0
        reported = 0.0  # Remotion's overallProgress may dip; events never go backwards
        while True:
            webhook = await self._wait_for_webhook(render)
            if webhook is not None:
                return await self._from_webhook(job, render, webhook)
            try:
                progress = await self._client.progress(render)
            except RenderFailure as failure:
                failures += 1
                if not failure.retryable or failures >= MAX_PROGRESS_FAILURES:
                    raise
                log.warning(
                    "lambda progress call failed",
                    extra={"render_id": job.render_id, "reason": failure.reason},
                )
                continue
            failures = 0
            if progress.get("fatalErrorEncountered"):
                fatal = [e for e in progress.get("errors") or [] if _is_fatal(e)]
                raise classify_render_errors(fatal or list(progress.get("errors") or []))
            if progress.get("done"):
                return self._output(job, render, progress, progress.get("outputFile"))
            overall = min(max(float(progress.get("overallProgress") or 0.0), reported), 1.0)
            reported = overall
            frames = progress.get("framesRendered")
            frames_done = int(frames) if frames is not None else int(overall * job.frames_total)
            stage = Stage.ENCODING if frames_done >= job.frames_total > 0 else Stage.RENDERING
            await report(stage, engine_progress(overall), frames_done)

    async def _wait_for_webhook(self, render: LambdaRender) -> dict[str, Any] | None:
        """The webhook payload parked for this render, waiting up to one poll interval."""
        key = streams.lambda_webhook(render.render_id)
        try:
            # BLMOVE from a list onto itself: a blocking read that leaves the payload in place.
            # Redis takes fractional timeouts; redis-py's stub says int.
            timeout: Any = self._poll_interval
            raw = await self._redis.blmove(key, key, timeout, "RIGHT", "LEFT")
        except (RedisError, OSError) as exc:
            log.warning("webhook wait failed; polling only", extra={"error": str(exc)})
            await asyncio.sleep(self._poll_interval)  # keep the polling pace without Redis
            return None
        return json.loads(raw) if raw else None

    async def _from_webhook(
        self, job: RenderJob, render: LambdaRender, payload: dict[str, Any]
    ) -> RenderOutput:
        kind = payload.get("type")
        if kind == "success":
            try:
                progress = await self._client.progress(render)  # size and dimensions
            except RenderFailure:
                progress = {}
            progress.setdefault("costs", payload.get("costs"))
            return self._output(job, render, progress, payload.get("outputUrl"))
        if kind == "timeout":
            raise RenderFailure(
                "LAMBDA_TIMEOUT",
                "Remotion Lambda timed out; lower REMOTION_FRAMES_PER_LAMBDA or raise the "
                "function's timeout",
                retryable=False,
            )
        raise classify_render_errors(list(payload.get("errors") or []))

    def _output(
        self,
        job: RenderJob,
        render: LambdaRender,
        progress: Mapping[str, Any],
        output_url: Any,
    ) -> RenderOutput:
        if not output_url:
            raise RenderFailure(
                "LAMBDA_ERROR", "Lambda render finished without an output file", retryable=True
            )
        metadata = progress.get("renderMetadata") or {}
        dimensions = metadata.get("dimensions") or {}
        size = int(progress.get("outputSizeInBytes") or 0)
        duration = job.output.seconds(job.frames_total)
        probe = {
            "durationSec": duration,
            "sizeBytes": size,
            "width": int(dimensions.get("width") or 0),
            "height": int(dimensions.get("height") or 0),
            "fps": float(job.output.fps),
            "codec": str(metadata.get("codec") or job.output.video_codec),
            "bitrate": int(size * 8 / duration) if duration else 0,
        }
        details: dict[str, Any] = lambda_details(render)
        costs = cost_actual(progress.get("costs"))
        if costs is not None:
            details["cost_actual"] = costs
        # Remotion writes the output to renders/{lambda render id}/{outName} in the render's
        # bucket (outKey in the progress, which the webhook payload lacks).
        key = str(
            progress.get("outKey")
            or f"renders/{render.render_id}/{job.render_id}.{FORMAT_EXTENSIONS[job.format]}"
        )
        if self._client.privacy == "public":
            # A public object's URL never expires: stored as the link (the key for the record).
            details["output_key"] = key
            return RenderOutput(probe=probe, output_url=str(output_url), details=details)
        # private (or no-acl, where the bucket policy decides): links are presigned GETs of
        # the object, made each time the render is read.
        stored = StoredObject(LAMBDA, render.bucket_name, key)
        return RenderOutput(probe=probe, stored=stored, details=details)

    async def cancel(self, job: RenderJob) -> None:
        """Stop the Lambda render with `cancel_render_on_lambda` (best effort)."""
        render = self._running.get(job.render_id) or self._resumed(job)
        if render is None:
            return
        try:
            await self._client.cancel(render)
        except RenderFailure as failure:
            log.warning(
                "lambda cancel failed",
                extra={"render_id": job.render_id, "error": failure.message},
            )

    async def close(self) -> None:
        """Close the Redis client."""
        await self._redis.aclose()


def _is_fatal(error: Any) -> bool:
    return not isinstance(error, dict) or bool(error.get("isFatal", True))
