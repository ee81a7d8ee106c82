"""RenderService: the RPC handlers. They raise domain errors; the interceptor maps them."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import grpc
from opentelemetry import trace
from redis.asyncio import Redis
from render.v1 import render_service_pb2, render_service_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.auth import current_user
from render_common.config import Settings
from render_common.downloads import DownloadLinks
from render_common.errors import FailedPrecondition, InvalidArgument, NotFound
from render_common.ids import check_render_id
from render_common.renders import queries as renders
from render_common.renders import webhooks
from render_common.renders.quota import next_reset, usage_of
from render_common.renders.record import Render
from render_common.renders.states import State
from render_common.renders.transitions import Transitions
from render_common.resources import (
    ENGINE_TO_PROTO,
    STATE_FROM_PROTO,
    cost_message,
    frames_duration,
    render_message,
    secret_message,
    set_shape,
)
from services.render_api.enqueuer import Enqueuer
from services.render_api.intake import Intake
from services.render_api.paging import decode_token, encode_token
from services.render_api.routing import Router
from services.render_api.validation import RequestValidator

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
CANCEL_WAIT_SECONDS = 3.0
MAX_SECRET_GRACE = timedelta(days=7)


class RenderService(render_service_pb2_grpc.RenderServiceServicer):
    """Intake and queries of renders for the authenticated user."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        redis: Redis,
        validator: RequestValidator,
        links: DownloadLinks,
    ) -> None:
        self._settings = settings
        self._links = links  # signs download URLs as renders are read
        self._engine = engine
        self._redis = redis
        self._validator = validator
        self._transitions = Transitions(settings, engine, redis)
        self._router = Router(settings, redis)
        self._intake = Intake(
            engine,
            Enqueuer(redis, engine),
            daily_limit=settings.daily_render_limit,
            concurrent_limit=settings.concurrent_render_limit,
        )

    async def close(self) -> None:
        """Finish the intake batches in flight and their bookkeeping."""
        await self._intake.close()

    async def StartRender(
        self,
        request: render_service_pb2.StartRenderRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.StartRenderResponse:
        """Validate, check cost and quotas, persist, then enqueue (services.render_api.intake)."""
        user_id = current_user.get()
        spec = self._validator.start_request(request)
        plan = await self._router.plan(spec)
        plan.check_budget()
        admission = await self._intake.admit(
            user_id, spec, engine=plan.engine, cost_estimate=plan.cost.as_dict()
        )
        return render_service_pb2.StartRenderResponse(
            render=render_message(admission.render, self._links)
        )

    async def GetRender(
        self,
        request: render_service_pb2.GetRenderRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.GetRenderResponse:
        """One of the caller's renders."""
        row = await self._owned(request.render_id)
        return render_service_pb2.GetRenderResponse(render=render_message(row, self._links))

    async def ListRenders(
        self,
        request: render_service_pb2.ListRendersRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.ListRendersResponse:
        """A page of the caller's renders, newest first."""
        user_id = current_user.get()
        if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
            raise InvalidArgument([("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")])
        states = []
        for index, state in enumerate(request.states):
            name = STATE_FROM_PROTO.get(state)
            if name is None:
                raise InvalidArgument([(f"states[{index}]", "unknown state")])
            states.append(name)
        size = request.page_size or DEFAULT_PAGE_SIZE
        after = (
            decode_token(request.page_token, request.project_id, states)
            if request.page_token
            else None
        )
        rows = await renders.list_for_user(
            self._engine,
            user_id,
            limit=size + 1,
            project_id=request.project_id,
            states=states,
            after=after,
        )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            token = encode_token(last.created_at, last.id, request.project_id, states)
        return render_service_pb2.ListRendersResponse(
            renders=[render_message(r, self._links) for r in rows], next_page_token=token
        )

    async def CancelRender(
        self,
        request: render_service_pb2.CancelRenderRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.CancelRenderResponse:
        """Cancel a queued render now, or signal the worker running it and wait briefly."""
        row = await self._owned(request.render_id)
        if row.status == State.CANCELLED:
            return render_service_pb2.CancelRenderResponse(render=render_message(row, self._links))
        if row.terminal:
            raise FailedPrecondition(
                f"render is {row.status} and can no longer be cancelled",
                reason="RENDER_NOT_CANCELLABLE",
                subject=f"render:{row.id}",
            )
        if await self._transitions.cancel_queued(row.id) is None:
            await self._transitions.cancel_running(row.id)
        row = await self._wait_terminal(row.id)
        return render_service_pb2.CancelRenderResponse(render=render_message(row, self._links))

    async def _wait_terminal(self, render_id: str) -> Render:
        deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_SECONDS
        while True:
            row = await renders.get(self._engine, render_id)
            assert row is not None
            if row.terminal or asyncio.get_running_loop().time() > deadline:
                return row
            await asyncio.sleep(0.1)

    async def EstimateRender(
        self,
        request: render_service_pb2.EstimateRenderRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.EstimateRenderResponse:
        """Price and plan a render without starting it."""
        spec = self._validator.estimate_request(request)
        plan = await self._router.plan(spec)
        response = render_service_pb2.EstimateRenderResponse(
            frames_total=spec.frames_total,
            duration=frames_duration(spec.frames_total, spec.output.fps),
            cost=cost_message(plan.cost.as_dict()),
            engine=ENGINE_TO_PROTO[plan.engine],
            within_budget=plan.within_budget,
            max_cost_usd=plan.max_usd,
            engine_reason=plan.choice.reason,
        )
        set_shape(response, spec.output)
        return response

    async def GetQuota(
        self,
        request: render_service_pb2.GetQuotaRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.GetQuotaResponse:
        """The caller's limits and usage."""
        user_id = current_user.get()
        now = datetime.now(UTC)
        counts = await usage_of(self._engine, user_id, now)
        daily_limit = self._settings.daily_render_limit
        response = render_service_pb2.GetQuotaResponse(
            daily_limit=daily_limit,
            daily_used=counts.daily_used,
            daily_remaining=max(daily_limit - counts.daily_used, 0),
            concurrent_limit=self._settings.concurrent_render_limit,
            concurrent_active=counts.concurrent_active,
            max_cost_usd=self._settings.max_render_cost_usd,
        )
        response.reset_time.FromDatetime(next_reset(now))
        return response

    async def GetWebhookSecret(
        self,
        request: render_service_pb2.GetWebhookSecretRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.GetWebhookSecretResponse:
        """The caller's webhook signing secret (created on first use)."""
        now = datetime.now(UTC)
        found = await webhooks.signing_secret(self._engine, current_user.get(), now)
        return render_service_pb2.GetWebhookSecretResponse(secret=secret_message(found, now))

    async def RotateWebhookSecret(
        self,
        request: render_service_pb2.RotateWebhookSecretRequest,
        context: grpc.aio.ServicerContext,
    ) -> render_service_pb2.RotateWebhookSecretResponse:
        """A new signing secret; the previous one keeps signing for the grace period."""
        grace = request.grace_period.ToTimedelta()
        if grace < timedelta(0) or grace > MAX_SECRET_GRACE:
            raise InvalidArgument([("grace_period", "must be between 0 and 7 days")])
        if not grace:
            grace = timedelta(seconds=self._settings.caller_webhook_secret_grace_seconds)
        now = datetime.now(UTC)
        rotated = await webhooks.rotate_secret(self._engine, current_user.get(), grace, now)
        return render_service_pb2.RotateWebhookSecretResponse(secret=secret_message(rotated, now))

    async def _owned(self, render_id: str) -> Render:
        check_render_id(render_id)
        row = await renders.get_for_user(self._engine, render_id, current_user.get())
        if row is None:
            raise NotFound(f"render {render_id} not found", metadata={"render_id": render_id})
        return row
