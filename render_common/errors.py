"""Domain errors and their one mapping onto gRPC statuses with google.rpc details.

    RenderExportError            every error a handler may raise on purpose
    ├── InvalidArgument          INVALID_ARGUMENT   + BadRequest(field violations)
    ├── MalformedRequest         INVALID_ARGUMENT   (the bytes are not the request message)
    ├── Unauthenticated          UNAUTHENTICATED
    ├── NotFound                 NOT_FOUND          (also: someone else's render)
    ├── QuotaExceeded            RESOURCE_EXHAUSTED + QuotaFailure
    ├── FailedPrecondition       FAILED_PRECONDITION + PreconditionFailure
    ├── Unavailable              UNAVAILABLE        (a dependency is down; retry)
    ├── Aborted                  ABORTED            (e.g. a stream fell too far behind)
    └── Internal                 INTERNAL           (never carries a stack trace)

Every status also carries ErrorInfo(reason, domain "render.v1", metadata) (AIP-193).
Handlers raise; `interceptors.ServiceInterceptor` turns the exception into the status,
so no handler builds a status itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "render.v1"
# Statuses travel in gRPC metadata, which clients cap at 8 KiB (details are base64): past
# these, BadRequest lists the first violations and ErrorInfo says how many there were.
MAX_BAD_REQUEST_BYTES = 2500
MAX_SUMMARY_CHARS = 400


class RenderExportError(Exception):
    """Base of the errors that map onto a gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        """google.rpc detail messages besides ErrorInfo."""
        return []


class InvalidArgument(RenderExportError):
    """A request field is malformed; lists every violation found (field path, why)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Sequence[tuple[str, str]],
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        self.violations = list(violations)
        summary = message or "; ".join(f"{path}: {why}" for path, why in self.violations[:5])
        if len(summary) > MAX_SUMMARY_CHARS:
            summary = summary[: MAX_SUMMARY_CHARS - 3] + "..."
        listed = self._listed()
        metadata = {}
        if len(listed) < len(self.violations):
            metadata = {"violations": str(len(self.violations)), "listed": str(len(listed))}
        super().__init__(summary or "invalid request", reason=reason, metadata=metadata)

    def _listed(self) -> list[error_details_pb2.BadRequest.FieldViolation]:
        """The first violations, as many as fit the budget (gRPC metadata is small)."""
        listed: list[error_details_pb2.BadRequest.FieldViolation] = []
        size = 0
        for path, why in self.violations:
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=path[:MAX_SUMMARY_CHARS], description=why[:MAX_SUMMARY_CHARS]
            )
            size += violation.ByteSize() + 4
            if size > MAX_BAD_REQUEST_BYTES:
                break
            listed.append(violation)
        return listed

    def details(self) -> list[any_pb2.Any]:
        return [_pack(error_details_pb2.BadRequest(field_violations=self._listed()))]


class MalformedRequest(RenderExportError):
    """The request's bytes do not decode as its message (garbage, truncated, too deep, not UTF-8).

    There is no field to point at, so no BadRequest; ErrorInfo metadata names the message
    type and the problem (TOO_DEEP, INVALID_UTF8, UNDECODABLE).
    """

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "MALFORMED_REQUEST"

    def __init__(self, message_type: str, problem: str, explanation: str) -> None:
        name = message_type or "the request message"
        super().__init__(
            f"the request is not a valid {name}: {explanation}",
            metadata={"message_type": message_type, "problem": problem},
        )


class Unauthenticated(RenderExportError):
    """The bearer token is missing, malformed, expired or forged."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(RenderExportError):
    """The caller is known but this request is refused (e.g. from a foreign origin)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class NotFound(RenderExportError):
    """The resource does not exist, or belongs to another user."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = "RENDER_NOT_FOUND"


class QuotaExceeded(RenderExportError):
    """A per-user limit is reached (daily renders, concurrent renders)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "QUOTA_EXCEEDED"

    def __init__(self, message: str, *, subject: str, reason: str, limit: int) -> None:
        super().__init__(message, reason=reason, metadata={"limit": str(limit)})
        self.subject = subject

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=self.subject, description=self.message
                )
            ]
        )
        return [_pack(failure)]


class FailedPrecondition(RenderExportError):
    """The request is well-formed but the system is not in a state to honour it."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        subject: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.subject = subject

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=self.reason, subject=self.subject, description=self.message
                )
            ]
        )
        return [_pack(failure)]


class Unavailable(RenderExportError):
    """A dependency (database, Redis) is unreachable; the call may be retried."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "DEPENDENCY_UNAVAILABLE"


class Aborted(RenderExportError):
    """The call was cut short (e.g. a stream's reader fell too far behind); retry or resume."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class Internal(RenderExportError):
    """An unexpected failure; the message is generic and the cause is only logged."""

    code = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"


def to_rpc_status(error: RenderExportError) -> status_pb2.Status:
    """Build the google.rpc.Status for a domain error, ErrorInfo first."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    return status_pb2.Status(
        code=_CODES[error.code],
        message=error.message,
        details=[_pack(info), *error.details()],
    )


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
    grpc.StatusCode.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
}
