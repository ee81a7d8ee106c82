"""Engine choice and price of a render: the requested engine, RENDER_MODE, or AUTO's rules.

StartRender and EstimateRender both call `Router.plan`, so an estimate says exactly where
and at what price StartRender would run the same request at that moment. AUTO, in order:

1. Lambda not configured → SSR.
2. Lambda cannot honour an option of the request (`lambda_unsupported`) → SSR.
3. A long render (AUTO_LAMBDA_MIN_FRAMES frames or more) or a deep SSR backlog (more than
   AUTO_MAX_SSR_QUEUE entries waiting in the SSR queue; running ones do not count) →
   Lambda, unless its estimate is over MAX_RENDER_COST → SSR.
4. Otherwise SSR.

The budget then applies to the chosen engine's own estimate (render_common/pricing.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from render_common import metrics, streams
from render_common.config import Settings
from render_common.errors import FailedPrecondition
from render_common.output_shape import OutputShape, lambda_limitation
from render_common.pricing import CostEstimate, Output, lambda_cost, ssr_cost
from services.render_api.validation import RenderSpec

log = logging.getLogger(__name__)

# The queue whose waiting entries are AUTO's "SSR backlog".
SSR_BACKLOG_STREAM = streams.SSR_JOBS_STREAM
SSR_BACKLOG_GROUP = streams.SSR_JOBS_GROUP

# Why Lambda cannot honour a request: each check gets the validated request's options
# (`request_options`: RenderSpec's fields by name) and returns a reason, or None when Lambda
# can. Add a check here for an option the Lambda engine does not implement.
LambdaCheck = Callable[[Mapping[str, Any]], str | None]


def _output_shape_check(options: Mapping[str, Any]) -> str | None:
    """The output shape Lambda cannot render (render_common.output_shape.lambda_limitation)."""
    shape = options.get("shape")
    return lambda_limitation(shape) or None if isinstance(shape, OutputShape) else None


LAMBDA_CHECKS: list[LambdaCheck] = [_output_shape_check]


def lambda_unsupported(options: Mapping[str, Any]) -> str | None:
    """Why the Lambda engine cannot honour these request options, or None if it can."""
    for check in LAMBDA_CHECKS:
        reason = check(options)
        if reason:
            return reason
    return None


_SPEC_FIELDS = tuple(item.name for item in fields(RenderSpec))


def request_options(spec: RenderSpec) -> dict[str, Any]:
    """A validated request as options by field name."""
    return {name: getattr(spec, name) for name in _SPEC_FIELDS}


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
    unsupported: str | None = None,
) -> EngineChoice:
    """Resolve `requested` ("" = RENDER_MODE) into "ssr" or "lambda" (the module's rules).

    `ssr_backlog` is the SSR queue's waiting entries (None: unknown, counted as shallow);
    `unsupported` why Lambda cannot honour the request (`lambda_unsupported`).
    """
    mode = requested or settings.render_mode
    if mode in ("ssr", "lambda"):
        source = "requested" if requested else "RENDER_MODE"
        return EngineChoice(mode, f"{mode} {source}")
    if not settings.lambda_configured:
        return EngineChoice("ssr", "auto: Lambda is not configured")
    if unsupported:
        return EngineChoice("ssr", f"auto: Lambda cannot render this request ({unsupported})")
    if frames >= settings.auto_lambda_min_frames:
        why = f"{frames} frames >= {settings.auto_lambda_min_frames} (long render)"
    elif ssr_backlog is not None and ssr_backlog > settings.auto_max_ssr_queue:
        why = f"SSR backlog {ssr_backlog} waiting > {settings.auto_max_ssr_queue}"
    else:
        return EngineChoice("ssr", "auto: short render and SSR queue not backed up")
    if lambda_cost_usd > settings.max_render_cost_usd:
        return EngineChoice(
            "ssr",
            f"auto: {why}, but the Lambda estimate ${lambda_cost_usd:.4f} is over "
            f"MAX_RENDER_COST ${settings.max_render_cost_usd:.2f}",
        )
    return EngineChoice("lambda", f"auto: {why}")


def needs_backlog(requested: str, frames: int, settings: Settings, unsupported: str | None) -> bool:
    """Whether AUTO's choice depends on the SSR backlog (only then is it read)."""
    mode = requested or settings.render_mode
    return (
        mode == "auto"
        and settings.lambda_configured
        and not unsupported
        and frames < settings.auto_lambda_min_frames
    )


def price(engine: str, output: Output, settings: Settings) -> CostEstimate:
    """The estimate of `output` on `engine`, on that engine's own terms."""
    if engine == "lambda":
        return lambda_cost(output)
    return ssr_cost(
        output,
        usd_per_worker_second=settings.ssr_cost_per_worker_second,
        worker_seconds_per_frame=settings.ssr_worker_seconds_per_frame,
    )


def may_run_on_lambda(mode: str, settings: Settings, unsupported: str | None) -> bool:
    """Whether the engine choice can be Lambda (only then is the Lambda price needed before
    the choice): Lambda named, or AUTO with Lambda configured and able."""
    if mode == "lambda":
        return True
    return mode == "auto" and settings.lambda_configured and not unsupported


@dataclass(frozen=True, slots=True)
class RenderPlan:
    """Where a render runs, why, and what it is estimated to cost there."""

    choice: EngineChoice
    cost: CostEstimate
    output: Output
    max_usd: float

    @property
    def engine(self) -> str:
        """ "ssr" or "lambda"."""
        return self.choice.engine

    @property
    def within_budget(self) -> bool:
        """Whether the chosen engine's estimate is within MAX_RENDER_COST."""
        return self.cost.total_usd <= self.max_usd

    def check_budget(self) -> None:
        """Refuse (RENDER_TOO_EXPENSIVE) a render whose estimate is over MAX_RENDER_COST."""
        if self.within_budget:
            return
        total = self.cost.total_usd
        raise FailedPrecondition(
            f"render too expensive: estimated ${total:.4f} on {self.engine} exceeds the "
            f"maximum of ${self.max_usd:.2f}",
            reason="RENDER_TOO_EXPENSIVE",
            subject="cost",
            metadata={
                "estimated_usd": f"{total:.6f}",
                "max_usd": f"{self.max_usd:.2f}",
                "engine": self.engine,
            },
        )


class Router:
    """Plans renders for render_api: engine, reason and price (module docstring)."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._settings = settings
        self._redis = redis

    async def plan(self, spec: RenderSpec) -> RenderPlan:
        """Where `spec` runs and at what price; FailedPrecondition when the
        engine it must run on (requested, or RENDER_MODE) cannot take it."""
        settings = self._settings
        requested = spec.requested_engine
        mode = requested or settings.render_mode
        unsupported = lambda_unsupported(request_options(spec))
        _check_lambda_possible(mode, settings, unsupported)
        output = spec.pricing  # resolved once, by validation
        on_lambda = lambda_cost(output) if may_run_on_lambda(mode, settings, unsupported) else None
        backlog = None
        if needs_backlog(requested, output.frames, settings, unsupported):
            backlog = await self.ssr_backlog()
        choice = choose_engine(
            requested,
            output.frames,
            backlog,
            settings,
            lambda_cost_usd=on_lambda.total_usd if on_lambda else 0.0,
            unsupported=unsupported,
        )
        if choice.engine == "lambda" and on_lambda is not None:
            cost = on_lambda
        else:
            cost = price(choice.engine, output, settings)
        return RenderPlan(choice, cost, output, settings.max_render_cost_usd)

    async def ssr_backlog(self) -> int | None:
        """Entries waiting in the SSR queue (not yet delivered to a worker); None if Redis
        does not answer."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xlen(SSR_BACKLOG_STREAM)
                pipe.xinfo_groups(SSR_BACKLOG_STREAM)
                length, groups = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError):
            return None
        if isinstance(length, Exception):
            return None
        running = 0
        if not isinstance(groups, Exception):
            running = sum(
                int(group.get("pending") or 0)
                for group in groups
                if _text(group.get("name")) == SSR_BACKLOG_GROUP
            )
        waiting = max(int(length) - running, 0)
        metrics.queue_depth.record(waiting)
        return waiting


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_lambda_possible(mode: str, settings: Settings, unsupported: str | None) -> None:
    """Lambda named (requested or RENDER_MODE) but not configured, or unable to honour."""
    if mode != "lambda":
        return
    if not settings.lambda_configured:
        raise FailedPrecondition(
            "the Lambda engine is not configured on this server",
            reason="LAMBDA_NOT_CONFIGURED",
            subject="engine",
        )
    if unsupported:
        raise FailedPrecondition(
            f"the Lambda engine cannot render this request: {unsupported}",
            reason="LAMBDA_UNSUPPORTED_OPTION",
            subject="engine",
        )
