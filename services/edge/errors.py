"""One representation of a failure (google.rpc.Status), written as HTTP JSON or a ConnectError.

Failures come from the upstream services (their `grpc-status-details-bin` trailer) or from
the edge itself (a missing token: render_common's domain errors). Either way the browser
sees the same status, message and details (ErrorInfo with its reason first).
"""

from __future__ import annotations

import base64
from typing import Any

import grpc
import orjson
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from protobuf.wkt import Any as WireAny

from render_common.errors import RenderExportError, to_rpc_status
from render_common.status_details import rich_status

# The Connect protocol's codes are gRPC's, lower-cased; its HTTP statuses per code.
HTTP_STATUS: dict[int, int] = {
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
    code_pb2.UNAUTHENTICATED: 401,
}
# ErrorInfo is packed with this so the page can read the reason (google.rpc error details
# are imported above, which registers them for json_format).
_KNOWN_DETAILS = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
)


def status_of_rpc_error(error: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status of a failed upstream call (details from its trailer)."""
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    status = rich_status(error)
    if status is not None:
        return status
    return status_pb2.Status(code=code.value[0], message=message or "")


def status_of(error: RenderExportError) -> status_pb2.Status:
    """The google.rpc.Status of one of the edge's own domain errors."""
    return to_rpc_status(error)


def reason_of(status: status_pb2.Status) -> str:
    """The ErrorInfo reason of a status, or ""."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def connect_error(status: status_pb2.Status) -> ConnectError:
    """The status as a ConnectError (details passed through as they came)."""
    name = code_pb2.Code.Name(status.code) if status.code in HTTP_STATUS else "UNKNOWN"
    details = [ErrorDetail(WireAny(type_url=d.type_url, value=d.value)) for d in status.details]
    return ConnectError(Code[name], status.message, details)


def http_status(status: status_pb2.Status) -> int:
    """The HTTP status of a google.rpc code (Connect's table)."""
    return HTTP_STATUS.get(status.code, 500)


def error_body(status: status_pb2.Status) -> bytes:
    """A JSON error in the Connect protocol's shape, plus the ErrorInfo reason at the top.

    {"code": "not_found", "message": "...", "reason": "RENDER_NOT_FOUND",
     "details": [{"type": "google.rpc.ErrorInfo", "value": "<base64>", "debug": {...}}]}
    """
    name = code_pb2.Code.Name(status.code) if status.code in HTTP_STATUS else "UNKNOWN"
    details: list[dict[str, Any]] = []
    for detail in status.details:
        entry: dict[str, Any] = {
            "type": detail.type_url.rpartition("/")[2],
            "value": base64.b64encode(detail.value).decode().rstrip("="),
        }
        for kind in _KNOWN_DETAILS:
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                entry["debug"] = json_format.MessageToDict(message)
        details.append(entry)
    body: dict[str, Any] = {"code": name.lower(), "message": status.message}
    reason = reason_of(status)
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return orjson.dumps(body)
