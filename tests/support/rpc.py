"""Reading google.rpc error details back from a failed call, as a client would."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2


@dataclass
class RichError:
    """A failed call's code and its decoded details."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: dict[str, str] = field(default_factory=dict)
    quota_violations: list[str] = field(default_factory=list)
    precondition_types: list[str] = field(default_factory=list)


def rich_error(error: grpc.aio.AioRpcError) -> RichError:
    """Decode `grpc-status-details-bin` of a failed call."""
    result = RichError(code=error.code(), message=error.details() or "")
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                result.reason, result.domain = info.reason, info.domain
                result.metadata = dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                result.field_violations = {v.field: v.description for v in bad.field_violations}
            elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                quota = error_details_pb2.QuotaFailure()
                detail.Unpack(quota)
                result.quota_violations = [v.subject for v in quota.violations]
            elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                failure = error_details_pb2.PreconditionFailure()
                detail.Unpack(failure)
                result.precondition_types = [v.type for v in failure.violations]
    return result
