"""Lambda engine: the render runs on Remotion Lambda; this follows it to the end.

One worker follows up to LAMBDA_MAX_IN_FLIGHT renders at once; this engine's coroutine
per render mostly waits on the updates the shared tracker (lambda_tracker.py) delivers:
the webhook first, paced polling as the fallback. Either way the engine returns once, and
the processor's lease-conditional completion makes a second completion impossible.

Starts take their functions from LAMBDA_CONCURRENCY_LIMIT, shared by all workers through
Redis (lambda_budget.py), first; a
start Lambda throttles (HTTP 429 TooManyRequestsException: the render did not start) is
retried with backoff within the attempt, never re-sent after any other failure.

The Lambda render id, function and bucket are recorded on the render as soon as the render
starts. A worker that takes the render over (after a crash, or a hand-back at shutdown)
finds them in `job.resume` and follows the same Lambda render instead of starting another.
Lambda is handed presigned URLs of assets the worker fetched and staged (lambda_assets.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping
from typing import Any

from render_common.config import Settings
from render_common.downloads import LAMBDA, StoredObject
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
from services.render_worker.engines.lambda_assets import AssetStager
from services.render_worker.engines.lambda_budget import SharedFunctionBudget
from services.render_worker.engines.lambda_client import (
    START_UNCERTAIN,
    THROTTLED,
    LambdaClient,
    LambdaRender,
    classify_render_errors,
    functions_needed,
    out_name,
)
from services.render_worker.engines.lambda_lookup import find_started, start_pending
from services.render_worker.engines.lambda_pacing import backoff
from services.render_worker.engines.lambda_poster import poster_details
from services.render_worker.engines.lambda_tracker import LambdaTracker, Update
from services.render_worker.failures import RenderFailure

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
        tracker: LambdaTracker,
        fetcher: AssetFetcher,
        *,
        assets: AssetCatalogue,
        settings: Settings,
        budget: SharedFunctionBudget,
    ) -> None:
        self._client = client
        self.tracker = tracker
        self._stager = AssetStager(fetcher, assets=assets, settings=settings)
        self._settings = settings
        self.budget = budget
        self._running: dict[str, LambdaRender] = {}

    async def render(self, job: RenderJob, report: ProgressReport) -> RenderOutput:
        """Start (or resume) the Lambda render and follow it until it ends."""
        await report(Stage.BUNDLING, 0.0, 0)
        functions = functions_needed(job.frames_total, self._settings)
        # Every asset fetched here (each hop checked) and staged; Lambda gets signed copies.
        # Also when resuming: the poster still is rendered again, from the same copies.
        staged, signed = await self._stager.stage(job)
        render = self._resumed(job)
        if render is None and start_pending(job):  # an earlier worker's start went out
            since = time.time() - self._settings.render_timeout_seconds
            render = await find_started(self._client, job, since)
        if render is not None:
            await self.budget.take(job.render_id, functions)  # running already
            log.info(
                "following lambda render of an earlier worker",
                extra={"render_id": job.render_id, "lambda_render_id": render.render_id},
            )
        else:
            await self.budget.acquire(job.render_id, functions)
            try:
                render = await self._start(staged)
            except BaseException as exc:
                await self.budget.release(job.render_id)
                raise await self._stager.failed(job, exc, signed) from None
        # Known to `cancel` from here on, before anything else can fail or wait.
        self._running[job.render_id] = render
        updates = self.tracker.follow(render)
        poster = asyncio.create_task(poster_details(self._client, staged, render.bucket_name))
        try:
            if job.resume.get("lambda_render_id") != render.render_id and job.record is not None:
                await job.record(lambda_details(render))
            await report(Stage.RENDERING, PREPARED_PROGRESS, 0)
            output = await self._follow(job, render, report, updates)
            output.details.update(await poster)  # the thumbnail, rendered meanwhile
            await self._stager.discard(job)
            return output
        except asyncio.CancelledError:
            # Shutdown or a lost lease: the render goes on on Lambda, and whoever follows
            # it next takes its lease over (or the lease expires). A render stopped on
            # Lambda (cancel, timeout) gave its lease back in `cancel`.
            self.budget.forget(job.render_id)
            raise
        except BaseException as exc:
            raise await self._stager.failed(job, exc, signed) from None
        finally:
            poster.cancel()
            self.tracker.unfollow(render)
            self._running.pop(job.render_id, None)
            await self.budget.release(job.render_id)

    async def _start(self, job: RenderJob) -> LambdaRender:
        """renderMediaOnLambda, retried with backoff while Lambda throttles it. The row is
        marked "start sent" first; an answer lost after the call went out is resolved by
        looking the render up (engines/lambda_lookup.py), never by starting again."""
        if job.record is not None:
            await job.record({"lambda_function_name": self._client.function_name})
        for retry in itertools.count():
            sent = time.time()
            try:
                render = await self._client.start(job)
            except RenderFailure as failure:
                if failure.reason == START_UNCERTAIN:
                    return await self._started_anyway(job, sent, failure)
                if failure.reason != THROTTLED:
                    raise
                delay = backoff(retry)
                log.info(
                    "lambda start throttled; backing off",
                    extra={"render_id": job.render_id, "retry": retry, "delay": delay},
                )
                await asyncio.sleep(delay)
                continue
            log.info(
                "lambda render started",
                extra={"render_id": job.render_id, "lambda_render_id": render.render_id},
            )
            return render
        raise AssertionError("unreachable")

    async def _started_anyway(
        self, job: RenderJob, sent: float, failure: RenderFailure
    ) -> LambdaRender:
        """The render an unanswered start began, or a retryable failure if none did."""
        log.warning(
            "lambda start unanswered; looking for its render",
            extra={"render_id": job.render_id, "error": failure.message},
        )
        render = await find_started(self._client, job, sent)
        if render is None:
            raise RenderFailure(
                "LAMBDA_UNAVAILABLE",
                f"{failure.message}; no render of it found, so it is started again",
                retryable=True,
            )
        log.info(
            "lambda render of an unanswered start found",
            extra={"render_id": job.render_id, "lambda_render_id": render.render_id},
        )
        return render

    def _resumed(self, job: RenderJob) -> LambdaRender | None:
        render_id = job.resume.get("lambda_render_id")
        bucket = job.resume.get("lambda_bucket_name")
        if not render_id or not bucket:
            return None
        function = job.resume.get("lambda_function_name") or self._client.function_name
        return LambdaRender(str(render_id), str(bucket), str(function))

    async def _follow(
        self,
        job: RenderJob,
        render: LambdaRender,
        report: ProgressReport,
        updates: asyncio.Queue[Update],
    ) -> RenderOutput:
        failures = 0
        reported = 0.0  # Remotion's overallProgress may dip; events never go backwards
        while True:
            update = await updates.get()
            if update.kind == "webhook":
                return await self._from_webhook(job, render, update.payload)
            if update.failure is not None:
                failure = update.failure
                failures += failure.reason != THROTTLED  # a throttled poll is only late
                if not failure.retryable or failures >= MAX_PROGRESS_FAILURES:
                    raise failure
                log.warning(
                    "lambda progress call failed",
                    extra={"render_id": job.render_id, "reason": failure.reason},
                )
                continue
            failures = 0
            progress = update.payload
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

    async def _from_webhook(
        self, job: RenderJob, render: LambdaRender, payload: dict[str, Any]
    ) -> RenderOutput:
        kind = payload.get("type")
        if kind == "success":
            try:
                progress = await self._client.progress(render, paced=False)  # size, dimensions
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
        key = str(progress.get("outKey") or f"renders/{render.render_id}/{out_name(job)}")
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
            return
        await self.budget.release(job.render_id)  # stopping: its functions free up
        await self._stager.discard(job)

    async def close(self) -> None:
        """Stop the tracker, the client's threads and the tracker's Redis client."""
        await self.tracker.close()
        await self.budget.close()
        self._client.close()
        self._stager.close()


def _is_fatal(error: Any) -> bool:
    return not isinstance(error, dict) or bool(error.get("isFatal", True))
