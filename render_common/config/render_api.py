"""Settings of render_api: intake limits, engine routing, webhooks to callers."""

from __future__ import annotations

from pydantic import BaseModel

from render_common.config.base import (
    AtLeastOne,
    CommaSeparated,
    ConfigError,
    NotNegative,
    Positive,
    RenderMode,
    env,
)
from render_common.outbound import parse_networks


class IntakeSection(BaseModel):
    """What StartRender admits, and which engine renders it."""

    max_scenes: AtLeastOne = 200  # MAX_SCENES
    max_total_frames: AtLeastOne = 30 * 60 * 30  # MAX_TOTAL_FRAMES (30 min at 30 fps)
    max_scene_frames: int = 30 * 60 * 10  # MAX_SCENE_FRAMES (10 min)
    daily_render_limit: AtLeastOne = env(50, "USER_DAILY_EXPORT_LIMIT")  # (seed)
    concurrent_render_limit: AtLeastOne = 5  # CONCURRENT_RENDER_LIMIT
    max_render_cost_usd: Positive = env(1.0, "MAX_RENDER_COST")  # (seed)

    render_mode: RenderMode = "ssr"  # RENDER_MODE (seed)
    auto_lambda_min_frames: int = 30 * 60  # AUTO_LAMBDA_MIN_FRAMES: longer goes to Lambda
    auto_max_ssr_queue: int = 20  # AUTO_MAX_SSR_QUEUE: deeper SSR queue goes to Lambda
    # SSR's price (render_common/pricing.py): worker seconds per 1920x1080 frame (scaled by
    # pixels), at a price per worker second (a 2-vCPU, 4 GiB instance: about $0.09 an hour).
    ssr_worker_seconds_per_frame: Positive = 0.05  # SSR_WORKER_SECONDS_PER_FRAME
    ssr_cost_per_worker_second: NotNegative = 0.000025  # SSR_COST_PER_WORKER_SECOND (USD)


class CallerWebhookSection(BaseModel):
    """Webhooks to callers (StartRender's `webhook`), delivered by render_api."""

    caller_webhook_allow_http: bool = False  # CALLER_WEBHOOK_ALLOW_HTTP: dev/tests only
    caller_webhook_allowed_networks: CommaSeparated = ()  # CALLER_WEBHOOK_ALLOWED_NETWORKS
    caller_webhook_timeout_seconds: Positive = 10.0  # CALLER_WEBHOOK_TIMEOUT_SECONDS per attempt
    caller_webhook_poll_interval_seconds: Positive = 1.0  # CALLER_WEBHOOK_POLL_INTERVAL_SECONDS
    caller_webhook_concurrency: AtLeastOne = 16  # CALLER_WEBHOOK_CONCURRENCY: sends in flight
    # CALLER_WEBHOOK_RETRY_SCHEDULE: seconds before each retry (Svix's: 5 s, 5 min, 30 min,
    # 2 h, 5 h, 10 h, 10 h: eight attempts over 27.6 hours), each +-20% jitter.
    caller_webhook_retry_schedule: CommaSeparated = (
        "5",
        "300",
        "1800",
        "7200",
        "18000",
        "36000",
        "36000",
    )
    caller_webhook_secret_grace_seconds: float = 24 * 3600.0  # default rotation grace

    @property
    def caller_webhook_delays(self) -> tuple[float, ...]:
        """CALLER_WEBHOOK_RETRY_SCHEDULE as seconds."""
        return tuple(float(delay) for delay in self.caller_webhook_retry_schedule)

    def check_caller_webhooks(self) -> None:
        """Raise ConfigError unless the schedule and the networks parse."""
        try:
            delays = self.caller_webhook_delays
        except ValueError as exc:
            raise ConfigError("CALLER_WEBHOOK_RETRY_SCHEDULE must be numbers of seconds") from exc
        if any(delay <= 0 for delay in delays):
            raise ConfigError("CALLER_WEBHOOK_RETRY_SCHEDULE must hold positive seconds")
        try:
            parse_networks(self.caller_webhook_allowed_networks)
        except ValueError as exc:
            raise ConfigError(f"CALLER_WEBHOOK_ALLOWED_NETWORKS: {exc}") from exc
