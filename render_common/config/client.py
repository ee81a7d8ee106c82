"""The few settings a client of the services reads (the `render` CLI), without pydantic.

Importing pydantic-settings costs about 0.5 s of CPU, more than the rest of the CLI's start;
the CLI needs only the addresses and the JWT settings to mint a local token. The variables,
their defaults (plain.py, shared with the services' Settings) and their meaning are those of
README "Configuration"; an empty variable counts as unset, as for the services.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from render_common.config.plain import (
    DEV_JWT_SECRET,
    PROGRESS_PORT,
    RENDER_API_PORT,
    ConfigError,
)


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or ""
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid int") from None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where render_api and progress listen, and the JWT settings a minted token follows."""

    effective_render_api_addr: str
    effective_progress_addr: str
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = ""
    jwt_audience: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        """RENDER_API_ADDR (default 127.0.0.1:RENDER_API_PORT), PROGRESS_ADDR (default
        127.0.0.1:PROGRESS_PORT), JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE; ConfigError on a bad
        port."""
        env = os.environ if environ is None else environ
        render_api = env.get("RENDER_API_ADDR") or (
            f"127.0.0.1:{_port(env, 'RENDER_API_PORT', RENDER_API_PORT)}"
        )
        progress = env.get("PROGRESS_ADDR") or (
            f"127.0.0.1:{_port(env, 'PROGRESS_PORT', PROGRESS_PORT)}"
        )
        return cls(
            effective_render_api_addr=render_api,
            effective_progress_addr=progress,
            jwt_secret=env.get("JWT_SECRET") or DEV_JWT_SECRET,
            jwt_issuer=env.get("JWT_ISSUER") or "",
            jwt_audience=env.get("JWT_AUDIENCE") or "",
        )
