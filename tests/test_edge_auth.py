"""Auth at the edge: another user's render, bad and expired tokens, session tokens in the
cookie or ?access_token=, login CSRF (POST from an allowed Origin only), CORS.
"""

from __future__ import annotations

import time

import httpx
import jwt

from render_common.auth import mint_session_token, mint_token
from tests.support.edge_http import (
    ALLOWED,
    EdgeStack,
    SseReader,
    start_render,
)


async def test_another_users_render_is_not_found(
    stack: EdgeStack, client: httpx.AsyncClient, user: str
) -> None:
    render_id = (await start_render(stack, client, user))["renderId"]
    other = stack.headers(f"{user}-other")
    events = await client.get(f"{stack.url}/v1/renders/{render_id}/events", headers=other)
    assert events.status_code == 404
    body = events.json()
    assert body["code"] == "not_found" and body["reason"] == "RENDER_NOT_FOUND"
    assert body["details"][0]["type"] == "google.rpc.ErrorInfo"
    got = await client.post(
        f"{stack.url}/render.v1.RenderService/GetRender",
        json={"renderId": render_id},
        headers=other,
    )
    assert got.status_code == 404 and got.json()["code"] == "not_found"
    output = await client.get(f"{stack.url}/v1/renders/{render_id}/output", headers=other)
    assert output.status_code == 404
    mine = await client.get(
        f"{stack.url}/v1/renders/{render_id}/output", headers=stack.headers(user)
    )
    assert mine.status_code == 404 and mine.json()["reason"] == "NO_OUTPUT"  # not rendered yet
    bogus = await client.get(
        f"{stack.url}/v1/renders/{render_id}/bogus", headers=stack.headers(user)
    )
    assert bogus.status_code == 404 and bogus.json()["reason"] == "NO_ROUTE"
    listed = await client.post(
        f"{stack.url}/render.v1.RenderService/ListRenders", json={}, headers=other
    )
    assert listed.status_code == 200 and listed.json() == {}


async def test_bad_missing_and_expired_tokens_are_401(
    stack: EdgeStack, client: httpx.AsyncClient, user: str
) -> None:
    render_id = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    expired = jwt.encode(
        {"sub": user, "iat": int(time.time()) - 600, "exp": int(time.time()) - 300},
        stack.settings.jwt_secret,
        algorithm="HS256",
    )
    forged = mint_token(stack.settings.with_overrides(jwt_secret="x" * 40), user)
    cases = {
        "TOKEN_MISSING": {},
        "TOKEN_MALFORMED": {"authorization": "Basic abc"},
        "TOKEN_EXPIRED": {"authorization": f"Bearer {expired}"},
        "TOKEN_INVALID": {"authorization": f"Bearer {forged}"},
    }
    for reason, headers in cases.items():
        reply = await client.get(url, headers=headers)
        assert reply.status_code == 401, reason
        assert reply.json()["code"] == "unauthenticated"
        assert reply.json()["reason"] == reason
        connect = await client.post(
            f"{stack.url}/render.v1.RenderService/GetRender",
            json={"renderId": render_id},
            headers=headers,
        )
        assert connect.status_code == 401, reason
        assert connect.json()["code"] == "unauthenticated"


async def test_session_token_in_query_or_cookie_only(
    stack: EdgeStack, client: httpx.AsyncClient, user: str
) -> None:
    render_id = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    session = mint_session_token(stack.settings, user, ttl_seconds=300)
    # An ordinary token is refused outside the header; so is a long-lived session token.
    ordinary = await client.get(url, params={"access_token": stack.token(user)})
    assert ordinary.status_code == 401
    assert ordinary.json()["reason"] == "SESSION_TOKEN_REQUIRED"
    too_long = mint_session_token(stack.settings, user, ttl_seconds=24 * 3600)
    long_reply = await client.get(url, params={"access_token": too_long})
    assert long_reply.json()["reason"] == "SESSION_TOKEN_TOO_LONG"
    # A session token as ?access_token= (EventSource) and as the cookie set by /login.
    async with client.stream("GET", url, params={"access_token": session}) as response:
        assert response.status_code == 200
        assert (await SseReader(response).next()) is not None
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as browser:
        await sign_in(browser, stack.url, session)
        async with browser.stream("GET", f"/v1/renders/{render_id}/events") as response:
            assert response.status_code == 200
        whoami = await browser.get("/v1/session")
        assert whoami.json() == {"user": user}
        # Cookie-authenticated Connect calls: from this site or an allowed origin only.
        same_site = await browser.post(
            "/render.v1.RenderService/GetRender",
            json={"renderId": render_id},
            headers={"origin": stack.url},
        )
        assert same_site.status_code == 200
        foreign = await browser.post(
            "/render.v1.RenderService/GetRender",
            json={"renderId": render_id},
            headers={"origin": "https://evil.example"},
        )
        assert foreign.status_code == 401
        assert "ORIGIN_NOT_ALLOWED" in foreign.text or foreign.json()["code"] == "unauthenticated"
        no_origin = await browser.post(
            "/render.v1.RenderService/GetRender", json={"renderId": render_id}
        )
        assert no_origin.status_code == 401
    # The query parameter is for GET streams only; Connect calls need the header or cookie.
    post = await client.post(
        f"{stack.url}/render.v1.RenderService/GetRender",
        params={"access_token": session},
        json={"renderId": render_id},
    )
    assert post.status_code == 401


