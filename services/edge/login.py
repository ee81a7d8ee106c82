"""Signing a browser in: a session token becomes the HttpOnly cookie, by POST only.

Login CSRF (an attacker signing a victim's browser into the attacker's session, so that
what the victim exports lands in the attacker's account) is closed like this:

- `GET /login` never sets a cookie. It shows a form; with `?token=` (the link `make up`
  prints) the form names the account ("Continue as <user>") and the user must press the
  button, so a link from someone else cannot sign anyone in silently.
- `POST /login` (form fields `token`, optional `next`) sets the cookie only when the
  request's `Origin` is this edge or one of EDGE_ALLOWED_ORIGINS: an editor's backend
  signs its user in with an auto-submitting form on its own (allowed) page; any other
  site's form is refused with 403. A missing or `null` Origin is refused too (browsers
  send Origin on every POST; `null` when the form's page has `Referrer-Policy:
  no-referrer` or `same-origin` and posts cross-site, so the editor's sign-in page must
  keep the default policy, `strict-origin-when-cross-origin`).

The cookie is HttpOnly, SameSite=Lax (sent on top-level navigations to the edge, never on
other sites' subrequests or cross-site POSTs), Path=/, Secure when the request came over
HTTPS or EDGE_COOKIE_SECURE is set, and lives no longer than the token.
"""

from __future__ import annotations

import html
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from render_common.config import Settings
from render_common.errors import PermissionDenied, RenderExportError
from services.edge.auth import SESSION_COOKIE, Authenticator
from services.edge.errors import status_of
from services.edge.sse import error_response

MAX_FORM_BYTES = 16 * 1024
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · Video export</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>Sign in to the export page</h1>
<section><form method="post" action="/login">{fields}
<input type="hidden" name="next" value="{next}">
<button type="submit" id="sign-in">{button}</button></form></section></main></body></html>
"""


def safe_next(target: str) -> str:
    """A local path to go to after signing in (anything else becomes `/`)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Login:
    """The /login and /logout handlers."""

    def __init__(self, settings: Settings, auth: Authenticator, headers: dict[str, str]) -> None:
        self.auth = auth
        self.cookie_secure = settings.edge_cookie_secure
        self.headers = headers

    async def form(self, request: Request) -> Response:
        """GET /login: the sign-in form (never signs in by itself)."""
        token = request.query_params.get("token", "")
        next_path = html.escape(safe_next(request.query_params.get("next", "/")))
        fields = (
            '<label for="token">Session token</label>'
            '<input id="token" name="token" type="password" autocomplete="off" required>'
        )
        button = "Sign in"
        if token:
            try:
                user = self.auth.session(token).user
            except RenderExportError as exc:
                fields = f'<p class="error" role="alert">{html.escape(exc.message)}</p>' + fields
            else:
                fields = (
                    f'<p>Continue as <strong id="account">{html.escape(user)}</strong>? Only if '
                    "you asked for this sign-in link.</p>"
                    f'<input type="hidden" name="token" value="{html.escape(token)}">'
                )
                button = f"Continue as {html.escape(user)}"
        page = PAGE.format(fields=fields, next=next_path, button=button)
        # A form POSTed from a no-referrer page carries `Origin: null`: this one must not.
        headers = {**self.headers, "referrer-policy": "same-origin"}
        return HTMLResponse(page, headers=headers)

    async def submit(self, request: Request) -> Response:
        """POST /login: check the Origin and the token, set the cookie, go to `next`."""
        try:
            if not self.auth.origin_allowed(request.headers):
                raise PermissionDenied(
                    "sign-in is only accepted from this site or an allowed origin",
                    reason="ORIGIN_NOT_ALLOWED",
                )
            body = await request.body()
            form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
            caller = self.auth.session(form.get("token", [""])[0])
        except RenderExportError as exc:
            return error_response(status_of(exc))
        claims = self.auth.verifier.decode(caller.token)
        target = safe_next(form.get("next", ["/"])[0])
        response = RedirectResponse(target, status_code=303, headers=self.headers)
        response.set_cookie(
            SESSION_COOKIE,
            caller.token,
            max_age=max(int(claims["exp"]) - int(time.time()), 0),
            httponly=True,
            secure=self.cookie_secure or request.url.scheme == "https",
            samesite="lax",
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """POST /logout: forget the session cookie (from this site or an allowed origin)."""
        if not self.auth.origin_allowed(request.headers):
            refused = PermissionDenied("refused origin", reason="ORIGIN_NOT_ALLOWED")
            return error_response(status_of(refused))
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
