"""Every RenderService and ProgressService RPC over the Connect protocol (connectrpc, ASGI).

Each handler authenticates the caller (header or session cookie), forwards the request to
the gRPC service with the caller's token, and hands back the answer or the service's
status with its details (as a ConnectError). The stubs are generated from the same protos
(`make proto`: gen/python/render/v1/*_connect.py). connectrpc also answers gRPC-Web on
the same paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication
from render.v1 import progress_service_pb2 as ps
from render.v1 import render_service_pb2 as rs
from render.v1.progress_service_connect import ProgressServiceASGIApplication
from render.v1.render_service_connect import RenderServiceASGIApplication

from render_common.errors import RenderExportError
from services.edge.auth import Authenticator, Caller
from services.edge.errors import connect_error, status_of, status_of_rpc_error
from services.edge.upstream import Upstream

REQ = TypeVar("REQ")
RES = TypeVar("RES")


class _Forwarder:
    """Authentication and error translation shared by both services."""

    def __init__(self, upstream: Callable[[], Upstream], auth: Authenticator) -> None:
        self._upstream = upstream
        self.auth = auth

    @property
    def upstream(self) -> Upstream:
        """The edge's channels (opened when the app starts)."""
        return self._upstream()

    def caller(self, ctx: RequestContext[Any, Any]) -> Caller:
        """The authenticated caller, or a ConnectError UNAUTHENTICATED."""
        try:
            return self.auth.caller(ctx.request_headers, ctx.http_method)
        except RenderExportError as exc:
            raise connect_error(status_of(exc)) from None

    async def unary(
        self,
        method: Callable[..., Awaitable[RES]],
        request: Any,
        ctx: RequestContext[Any, Any],
    ) -> RES:
        """Forward one unary call."""
        caller = self.caller(ctx)
        try:
            return await method(request, metadata=caller.metadata, timeout=_timeout(ctx))
        except grpc.aio.AioRpcError as exc:
            raise connect_error(status_of_rpc_error(exc)) from None

    async def stream(
        self, method: Callable[..., Any], request: Any, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[Any]:
        """Forward one server stream; the upstream call ends when the client goes."""
        caller = self.caller(ctx)
        call = method(request, metadata=caller.metadata, timeout=_timeout(ctx))
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise connect_error(status_of_rpc_error(exc)) from None
        finally:
            call.cancel()


def _timeout(ctx: RequestContext[Any, Any]) -> float | None:
    remaining = ctx.timeout_ms
    return None if remaining is None else max(remaining, 1.0) / 1000.0


class RenderConnect(_Forwarder):
    """render.v1.RenderService for browsers, forwarded to render_api."""

    async def start_render(
        self, request: rs.StartRenderRequest, ctx: RequestContext[Any, Any]
    ) -> rs.StartRenderResponse:
        """StartRender."""
        return await self.unary(self.upstream.renders.StartRender, request, ctx)

    async def get_render(
        self, request: rs.GetRenderRequest, ctx: RequestContext[Any, Any]
    ) -> rs.GetRenderResponse:
        """GetRender."""
        return await self.unary(self.upstream.renders.GetRender, request, ctx)

    async def list_renders(
        self, request: rs.ListRendersRequest, ctx: RequestContext[Any, Any]
    ) -> rs.ListRendersResponse:
        """ListRenders."""
        return await self.unary(self.upstream.renders.ListRenders, request, ctx)

    async def cancel_render(
        self, request: rs.CancelRenderRequest, ctx: RequestContext[Any, Any]
    ) -> rs.CancelRenderResponse:
        """CancelRender."""
        return await self.unary(self.upstream.renders.CancelRender, request, ctx)

    async def estimate_render(
        self, request: rs.EstimateRenderRequest, ctx: RequestContext[Any, Any]
    ) -> rs.EstimateRenderResponse:
        """EstimateRender."""
        return await self.unary(self.upstream.renders.EstimateRender, request, ctx)

    async def get_quota(
        self, request: rs.GetQuotaRequest, ctx: RequestContext[Any, Any]
    ) -> rs.GetQuotaResponse:
        """GetQuota."""
        return await self.unary(self.upstream.renders.GetQuota, request, ctx)


class ProgressConnect(_Forwarder):
    """render.v1.ProgressService for browsers, forwarded to progress."""

    def watch_render(
        self, request: ps.WatchRenderRequest, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[ps.WatchRenderResponse]:
        """WatchRender."""
        return self.stream(self.upstream.progress.WatchRender, request, ctx)

    def watch_renders(
        self, request: ps.WatchRendersRequest, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[ps.WatchRendersResponse]:
        """WatchRenders."""
        return self.stream(self.upstream.progress.WatchRenders, request, ctx)


def connect_apps(
    upstream: Callable[[], Upstream], auth: Authenticator, read_max_bytes: int
) -> list[ConnectASGIApplication[Any]]:
    """The two Connect ASGI applications; mount each at its `path`."""
    return [
        RenderServiceASGIApplication(RenderConnect(upstream, auth), read_max_bytes=read_max_bytes),
        ProgressServiceASGIApplication(
            ProgressConnect(upstream, auth), read_max_bytes=read_max_bytes
        ),
    ]
