"""Settings of the gRPC servers and their clients: addresses, ports, message size, auth."""

from __future__ import annotations

from pydantic import BaseModel

from render_common.config.base import DEV_JWT_SECRET, CommaSeparated
from render_common.config.plain import PROGRESS_PORT, RENDER_API_PORT


class AuthSection(BaseModel):
    """JWT bearer tokens every RPC carries."""

    jwt_secret: str = DEV_JWT_SECRET  # JWT_SECRET (HS256)
    jwt_public_key: str = ""  # JWT_PUBLIC_KEY: PEM, enables RS256/ES256
    jwt_algorithms: CommaSeparated = ("HS256",)  # JWT_ALGORITHMS, comma separated
    jwt_issuer: str = ""  # JWT_ISSUER: required `iss` when set
    jwt_audience: str = ""  # JWT_AUDIENCE: required `aud` when set
    jwt_leeway_seconds: int = 30  # JWT_LEEWAY_SECONDS


class ServingSection(BaseModel):
    """Where each service listens, and how it stops."""

    bind_host: str = "[::]"  # BIND_HOST
    render_api_port: int = RENDER_API_PORT  # RENDER_API_PORT (50051)
    progress_port: int = PROGRESS_PORT  # PROGRESS_PORT (50052)
    worker_health_port: int = 50053  # WORKER_HEALTH_PORT
    max_message_bytes: int = 1 << 20  # MAX_MESSAGE_BYTES: largest request accepted
    shutdown_grace_seconds: float = 10.0  # SHUTDOWN_GRACE_SECONDS
    render_api_addr: str = ""  # RENDER_API_ADDR: host:port; default 127.0.0.1:RENDER_API_PORT
    progress_addr: str = ""  # PROGRESS_ADDR: host:port; default 127.0.0.1:PROGRESS_PORT

    @property
    def effective_render_api_addr(self) -> str:
        """RENDER_API_ADDR, or render_api on this host."""
        return self.render_api_addr or f"127.0.0.1:{self.render_api_port}"

    @property
    def effective_progress_addr(self) -> str:
        """PROGRESS_ADDR, or progress on this host."""
        return self.progress_addr or f"127.0.0.1:{self.progress_port}"
