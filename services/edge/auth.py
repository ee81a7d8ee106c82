"""Who is calling the edge, from a header, a cookie or (for GET streams) a query parameter.

- `authorization: Bearer <jwt>`: any token the services accept, on every route.
- The `edge_session` cookie (HttpOnly, set by `/login`) or `?access_token=`: only a
  browser session token (render_common.auth.SESSION_TOKEN_TYPE) that lives no longer than
  EDGE_SESSION_MAX_TTL_SECONDS. EventSource, <img> and download links cannot send headers.
  The query parameter is taken on GET routes only (it ends up in logs and history; the
  short lifetime bounds the damage); a cookie on any other method needs an `Origin` that
  is this edge or an allowed one (CSRF).

The edge checks the token to answer 401 early and to enforce those rules; the services
check it again, and they alone decide what the user may see (another user's render is
NOT_FOUND there), because the edge forwards the same token as `authorization`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from render_common.auth import SESSION_TOKEN_TYPE, TokenVerifier
from render_common.config import Settings
from render_common.errors import Unauthenticated

SESSION_COOKIE = "edge_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the user and the token to forward."""

    user: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC call metadata carrying the caller's token."""
        return (("authorization", f"Bearer {self.token}"),)


class Authenticator:
    """Resolves the caller of a request; raises Unauthenticated (401) with a reason."""

    def __init__(self, settings: Settings) -> None:
        self.verifier = TokenVerifier.from_settings(settings)
        self.max_session_ttl = settings.edge_session_max_ttl_seconds
        self.allowed_origins = frozenset(settings.edge_allowed_origins)

    def caller(
        self, headers: Mapping[str, str], method: str, query_token: str | None = None
    ) -> Caller:
        """The caller of a request with these headers (and `?access_token=` on GET)."""
        authorization = headers.get("authorization")
        if authorization:
            return Caller(self.verifier.verify(authorization), authorization.split(" ", 1)[-1])
        if query_token and method in SAFE_METHODS:
            return self.session(query_token)
        cookie = session_cookie(headers.get("cookie", ""))
        if cookie:
            if method not in SAFE_METHODS and not self.origin_allowed(headers):
                raise Unauthenticated(
                    "the session cookie is only accepted from this site or an allowed origin",
                    reason="ORIGIN_NOT_ALLOWED",
                )
            return self.session(cookie)
        raise Unauthenticated(
            "sign in: send 'authorization: Bearer <token>', or a session token as the "
            f"{SESSION_COOKIE} cookie or ?access_token=",
            reason="TOKEN_MISSING",
        )

    def session(self, token: str) -> Caller:
        """A browser session token: short-lived and marked as such."""
        claims = self.verifier.decode(token.strip())
        if claims.get("typ") != SESSION_TOKEN_TYPE:
            raise Unauthenticated(
                f"only a session token (typ {SESSION_TOKEN_TYPE}) is accepted outside the "
                "authorization header",
                reason="SESSION_TOKEN_REQUIRED",
            )
        issued = claims.get("iat")
        lifetime = int(claims["exp"]) - int(issued) if isinstance(issued, int) else None
        if lifetime is None or lifetime > self.max_session_ttl:
            raise Unauthenticated(
                f"a session token must carry iat and live at most {self.max_session_ttl} s",
                reason="SESSION_TOKEN_TOO_LONG",
            )
        return Caller(str(claims["sub"]), token.strip())

    def origin_allowed(self, headers: Mapping[str, str]) -> bool:
        """Whether a cookie-carrying unsafe request comes from this edge or an allowed origin."""
        origin = headers.get("origin", "")
        if not origin:
            return False
        if origin in self.allowed_origins:
            return True
        return urlsplit(origin).netloc == headers.get("host", "")


def session_cookie(header: str) -> str:
    """The session token in a Cookie header, or ""."""
    if SESSION_COOKIE not in header:
        return ""
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return ""
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else ""
