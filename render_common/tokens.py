"""Minting HS256 bearer tokens with the standard library alone.

The `render` CLI mints a token on every command; PyJWT imports `cryptography` (about
0.7 s of CPU at start-up) for algorithms HS256 does not use. Verification stays with
PyJWT (render_common/auth.py), which accepts these tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Protocol


class TokenSettings(Protocol):
    """The JWT settings a minted token follows (Settings, or the CLI's ClientSettings)."""

    @property
    def jwt_secret(self) -> str: ...
    @property
    def jwt_issuer(self) -> str: ...
    @property
    def jwt_audience(self) -> str: ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(
    settings: TokenSettings,
    user_id: str,
    *,
    ttl_seconds: int = 24 * 3600,
    token_type: str = "",
) -> str:
    """A HS256 token for `user_id` that the running config accepts (development tool)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if token_type:
        claims["typ"] = token_type
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(settings.jwt_secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


# A browser session token: what an editor's backend mints from its own session for the
# edge (services/edge), where EventSource cannot send headers. It is an ordinary token of
# the user (the services accept it like any other), short-lived, and marked with this
# `typ` claim; the edge takes a token from a cookie or a query parameter only when it
# carries this mark and lives no longer than EDGE_SESSION_MAX_TTL_SECONDS.
SESSION_TOKEN_TYPE = "edge-session"


def mint_session_token(settings: TokenSettings, user_id: str, *, ttl_seconds: int = 900) -> str:
    """A short-lived browser session token for `user_id` (HS256 with JWT_SECRET)."""
    return mint_token(settings, user_id, ttl_seconds=ttl_seconds, token_type=SESSION_TOKEN_TYPE)