async def sign_in(browser: httpx.AsyncClient, origin: str, session: str) -> None:
    """POST /login as the page's form does, from this edge's own origin."""
    login = await browser.post(
        "/login", data={"token": session, "next": "/"}, headers={"origin": origin}
    )
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http here


async def test_login_needs_a_post_from_an_allowed_origin(stack: EdgeStack, user: str) -> None:
    """Login CSRF: a link or another site's form cannot sign a browser into a session."""
    attacker = mint_session_token(stack.settings, f"{user}-attacker", ttl_seconds=300)
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as browser:
        # A sign-in link only shows whose account it is and a button; no cookie.
        link = await browser.get("/login", params={"token": attacker, "next": "//evil"})
        assert link.status_code == 200 and "set-cookie" not in link.headers
        assert f"Continue as {user}-attacker" in link.text
        assert 'name="next" value="/"' in link.text  # no open redirect
        assert (await browser.get("/v1/session")).status_code == 401
        # Another site's auto-submitting form, a form with no Origin, an opaque origin.
        for headers in ({"origin": "https://evil.example"}, {}, {"origin": "null"}):
            post = await browser.post("/login", data={"token": attacker}, headers=headers)
            assert post.status_code == 403, headers
            assert post.json()["reason"] == "ORIGIN_NOT_ALLOWED"
            assert "set-cookie" not in post.headers
        assert (await browser.get("/v1/session")).status_code == 401
        # A configured origin (the editor's backend page) may sign its user in.
        allowed = await browser.post(
            "/login", data={"token": attacker}, headers={"origin": ALLOWED}
        )
        assert allowed.status_code == 303
        # Over HTTPS (here: a trusted proxy says so) the cookie is Secure.
        secure = await browser.post(
            "/login",
            data={"token": attacker},
            headers={"origin": stack.url, "x-forwarded-proto": "https"},
        )
        assert "secure" in secure.headers["set-cookie"].lower()
        # Bad tokens are refused even from this site; logout needs an allowed origin too.
        bad = await browser.post("/login", data={"token": "x"}, headers={"origin": stack.url})
        assert bad.status_code == 401
        assert (await browser.post("/logout")).status_code == 403


async def test_cors_for_configured_origins_only(
    stack: EdgeStack, client: httpx.AsyncClient, user: str
) -> None:
    preflight_headers = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,authorization",
    }
    path = f"{stack.url}/render.v1.RenderService/GetQuota"
    allowed = await client.options(path, headers={"origin": ALLOWED, **preflight_headers})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "connect-protocol-version" in allowed.headers["access-control-allow-headers"].lower()
    refused = await client.options(
        path, headers={"origin": "https://evil.example", **preflight_headers}
    )
    assert refused.status_code >= 400
    assert "access-control-allow-origin" not in refused.headers
    # Actual requests: the allowed origin may read the answer, another origin may not.
    quota = await client.post(path, json={}, headers={**stack.headers(user), "origin": ALLOWED})
    assert quota.status_code == 200
    assert quota.headers["access-control-allow-origin"] == ALLOWED
    assert quota.headers["vary"].lower().count("origin") >= 1
    other = await client.post(
        path, json={}, headers={**stack.headers(user), "origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    async with client.stream(
        "GET",
        f"{stack.url}/v1/renders/events",
        headers={**stack.headers(user), "origin": "https://evil.example"},
    ) as events:
        assert events.status_code == 200
        assert "access-control-allow-origin" not in events.headers
    async with client.stream(
        "GET", f"{stack.url}/v1/renders/events", headers={**stack.headers(user), "origin": ALLOWED}
    ) as events:
        assert events.headers["access-control-allow-origin"] == ALLOWED
