"""Bearer JWT verification and minting; the caller's user id lives in a ContextVar."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jwt

from render_common.config import Settings
from render_common.errors import Unauthenticated
from render_common.tokens import SESSION_TOKEN_TYPE as SESSION_TOKEN_TYPE
from render_common.tokens import mint_session_token as mint_session_token
from render_common.tokens import mint_token as mint_token

current_user: ContextVar[str] = ContextVar("render_export_current_user")

_MAX_SUBJECT_LENGTH = 255
_VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    """Verifies bearer tokens against the configured key, algorithms, issuer and audience."""

    key: str
    algorithms: tuple[str, ...]
    issuer: str
    audience: str
    leeway: int
    # Tokens already verified: token -> (subject, the time it stops being accepted). A
    # client reuses its token for many calls; a verified token stays valid until exp
    # (plus leeway), as key, algorithms, issuer and audience are fixed.
    _verified: dict[str, tuple[str, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """HS256 with JWT_SECRET, or the asymmetric algorithms with JWT_PUBLIC_KEY."""
        if settings.jwt_public_key:
            algorithms = tuple(a for a in settings.jwt_algorithms if not a.startswith("HS"))
            key = settings.jwt_public_key
        else:
            algorithms = tuple(a for a in settings.jwt_algorithms if a.startswith("HS"))
            key = settings.jwt_secret
        if not algorithms or any(a.lower() == "none" for a in algorithms):
            raise ValueError("JWT_ALGORITHMS names no usable algorithm for the configured key")
        return cls(
            key=key,
            algorithms=algorithms,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
        )

    def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of a bare token; raise Unauthenticated (with a reason)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=list(self.algorithms),
                issuer=self.issuer or None,
                audience=self.audience or None,
                leeway=self.leeway,
                options={"require": ["sub", "exp"], "verify_aud": bool(self.audience)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}", reason="TOKEN_INVALID") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > _MAX_SUBJECT_LENGTH:
            raise Unauthenticated(
                "token subject must be a non-empty string", reason="TOKEN_INVALID"
            )
        return claims

    def verify(self, authorization: str | None) -> str:
        """Return the user id (`sub`) of an `authorization: Bearer <jwt>` value."""
        if not authorization:
            raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "authorization must be 'Bearer <token>'", reason="TOKEN_MALFORMED"
            )
        token = token.strip()
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[1]:
                return known[0]
            self._verified.pop(token, None)
        claims = self.decode(token)
        subject = str(claims["sub"])
        # PyJWT accepts the token while int(exp) > now - leeway.
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (subject, int(claims["exp"]) + self.leeway)
        return subject
