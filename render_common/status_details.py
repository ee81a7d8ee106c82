"""Reading google.rpc error details back from a failed call (the client side of errors.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)


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


def rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a failed call carried (`grpc_status.rpc_status.from_call`).

    None when the call carried none, or when it disagrees with the call's own code and
    message (then the call's code and message are the truth; the mismatch is logged).
    """
    if not hasattr(error, "trailing_metadata"):
        return None  # raised before any call was made
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)
    except ValueError as exc:
        log.warning("ignoring inconsistent status details", extra={"error": str(exc)})
        return None
    return status


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """The code, message and google.rpc details (ErrorInfo, BadRequest, ...) of a failed call."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    result = ErrorDetails(code=code, message=message or "")
    status = rich_status(error)
    for detail in status.details if status is not None else ():
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
