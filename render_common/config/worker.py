"""Settings of the render worker: queue, attempts, the SSR render host, Lambda."""

from __future__ import annotations

from pydantic import BaseModel, field_validator
from pydantic_core import PydanticCustomError

from render_common.config.base import (
    ROOT,
    AtLeastOne,
    LambdaPrivacy,
    NotNegative,
    Positive,
    env,
)
from render_common.host_protocol import X264_PRESETS


class QueueSection(BaseModel):
    """The render queue, attempts, retries and the sweeper."""

    worker_concurrency: AtLeastOne = 1  # WORKER_CONCURRENCY (seed: 1 to avoid OOM)
    worker_name: str = ""  # WORKER_NAME: consumer name; default host-pid
    visibility_timeout_seconds: float = 60.0  # VISIBILITY_TIMEOUT_SECONDS
    max_attempts: AtLeastOne = 3  # MAX_ATTEMPTS (seed)
    # MAX_DELIVERIES: deliveries of one attempt's entry (the first read plus each reclaim
    # from a worker that went silent); past it the render fails RENDER_CRASHED_WORKER.
    max_deliveries: AtLeastOne = 3
    # REDIS_OUTAGE_SECONDS: how long a worker retries the Redis side of an ending attempt
    # (its terminal event, retry entry, dead letter, ack) before leaving it to the sweeper.
    redis_outage_seconds: NotNegative = 60.0
    retry_base_delay_seconds: float = 2.0  # RETRY_BASE_DELAY_SECONDS (seed, exponential)
    render_timeout_seconds: float = 1800.0  # RENDER_TIMEOUT_SECONDS (seed: 30 min)
    sweeper_interval_seconds: float = 5.0  # SWEEPER_INTERVAL_SECONDS
    sweeper_grace_seconds: float = 10.0  # SWEEPER_GRACE_SECONDS: age before re-enqueue
    render_concurrency: int = 0  # RENDER_CONCURRENCY: Chromium tabs per render; 0 = half cores
    events_maxlen: int = 1000  # EVENTS_MAXLEN: cap of render:events:{id}
    events_ttl_seconds: int = 24 * 3600  # EVENTS_TTL_SECONDS after completion


class RemotionSection(BaseModel):
    """The SSR render host (Node, Remotion, Chromium)."""

    remotion_dir: str = str(ROOT / "remotion")  # REMOTION_DIR
    browser_executable: str = env("/usr/bin/chromium-headless-shell", "REMOTION_BROWSER_EXECUTABLE")
    node_binary: str = "node"  # NODE_BINARY
    # X264_PRESET: h264 encoder speed/size trade-off. veryfast: measured here 1.2x faster
    # end to end than Remotion's default (medium) at the same CRF, files no larger.
    x264_preset: str = "veryfast"  # one of the render host protocol's x264Preset enum
    # SKIP_STATIC_FRAMES: capture one frame of each still stretch the compositions report
    # (a title after its entrance, a color card) and let the encoder repeat it; the output
    # is the same, byte for byte (h264 only). false captures every frame.
    skip_static_frames: bool = True
    # BEGIN_FRAME_CAPTURE: capture each frame with HeadlessExperimental.beginFrame (the
    # frame Chromium draws on request is the one captured) instead of Page.captureScreenshot,
    # which composites twice: Chromium used about a quarter less CPU per frame here
    # (remotion/lib/begin-frame-capture.mjs). false captures as Remotion does.
    begin_frame_capture: bool = True
    # RENDER_BROWSERS: Chromium browsers the render host keeps open and spreads a render's tabs
    # over. With begin-frame capture a browser draws one frame at a time, so two tabs in two
    # browsers do not wait for each other's frames: the reference clip took 0.85 of the wall
    # time with 2 than with 1, at no more CPU. Each costs about 70 MB (PSS, idle).
    render_browsers: AtLeastOne = 2

    @field_validator("x264_preset")
    @classmethod
    def _known_x264_preset(cls, value: str) -> str:
        """The presets are listed once, in remotion/protocol/host-protocol.schema.json."""
        if value not in X264_PRESETS:
            expected = ", ".join(repr(preset) for preset in X264_PRESETS)
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": expected}
            )
        return value


class LambdaSection(BaseModel):
    """Remotion Lambda, and the webhook its renders call back."""

    aws_region: str = "us-east-1"  # AWS_REGION
    lambda_function_name: str = env("", "REMOTION_FUNCTION_NAME")
    lambda_serve_url: str = env("", "REMOTION_SERVE_URL")
    lambda_bucket: str = env("", "REMOTION_BUCKET")
    lambda_frames_per_lambda: int = env(20, "REMOTION_FRAMES_PER_LAMBDA")  # (seed)
    lambda_max_retries: int = env(3, "REMOTION_MAX_RETRIES")  # (seed)
    lambda_timeout_seconds: int = env(900, "REMOTION_TIMEOUT_SECONDS")  # function timeout
    lambda_poll_interval_seconds: Positive = env(2.0, "REMOTION_POLL_INTERVAL_SECONDS")
    lambda_privacy: LambdaPrivacy = env("public", "REMOTION_PRIVACY")  # (seed)
    # One worker follows this many Lambda renders at once, besides its SSR slots.
    lambda_max_in_flight: AtLeastOne = 500  # LAMBDA_MAX_IN_FLIGHT
    # Lambda functions all workers together may keep busy (the account's concurrency limit,
    # shared through Redis): a render needs ceil(frames / frames per lambda) renderers + 1.
    lambda_concurrency_limit: AtLeastOne = 1000  # LAMBDA_CONCURRENCY_LIMIT
    # getRenderProgress calls per second, all followed renders together (each is an
    # Invoke against the same limits); webhooks complete renders without them.
    lambda_max_polls_per_second: Positive = 20.0  # LAMBDA_MAX_POLLS_PER_SECOND
    lambda_call_threads: AtLeastOne = 16  # LAMBDA_CALL_THREADS: blocking AWS calls at once
    # How long an AWS call's answer may take. A start answered later may have started the
    # render: the worker then looks it up in the bucket instead of starting it again.
    lambda_read_timeout_seconds: Positive = 120.0  # LAMBDA_READ_TIMEOUT_SECONDS
    webhook_url: str = ""  # WEBHOOK_URL
    webhook_secret: str = ""  # WEBHOOK_SECRET
    webhook_port: int = 8090  # WEBHOOK_PORT

    @property
    def lambda_configured(self) -> bool:
        """Whether the Lambda engine has what it needs to start renders."""
        return bool(self.lambda_function_name and self.lambda_serve_url)
