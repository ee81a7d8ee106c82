"""The edge (its own process) in front of real render_api and progress, over plain HTTP.

SSE with httpx (ids, kinds, Last-Event-ID resume, heartbeats, the end after the terminal
event), auth (header, session cookie, ?access_token=, bad and expired tokens, another
user's render), CORS, and the Connect protocol (connectrpc's client and raw JSON POSTs).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, render_pb2, render_service_pb2
from render.v1.progress_service_connect import ProgressServiceClient
from render.v1.render_service_connect import RenderServiceClient

from render_common.auth import mint_session_token, mint_token
from render_common.config import Settings
from render_common.events import ProgressEvent, publish_event
from services.progress import app as progress_app
from services.render_api import app as api_app
from tests.support.edge import EdgeProcess
from tests.support.processes import sqlite_url

ALLOWED = "https://editor.example"
HEARTBEAT = 0.4
TINY = {
    "projectId": "edge",
    "scenes": [{"type": "color", "durationInFrames": 30, "props": {"color": "red"}}],
    "format": "FORMAT_MP4",
    "quality": "QUALITY_LOW",
}


@dataclass
class EdgeStack:
    """render_api and progress in this process, the edge in its own."""

    settings: Settings
    edge: EdgeProcess

    @property
    def url(self) -> str:
        """The edge's base URL."""
        return self.edge.url

    def token(self, user: str) -> str:
        """An ordinary bearer token."""
        return mint_token(self.settings, user)

    def headers(self, user: str) -> dict[str, str]:
        """Request headers carrying a user's bearer token."""
        return {"authorization": f"Bearer {self.token(user)}"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EdgeStack]:
    """render_api + progress on SQLite, and the edge with a short heartbeat."""
    directory = tmp_path_factory.mktemp("edge")
    settings = base_settings.with_overrides(database_url=sqlite_url(directory))
    api = await api_app.start(settings, port=0, run_sweeper=False)
    progress = await progress_app.start(settings, port=0)
    edge = EdgeProcess(
        settings,
        render_api_port=api.port,
        progress_port=progress.port,
        log=directory / "edge.log",
        EDGE_HEARTBEAT_SECONDS=str(HEARTBEAT),
        EDGE_ALLOWED_ORIGINS=ALLOWED,
        EDGE_SESSION_MAX_TTL_SECONDS="600",
    )
    await asyncio.to_thread(edge.start)
    yield EdgeStack(settings, edge)
    await asyncio.to_thread(edge.stop)
    await progress.stop(0)
    await api.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def start_render(stack: EdgeStack, http: httpx.AsyncClient, user: str) -> dict[str, Any]:
    """StartRender over Connect with a raw JSON POST; returns the render as JSON."""
    reply = await http.post(
        f"{stack.url}/render.v1.RenderService/StartRender",
        json=TINY,
        headers={**stack.headers(user), "connect-protocol-version": "1"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    render: dict[str, Any] = reply.json()["render"]
    assert render["state"] == "STATE_QUEUED"
    return render


async def publish(redis: Redis, render_id: str, user: str, progress: float) -> str:
    """One running event as the worker writes it; returns its id."""
    return await publish_event(
        redis,
        ProgressEvent(
            render_id=render_id,
            state="running",
            stage="rendering",
            progress=progress,
            frames_rendered=round(progress * 30),
            frames_total=30,
        ),
        user_id=user,
    )


@dataclass
class Message:
    """One SSE message."""

    id: str | None
    event: str
    data: dict[str, Any]


class SseReader:
    """Parses a text/event-stream response line by line (comments kept apart)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments: list[str] = []
        self.retry: str | None = None

    async def next(self, timeout: float = 10.0) -> Message | None:
        """The next message, or None when the stream ends."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line == "":
                    if "data" in fields:
                        return Message(
                            fields.get("id"),
                            fields.get("event", "message"),
                            json.loads(fields["data"]),
                        )
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "retry":
                    self.retry = value
                else:
                    fields[name] = value
        return None

    async def rest(self) -> list[Message]:
        """Every message until the stream ends."""
        messages = []
        while (message := await self.next()) is not None:
            messages.append(message)
        return messages


async def cancel(stack: EdgeStack, http: httpx.AsyncClient, user: str, render_id: str) -> None:
    """CancelRender over Connect (a queued render is cancelled at once: the terminal event)."""
    reply = await http.post(
        f"{stack.url}/render.v1.RenderService/CancelRender",
        json={"renderId": render_id},
        headers=stack.headers(user),
    )
    assert reply.status_code == 200, reply.text


# --- SSE ----------------------------------------------------------------------------


async def test_sse_streams_events_with_ids_kinds_and_ends_after_the_terminal_event(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str
) -> None:
    render = await start_render(stack, client, user)
    render_id = render["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    async with client.stream("GET", url, headers=stack.headers(user)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"].startswith("no-cache")
        sse = SseReader(response)
        snapshot = await sse.next()
        assert snapshot is not None and snapshot.event == "snapshot"
        assert snapshot.data["renderId"] == render_id
        assert snapshot.data["state"] == "STATE_QUEUED"
        assert sse.retry is not None
        ids = [await publish(redis, render_id, user, p) for p in (0.25, 0.5)]
        first, second = await sse.next(), await sse.next()
        assert first is not None and second is not None
        assert [first.id, second.id] == ids
        assert [first.event, second.event] == ["event", "event"]
        assert first.data["progress"] == 0.25 and first.data["framesRendered"] == "8"
        assert first.data["stage"] == "STAGE_RENDERING"
        await cancel(stack, client, user, render_id)
        rest = await sse.rest()
    assert [m.data["state"] for m in rest] == ["STATE_CANCELLED"]
    assert rest[0].id and rest[0].id > ids[-1]
    assert rest[0].data["render"]["renderId"] == render_id


async def test_streams_of_one_render_share_the_upstream_and_a_late_one_misses_nothing(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str
) -> None:
    """A second stream joins the first's upstream: it gets the snapshot and every event
    since, then the same live events; another user's stream is still refused."""
    render_id = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    async with client.stream("GET", url, headers=stack.headers(user)) as first_response:
        first = SseReader(first_response)
        snapshot = await first.next()
        assert snapshot is not None and snapshot.event == "snapshot"
        early = [await publish(redis, render_id, user, p) for p in (0.1, 0.2)]
        assert [(await first.next() or snapshot).id for _ in early] == early
        async with client.stream("GET", url, headers=stack.headers(user)) as second_response:
            second = SseReader(second_response)
            joined = [await second.next() for _ in range(3)]
            assert [m.event for m in joined if m] == ["snapshot", "event", "event"]
            assert [m.id for m in joined[1:] if m] == early
            assert joined[0] is not None and joined[0].data == snapshot.data
            other = await client.get(url, headers=stack.headers(f"{user}-other"))
            assert other.status_code == 404
            live = await publish(redis, render_id, user, 0.3)
            assert (await first.next() or snapshot).id == live
            assert (await second.next() or snapshot).id == live
            await cancel(stack, client, user, render_id)
            ends = [await first.rest(), await second.rest()]
    assert [[m.data["state"] for m in end] for end in ends] == [["STATE_CANCELLED"]] * 2
    assert ends[0][0].id == ends[1][0].id


@pytest.mark.parametrize("how", ["header", "query"])
async def test_last_event_id_resumes_exactly_after_the_event(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str, how: str
) -> None:
    render_id = (await start_render(stack, client, user))["renderId"]
    ids = [await publish(redis, render_id, user, p / 10) for p in range(1, 7)]
    headers = stack.headers(user)
    url = f"{stack.url}/v1/renders/{render_id}/events"
    if how == "header":
        headers["last-event-id"] = ids[2]
    else:
        url += f"?after_event_id={ids[2]}"
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        sse = SseReader(response)
        replayed = [await sse.next() for _ in ids[3:]]
        assert [m.id for m in replayed if m] == ids[3:]
        assert {m.event for m in replayed if m} == {"event"}
        await cancel(stack, client, user, render_id)
        rest = await sse.rest()
    assert [m.data["state"] for m in rest] == ["STATE_CANCELLED"]
    # Reconnecting after the terminal event: 204, so EventSource stops reconnecting.
    headers["last-event-id"] = str(rest[0].id)
    again = await client.get(f"{stack.url}/v1/renders/{render_id}/events", headers=headers)
    assert again.status_code == 204


async def test_heartbeat_comments_keep_an_idle_stream_open(
    stack: EdgeStack, client: httpx.AsyncClient, user: str
) -> None:
    render_id = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/{render_id}/events"
    async with client.stream("GET", url, headers=stack.headers(user)) as response:
        sse = SseReader(response)
        assert (await sse.next()) is not None  # the snapshot
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await sse.next(timeout=HEARTBEAT * 4)
        elapsed = time.monotonic() - started
    assert sse.comments and all(c == ": heartbeat" for c in sse.comments)
    # One comment per idle interval (give or take scheduling), not a burst.
    assert 2 <= len(sse.comments) <= elapsed / HEARTBEAT + 1


async def test_watch_renders_streams_the_users_renders_and_resumes(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str
) -> None:
    first = (await start_render(stack, client, user))["renderId"]
    second = (await start_render(stack, client, user))["renderId"]
    url = f"{stack.url}/v1/renders/events?include_active=false"
    async with client.stream("GET", url, headers=stack.headers(user)) as response:
        assert response.status_code == 200
        sse = SseReader(response)
        ids = [
            await publish(redis, first, user, 0.1),
            await publish(redis, second, user, 0.2),
            await publish(redis, first, user, 0.3),
        ]
        got = [await sse.next() for _ in ids]
    assert [(m.id, m.data["renderId"]) for m in got if m] == list(
        zip(ids, [first, second, first], strict=True)
    )
    headers = {**stack.headers(user), "last-event-id": ids[0]}
    async with client.stream("GET", url, headers=headers) as response:
        sse = SseReader(response)
        resumed = [await sse.next(), await sse.next()]
    assert [m.id for m in resumed if m] == ids[1:]


# --- auth ---------------------------------------------------------------------------


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


# --- Connect ------------------------------------------------------------------------


async def test_connect_client_starts_gets_lists_and_watches(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str
) -> None:
    headers = stack.headers(user)
    scenes = [render_pb2.Scene(type="color", duration_in_frames=30)]
    scenes[0].props.update({"color": "blue"})
    async with RenderServiceClient(stack.url) as renders:
        started = await renders.start_render(
            render_service_pb2.StartRenderRequest(
                project_id="edge",
                scenes=scenes,
                format=render_pb2.FORMAT_WEBM,
                quality=render_pb2.QUALITY_LOW,
            ),
            headers=headers,
        )
        render_id = started.render.render_id
        assert started.render.user_id == user
        got = await renders.get_render(
            render_service_pb2.GetRenderRequest(render_id=render_id), headers=headers
        )
        assert got.render.format == render_pb2.FORMAT_WEBM
        listed = await renders.list_renders(
            render_service_pb2.ListRendersRequest(page_size=10), headers=headers
        )
        assert render_id in [r.render_id for r in listed.renders]
        with pytest.raises(ConnectError) as missing:
            await renders.get_render(
                render_service_pb2.GetRenderRequest(render_id=render_id),
                headers=stack.headers(f"{user}-other"),
            )
        assert missing.value.code == Code.NOT_FOUND
        assert missing.value.details[0].type_name == "google.rpc.ErrorInfo"
    async with ProgressServiceClient(stack.url) as progress:
        stream = progress.watch_render(
            progress_service_pb2.WatchRenderRequest(render_id=render_id), headers=headers
        )
        seen = []
        async for response in stream:
            seen.append(response.event)
            if len(seen) == 1:
                assert response.event.kind == progress_service_pb2.RenderEvent.KIND_SNAPSHOT
                await publish(redis, render_id, user, 0.5)
            elif len(seen) == 2:
                assert response.event.progress == 0.5
                await cancel(stack, client, user, render_id)
    assert seen[-1].state == render_pb2.Render.STATE_CANCELLED


async def test_connect_errors_carry_details(
    stack: EdgeStack, client: httpx.AsyncClient, user: str
) -> None:
    reply = await client.post(
        f"{stack.url}/render.v1.RenderService/StartRender",
        json={**TINY, "scenes": [{"type": "nope", "durationInFrames": 0}]},
        headers=stack.headers(user),
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == "invalid_argument"
    assert {d["type"] for d in body["details"]} >= {"google.rpc.ErrorInfo", "google.rpc.BadRequest"}


async def test_page_and_samples_are_served(stack: EdgeStack, client: httpx.AsyncClient) -> None:
    page = await client.get(f"{stack.url}/")
    assert page.status_code == 200 and "<title>Export video</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert (await client.get(f"{stack.url}/static/app.js")).status_code == 200
    samples = (await client.get(f"{stack.url}/samples")).json()
    assert "tiny.json" in samples
    tiny = (await client.get(f"{stack.url}/samples/tiny.json")).json()
    assert tiny["scenes"]
    assert (await client.get(f"{stack.url}/samples/..%2Fpackage.json")).status_code == 404


def test_session_tokens_are_marked_and_short(base_settings: Settings) -> None:
    claims = jwt.decode(
        mint_session_token(base_settings, "alice"),
        base_settings.jwt_secret,
        algorithms=["HS256"],
    )
    assert claims["typ"] == "edge-session" and claims["exp"] - claims["iat"] == 900


@pytest.mark.parametrize("codec", ["proto", "json"])
async def test_grpc_web_clients_are_served_too(
    stack: EdgeStack, client: httpx.AsyncClient, redis: Redis, user: str, codec: str
) -> None:
    """connectrpc answers gRPC-Web on the same paths (what @improbable-eng/grpc-web sends)."""
    chosen = google_protobuf_binary_codec() if codec == "proto" else google_protobuf_json_codec()
    headers = stack.headers(user)
    render_id = (await start_render(stack, client, user))["renderId"]
    async with RenderServiceClient(
        stack.url, protocol=ProtocolType.GRPC_WEB, codec=chosen
    ) as renders:
        got = await renders.get_render(
            render_service_pb2.GetRenderRequest(render_id=render_id), headers=headers
        )
        assert got.render.render_id == render_id
        with pytest.raises(ConnectError) as refused:
            await renders.get_quota(render_service_pb2.GetQuotaRequest())
        assert refused.value.code == Code.UNAUTHENTICATED
    async with ProgressServiceClient(
        stack.url, protocol=ProtocolType.GRPC_WEB, codec=chosen
    ) as progress:
        kinds = []
        async for response in progress.watch_render(
            progress_service_pb2.WatchRenderRequest(render_id=render_id), headers=headers
        ):
            kinds.append(response.event.kind)
            if len(kinds) == 1:
                await cancel(stack, client, user, render_id)
    assert kinds[0] == progress_service_pb2.RenderEvent.KIND_SNAPSHOT
    assert len(kinds) == 2


def test_cli_mints_session_tokens(base_settings: Settings) -> None:
    """`render token USER --session`: what `make up` prints in the page link."""
    env = {**os.environ, "JWT_SECRET": base_settings.jwt_secret}
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "token", "bob", "--session", "--ttl", "120"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    claims = jwt.decode(out, base_settings.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == "bob" and claims["typ"] == "edge-session"
    assert claims["exp"] - claims["iat"] == 120


async def test_connect_client_reads_and_rotates_the_webhook_secret(
    stack: EdgeStack, user: str
) -> None:
    headers = stack.headers(user)
    async with RenderServiceClient(stack.url) as renders:
        first = await renders.get_webhook_secret(
            render_service_pb2.GetWebhookSecretRequest(), headers=headers
        )
        assert first.secret.secret.startswith("whsec_")
        rotated = await renders.rotate_webhook_secret(
            render_service_pb2.RotateWebhookSecretRequest(), headers=headers
        )
        assert rotated.secret.previous_secret == first.secret.secret
        assert rotated.secret.secret != first.secret.secret
