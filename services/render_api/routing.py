"""Engine choice per render: the requested engine, RENDER_MODE, or AUTO's rules."""

from __future__ import annotations

from dataclasses import dataclass

from render_common.config import Settings


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """The engine a render runs on, and why."""

    engine: str  # "ssr" or "lambda"
    reason: str


def choose_engine(
    requested: str,
    frames: int,
    ssr_backlog: int | None,
    settings: Settings,
    *,
    lambda_cost_usd: float = 0.0,
) -> EngineChoice:
    """Resolve `requested` ("" = RENDER_MODE) into "ssr" or "lambda".

    AUTO sends a render to Lambda when it is long (AUTO_LAMBDA_MIN_FRAMES or more) or when
    the SSR backlog is deeper than AUTO_MAX_SSR_QUEUE, provided Lambda is configured and
    its estimated cost is within MAX_RENDER_COST; otherwise SSR.
    """
    mode = requested or settings.render_mode
    if mode in ("ssr", "lambda"):
        source = "requested" if requested else "RENDER_MODE"
        return EngineChoice(mode, f"{mode} {source}")
    if not settings.lambda_configured:
        return EngineChoice("ssr", "auto: Lambda is not configured")
    if lambda_cost_usd > settings.max_render_cost_usd:
        return EngineChoice(
            "ssr",
            f"auto: Lambda estimate ${lambda_cost_usd:.4f} is over MAX_RENDER_COST "
            f"${settings.max_render_cost_usd:.2f}",
        )
    if frames >= settings.auto_lambda_min_frames:
        return EngineChoice(
            "lambda", f"auto: {frames} frames >= {settings.auto_lambda_min_frames} (long render)"
        )
    if ssr_backlog is not None and ssr_backlog > settings.auto_max_ssr_queue:
        return EngineChoice(
            "lambda", f"auto: SSR backlog {ssr_backlog} > {settings.auto_max_ssr_queue}"
        )
    return EngineChoice("ssr", "auto: short render and SSR queue not backed up")
