"""Every RenderService and ProgressService RPC over the Connect protocol (connectrpc, ASGI).

The Connect applications are generated from the protos (`make proto`:
gen/python/render/v1/*_connect.py); they call one method per RPC on a servicer. The edge's
servicer is built from the service descriptor, so every RPC of the contract, including
ones added later, is forwarded without code here: authenticate the caller (header or
session cookie), call the gRPC method of the same name with the caller's token, hand
back the answer or the service's status with its details (as a ConnectError).
connectrpc also answers gRPC-Web on the same paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from render.v1 import progress_service_pb2, render_service_pb2
from render.v1.progress_service_connect import ProgressServiceASGIApplication
from render.v1.render_service_connect import RenderServiceASGIApplication

from render_common.errors import RenderExportError
from services.edge.auth import Authenticator, Caller
from services.edge.errors import connect_error, status_of, status_of_rpc_error
from services.edge.upstream import Upstream

Handler = Callable[[Any, RequestContext[Any, Any]], Any]


class ForwardingServicer:
    """A Connect servicer whose every method forwards the RPC of the same name over gRPC.

    The generated application looks its handlers up by the Python name of each RPC
    (`start_render` for StartRender); they are made here from the service descriptor.
    """

    def __init__(
        self,
        service: ServiceDescriptor,
        stub: Callable[[], Any],
        auth: Authenticator,
    ) -> None:
        self._stub = stub
        self._auth = auth
        self._methods = {_key(m.name): m for m in service.methods}

    def __getattr__(self, name: str) -> Handler:
        method = self._methods.get(_key(name))
        if method is None:
            raise AttributeError(name)
        if method.client_streaming:
            return self._unimplemented
        if method.server_streaming:
            return lambda request, ctx: self._stream(method, request, ctx)
        return lambda request, ctx: self._unary(method, request, ctx)

    def _caller(self, ctx: RequestContext[Any, Any]) -> Caller:
        """The authenticated caller, or a ConnectError UNAUTHENTICATED."""
        try:
            return self._auth.caller(ctx.request_headers, ctx.http_method)
        except RenderExportError as exc:
            raise connect_error(status_of(exc)) from None

    async def _unary(
        self, method: MethodDescriptor, request: Any, ctx: RequestContext[Any, Any]
    ) -> Any:
        caller = self._caller(ctx)
        call = getattr(self._stub(), method.name)
        try:
            return await call(request, metadata=caller.metadata, timeout=_timeout(ctx))
        except grpc.aio.AioRpcError as exc:
            raise connect_error(status_of_rpc_error(exc)) from None

    async def _stream(
        self, method: MethodDescriptor, request: Any, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[Any]:
        caller = self._caller(ctx)
        call = getattr(self._stub(), method.name)(
            request, metadata=caller.metadata, timeout=_timeout(ctx)
        )
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise connect_error(status_of_rpc_error(exc)) from None
        finally:
            call.cancel()  # the client went away: end the upstream call too

    async def _unimplemented(self, _: Any, __: RequestContext[Any, Any]) -> Any:
        raise ConnectError(Code.UNIMPLEMENTED, "client streams are not forwarded by the edge")


def _key(name: str) -> str:
    """StartRender and start_render alike: lower case without underscores."""
    return name.replace("_", "").lower()


def _timeout(ctx: RequestContext[Any, Any]) -> float | None:
    remaining = ctx.timeout_ms
    return None if remaining is None else max(remaining, 1.0) / 1000.0


def connect_apps(
    upstream: Callable[[], Upstream], auth: Authenticator, read_max_bytes: int
) -> list[ConnectASGIApplication[Any]]:
    """The Connect applications of both services; mount each at its `path`."""
    renders = ForwardingServicer(
        render_service_pb2.DESCRIPTOR.services_by_name["RenderService"],
        lambda: upstream().renders,
        auth,
    )
    progress = ForwardingServicer(
        progress_service_pb2.DESCRIPTOR.services_by_name["ProgressService"],
        lambda: upstream().progress,
        auth,
    )
    return [
        RenderServiceASGIApplication(cast(Any, renders), read_max_bytes=read_max_bytes),
        ProgressServiceASGIApplication(cast(Any, progress), read_max_bytes=read_max_bytes),
    ]
