"""gRPC as a client sees it: google.rpc error details of a failed call, health, reflection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from render_common.status_details import ErrorDetails, error_details

RichError = ErrorDetails


def rich_error(error: grpc.aio.AioRpcError) -> ErrorDetails:
    """Decode the details of a failed call."""
    return error_details(error)


async def check_health_and_reflection(channel: grpc.aio.Channel, service: str) -> None:
    """The server reports `service` SERVING on grpc.health.v1 and lists it, and Health,
    through server reflection."""
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for answer in reflection.ServerReflectionInfo(requests()):
        names = {s.name for s in answer.list_services_response.service}
        assert {service, "grpc.health.v1.Health"} <= names
