"""Connecting to the services: addresses, the bearer token, and errors as one clear line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import grpc

from render_common.tokens import TokenSettings, mint_token

# Exit codes that mean something to scripts.
EXIT_OK = 0
EXIT_RENDER_FAILED = 1  # the render ended FAILED or CANCELLED
EXIT_USAGE = 2  # bad arguments, unreadable file, bad configuration
EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
EXIT_REFUSED = 5  # quota, cost guard, not cancellable
EXIT_UNAVAILABLE = 6
EXIT_AUTH = 7
EXIT_OTHER = 8

_EXIT_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_INVALID,
    grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_REFUSED,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_REFUSED,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_AUTH,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_AUTH,
}


class ClientConfig(TokenSettings, Protocol):
    """What Endpoints reads: Settings, or the CLI's ClientSettings (no pydantic)."""

    @property
    def effective_render_api_addr(self) -> str: ...
    @property
    def effective_progress_addr(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the services listen and who the caller is."""

    render_api: str
    progress: str
    token: str

    @classmethod
    def from_env(cls, settings: ClientConfig, user: str | None = None) -> Endpoints:
        """RENDER_API_ADDR / PROGRESS_ADDR, and RENDER_TOKEN or a token minted for RENDER_USER."""
        token = os.environ.get("RENDER_TOKEN", "")
        if not token:
            name = user or os.environ.get("RENDER_USER") or os.environ.get("USER") or "demo"
            token = mint_token(settings, name)
        return cls(
            render_api=settings.effective_render_api_addr,
            progress=settings.effective_progress_addr,
            token=token,
        )

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata with the bearer token."""
        return (("authorization", f"Bearer {self.token}"),)


def describe_error(error: grpc.RpcError) -> tuple[str, int]:
    """One line naming the status, reason and message, and the exit code that goes with it."""
    from render_common.status_details import error_details  # only on errors: not on every start

    details = error_details(error)
    label = f"{details.code.name} ({details.reason})" if details.reason else details.code.name
    violations = [f"{path}: {why}" for path, why in details.field_violations.items()]
    text = "; ".join(violations) if violations else details.message
    if details.code == grpc.StatusCode.UNAVAILABLE and not details.reason:
        text = f"{text} (is the service running? try `make up`)"
    return f"{label}: {text}", _EXIT_BY_CODE.get(details.code, EXIT_OTHER)
