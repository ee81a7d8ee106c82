"""Remotion Lambda calls, off the event loop, with errors classified for the retry policy.

The PyPI `remotion-lambda` client is synchronous (boto3); every call here runs in this
client's own thread pool (LAMBDA_CALL_THREADS), so hundreds of followed renders never
queue behind each other on the loop nor take the default executor. The client builds a
boto3 client per call (tens of milliseconds of CPU each): ours keeps one per service
(boto3 clients are thread-safe). Invoke is sent once (no botocore retries): a start that
botocore re-sent after a read timeout could start the render twice; a throttled one
(HTTP 429) is retried by the engine with backoff. Endpoints come from boto3's own
settings, so `AWS_ENDPOINT_URL_LAMBDA` / `AWS_ENDPOINT_URL_S3` reach a local server in tests.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError
from remotion_lambda import RemotionClient, RenderMediaParams, RenderStillParams
from remotion_lambda.exception import RemotionException, RemotionInvalidArgumentException
from remotion_lambda.models import (
    Privacy,
    RenderStillResponse,
    ShouldDownload,
    ValidStillImageFormats,
    Webhook,
)

from render_common.config import Settings
from render_common.output_shape import gif_every_nth_frame
from render_common.presets import FORMAT_EXTENSIONS, output_encoding
from services.render_worker.engines.base import RenderJob
from services.render_worker.engines.lambda_pacing import RateLimiter
from services.render_worker.failures import RenderFailure
from services.render_worker.media import input_props

T = TypeVar("T")
COMPOSITION_ID = "MainComposition"
MAX_FUNCTIONS_PER_RENDER = 200  # Remotion refuses a render needing more renderer functions
# Remotion's per-frame wait for delayRender() (asset loading) inside the function. The
# function's own time limit is fixed at deploy time (REMOTION_TIMEOUT_SECONDS, deploy.sh).
DELAY_RENDER_TIMEOUT_MS = 60_000

# Lambda / Remotion error messages worth another attempt: throttling, capacity, transient
# network trouble. Everything else (bad input, version mismatch, missing function, access
# denied, the composition throwing, a function timing out) fails the render at once.
RETRYABLE_MESSAGE = re.compile(
    r"rate exceeded|too ?many ?requests|throttl|concurrency limit|service ?unavailable|"
    r"internal ?server ?error|econnreset|socket hang up|slow ?down|"
    r"please reduce your request rate",
    re.IGNORECASE,
)
TIMEOUT_MESSAGE = re.compile(r"timed out|timeout", re.IGNORECASE)
THROTTLED = "LAMBDA_THROTTLED"  # the call was refused for rate or concurrency: not run
# The start went out but its answer did not come back: the render may be running.
START_UNCERTAIN = "LAMBDA_START_UNCERTAIN"
THROTTLE_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling"})
RETRYABLE_AWS_CODES = frozenset(
    {
        *THROTTLE_CODES,
        "ServiceException",
        "ServiceUnavailableException",
        "EC2ThrottledException",
        "ResourceConflictException",
        "SlowDown",
        "InternalError",
        "RequestTimeout",
    }
)


@dataclass(frozen=True, slots=True)
class LambdaRender:
    """A render running on Remotion Lambda."""

    render_id: str
    bucket_name: str
    function_name: str


def classify(exc: BaseException, action: str) -> RenderFailure:
    """The RenderFailure for an exception raised while talking to Lambda."""
    if isinstance(exc, RenderFailure):
        return exc
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        retryable = code in RETRYABLE_AWS_CODES or status >= 500 or status == 429
        throttled = code in THROTTLE_CODES or status == 429
        return RenderFailure(
            THROTTLED if throttled else "LAMBDA_UNAVAILABLE" if retryable else "LAMBDA_REJECTED",
            f"Lambda {action} failed: {code or status}: {exc}",
            retryable=retryable,
        )
    if isinstance(exc, BotoCoreError | ConnectionError | TimeoutError | OSError):
        return RenderFailure("LAMBDA_UNAVAILABLE", f"Lambda {action} failed: {exc}", retryable=True)
    if isinstance(exc, RemotionInvalidArgumentException):
        return RenderFailure("INVALID_INPUT", f"Lambda {action}: {exc}", retryable=False)
    message = str(exc)
    retryable = bool(RETRYABLE_MESSAGE.search(message))
    return RenderFailure(
        "LAMBDA_ERROR" if not retryable else "LAMBDA_UNAVAILABLE",
        f"Lambda {action} failed: {message}",
        retryable=retryable,
    )


def classify_render_errors(errors: list[Any]) -> RenderFailure:
    """The failure of a render Remotion reports as fatal (progress `errors` or webhook)."""
    messages = [
        str(error.get("message") or error.get("name") or error)
        if isinstance(error, dict)
        else str(error)
        for error in errors
    ] or ["Remotion Lambda reported a fatal error without details"]
    stacks = [str(e.get("stack", "")) for e in errors if isinstance(e, dict) and e.get("stack")]
    message = messages[-1]
    if re.search(r"cancel", message, re.IGNORECASE):
        return RenderFailure("LAMBDA_CANCELLED", message, retryable=False)
    if TIMEOUT_MESSAGE.search(message) and not RETRYABLE_MESSAGE.search(message):
        return RenderFailure("LAMBDA_TIMEOUT", message, retryable=False)
    return RenderFailure(
        "LAMBDA_RENDER_FAILED",
        message,
        retryable=bool(RETRYABLE_MESSAGE.search(message)),
        stack="\n\n".join(stacks),
    )


def out_name(job: RenderJob) -> str:
    """The output name of the attempt's Lambda render, and so its identity in the bucket
    (engines/lambda_lookup.py): the render id, plus the attempt after the first."""
    suffix = "" if job.attempt <= 1 else f"-attempt{job.attempt}"
    return f"{job.render_id}{suffix}.{FORMAT_EXTENSIONS[job.format]}"


def frames_per_lambda(frames_total: int, configured: int) -> int:
    """REMOTION_FRAMES_PER_LAMBDA, raised so a long render stays within 200 functions."""
    return max(configured, -(-frames_total // MAX_FUNCTIONS_PER_RENDER))


def functions_needed(frames_total: int, settings: Settings) -> int:
    """The Lambda functions a render keeps busy: its renderers and the orchestrator."""
    per_lambda = frames_per_lambda(frames_total, settings.lambda_frames_per_lambda)
    return -(-max(frames_total, 1) // per_lambda) + 1


def render_params(job: RenderJob, settings: Settings) -> RenderMediaParams:
    """renderMediaOnLambda's settings for a job: the quality's CRF and JPEG quality, the
    shape's size, frame rate, codec and alpha (as the SSR engine asks the render host)."""
    shape = job.output
    out = output_encoding(job.format, job.quality, shape.video_codec, shape.transparent)
    webhook = None
    if settings.webhook_url:
        webhook = Webhook(
            url=settings.webhook_url,
            secret=settings.webhook_secret,
            # ASCII only: Remotion sends Content-Length in UTF-16 units, not bytes.
            customData={"renderId": job.render_id, "attempt": job.attempt},
        )
    params = RenderMediaParams(
        composition=COMPOSITION_ID,
        input_props=input_props(job, job.scenes),
        codec=out.codec,
        crf=out.crf,
        jpeg_quality=out.jpeg_quality,
        image_format=ValidStillImageFormats(out.image_format),
        pixel_format=out.pixel_format,
        pro_res_profile=out.prores_profile,
        force_width=shape.width,
        force_height=shape.height,
        force_fps=shape.fps,
        every_nth_frame=gif_every_nth_frame(shape.fps) if out.codec == "gif" else 1,
        privacy=Privacy(settings.lambda_privacy),
        download_behavior=ShouldDownload(
            type="download", fileName=f"{job.project_id}-{job.render_id[:8]}.{out.extension}"
        ),
        out_name=out_name(job),
        frames_per_lambda=frames_per_lambda(job.frames_total, settings.lambda_frames_per_lambda),
        max_retries=settings.lambda_max_retries,
        timeout_in_milliseconds=DELAY_RENDER_TIMEOUT_MS,
        enable_cancellation=True,
        webhook=webhook,
        metadata={"renderId": job.render_id, "projectId": job.project_id},
    )
    if out.audio_only:
        # Audio only: no frames to capture (Remotion's docs: imageFormat "none"), which the
        # client's enum of still formats does not list.
        params.image_format = "none"
    if settings.lambda_bucket:
        params.bucket_name = settings.lambda_bucket
    # The client would send its ChromiumOptions dataclass with snake_case keys, which the
    # function ignores; any option must go as a plain dict with camelCase keys.
    params.chromium_options = {}
    return params


