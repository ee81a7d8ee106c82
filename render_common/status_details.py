"""Reading google.rpc error details back from a failed call (the client side of errors.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass
class ErrorDetails:
    """A failed call's code, message and decoded google.rpc details."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: dict[str, str] = field(default_factory=dict)
    quota_violations: list[str] = field(default_factory=list)
    precondition_types: list[str] = field(default_factory=list)


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """Decode `grpc-status-details-bin` of a failed call (ErrorInfo, BadRequest, ...)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    result = ErrorDetails(code=code, message=message or "")
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != STATUS_DETAILS_KEY:
            continue
        for detail in status_pb2.Status.FromString(value).details:
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
