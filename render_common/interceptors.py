"""Server interceptors: tolerant decoding, authentication, and the one mapping of exceptions
onto statuses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from render_common.auth import TokenVerifier, current_user
from render_common.decoding import Undecodable, tolerant
from render_common.errors import (
    Internal,
    MalformedRequest,
    RenderExportError,
    Unavailable,
    to_rpc_status,
)

log = logging.getLogger(__name__)

# Infrastructure services anyone may call: probes and tooling.
PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

Around = Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]


def _map_foreign(exc: BaseException) -> RenderExportError:
    """Turn a dependency's exception into a domain error (the one boundary for them)."""
    if isinstance(exc, RenderExportError):
        return exc
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return Unavailable("Redis is unavailable; retry", reason="REDIS_UNAVAILABLE")
    if _database_unavailable(exc):
        return Unavailable("the database is unavailable; retry", reason="DATABASE_UNAVAILABLE")
    return Internal("internal error")


# SQLSTATE classes meaning "not now": connection exception, insufficient resources
# (too many connections), operator intervention (statement_timeout's query_canceled,
# admin shutdown, cannot connect now).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def _database_unavailable(exc: BaseException) -> bool:
    """Whether a database exception means the database is unreachable, stalled or busy.

    Timeouts included: a client-side statement or connect timeout (TimeoutError, an
    OSError), no pooled connection free within DB_POOL_TIMEOUT_SECONDS, and the server's
    statement_timeout.
    """
    unreachable = sa_errors.OperationalError | sa_errors.InterfaceError | sa_errors.TimeoutError
    if isinstance(exc, unreachable | OSError):
        return True
    if isinstance(exc, sa_errors.DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
        return exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
    return False


async def abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """Abort the call with the status of `exc` (logged when unexpected)."""
    error = _map_foreign(exc)
    if isinstance(error, Internal) and error is not exc:
        log.error("unhandled error", exc_info=exc)
    await context.abort_with_status(rpc_status.to_status(to_rpc_status(error)))


def _refuse_undecodable(request: Any, method: str) -> None:
    """Raise MalformedRequest, logged as one WARNING line, when the request did not decode.

    This runs before authentication, as grpc's own checks of the bytes (size) do: the
    answer depends only on the bytes the caller sent, nothing reaches a handler, and the
    caller (token or not) learns nothing it did not send.
    """
    if isinstance(request, Undecodable):
        log.warning(
            "malformed request to %s (%s)",
            method,
            request.problem,
            extra={
                "method": method,
                "problem": request.problem,
                "request_bytes": request.size,
                "decode_error": request.error,
            },
        )
        raise MalformedRequest(request.message_type, request.problem, request.explanation)


def _wrap(
    handler: grpc.RpcMethodHandler,
    before: Around | None,
    method: str,
) -> grpc.RpcMethodHandler:
    """A handler decoding tolerantly, refusing undecodable requests, running `before` then
    the behaviour, and mapping every exception to a status."""

    async def admit(request: Any, context: grpc.aio.ServicerContext) -> None:
        _refuse_undecodable(request, method)
        if before is not None:
            await before(request, context)

    codec = {
        "request_deserializer": tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        inner = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                await admit(request, context)
                return await inner(request, context)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as exc:
                await abort_with(context, exc)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def unary_stream(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            try:
                await admit(request, context)
                async for response in inner_stream(request, context):
                    yield response
            except (asyncio.CancelledError, grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception as exc:
                await abort_with(context, exc)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codec)
    return handler


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every non-public RPC and maps every exception onto a rich status."""

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self._verifier = verifier
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    async def _authenticate(self, _request: Any, context: grpc.aio.ServicerContext) -> None:
        assert self._verifier is not None
        authorization = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode()
                break
        current_user.set(self._verifier.verify(authorization))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if method.startswith(PUBLIC_PREFIXES):
            return await continuation(handler_call_details)
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        wrapped = _wrap(handler, self._authenticate if self._verifier else None, method)
        self._cache[method] = wrapped
        return wrapped