class _SharedClients(RemotionClient):  # type: ignore[misc]
    """RemotionClient keeping one boto3 client per service instead of one per call."""

    def __init__(self, *args: Any, pool: int, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = pool
        self._read_timeout = read_timeout
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def _create_boto_client(self, service_name: str) -> Any:
        with self._clients_lock:
            client = self._clients.get(service_name)
            if client is None:
                attempts = 1 if service_name == "lambda" else 3  # S3 calls are idempotent
                config = Config(
                    connect_timeout=5,
                    read_timeout=self._read_timeout,
                    max_pool_connections=self._pool,
                    retries={"total_max_attempts": attempts, "mode": "standard"},
                )
                if service_name == "s3" and self.force_path_style:
                    config = config.merge(Config(s3={"addressing_style": "path"}))
                client = self.session.client(service_name, region_name=self.region, config=config)
                self._clients[service_name] = client
            return client


class LambdaClient:
    """Start, follow and cancel renders on one Remotion Lambda function."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.function_name = settings.lambda_function_name
        self.privacy = settings.lambda_privacy  # of the outputs: public, private or no-acl
        self.bucket = settings.lambda_bucket  # "" : Remotion's default bucket
        threads = settings.lambda_call_threads
        rate = settings.lambda_max_polls_per_second
        self.progress_rate = RateLimiter(rate, burst=rate)  # all followed renders together
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lambda")
        self._client = _SharedClients(
            region=settings.aws_region,
            serve_url=settings.lambda_serve_url,
            function_name=settings.lambda_function_name,
            session=boto3.session.Session(region_name=settings.aws_region),
            pool=threads,
            read_timeout=settings.lambda_read_timeout_seconds,
        )

    async def run(self, action: str, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in the pool; its errors as RenderFailure."""
        return await self._call(action, call, *args)

    def s3(self) -> Any:
        """The shared boto3 S3 client (thread-safe)."""
        return self._client._create_boto_client("s3")

    async def _call(self, action: str, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call in the pool; its errors as RenderFailure."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(call, *args))
        except (RemotionException, ClientError, BotoCoreError, OSError) as exc:
            raise classify(exc, action) from exc

    def close(self) -> None:
        """Stop the thread pool (calls in flight finish)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def start(self, job: RenderJob) -> LambdaRender:
        """Start a render; the Lambda render id and bucket."""
        params = render_params(job, self._settings)
        try:
            response = await self._call("start", self._client.render_media_on_lambda, params)
        except RenderFailure as failure:
            if isinstance(failure.__cause__, ReadTimeoutError | ConnectionClosedError):
                raise RenderFailure(START_UNCERTAIN, failure.message, retryable=True) from None
            raise
        if response is None:
            raise RenderFailure(
                "LAMBDA_ERROR", "Lambda start returned no render id", retryable=True
            )
        return LambdaRender(response.render_id, response.bucket_name, self.function_name)

    async def still(self, params: RenderStillParams) -> RenderStillResponse | None:
        """Render one still (`render_still_on_lambda`); it is done when this returns."""
        return await self._call("still", self._client.render_still_on_lambda, params)

    async def progress(self, render: LambdaRender, *, paced: bool = True) -> dict[str, Any]:
        """The render's progress as the function reports it (camelCase keys). `paced`
        (polling) waits its turn within LAMBDA_MAX_POLLS_PER_SECOND; the one call after a
        webhook (for size and dimensions) does not, so a burst of completions is not
        held back behind the polling rate (the thread pool still bounds it)."""
        if paced:
            await self.progress_rate.acquire()
        progress = await self._call(
            "progress", self._client.get_render_progress, render.render_id, render.bucket_name
        )
        return dict(vars(progress)) if progress is not None else {}

    async def cancel(self, render: LambdaRender) -> None:
        """Ask the function to stop the render (`cancel_render_on_lambda`)."""
        await self._call(
            "cancel", self._client.cancel_render_on_lambda, render.render_id, render.bucket_name
        )
