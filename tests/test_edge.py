"""The edge (its own process) in front of real render_api and progress: the Connect
protocol (connectrpc's client, raw JSON POSTs, gRPC-Web), the page and samples, session
tokens from the CLI, webhook secrets. SSE: test_edge_sse.py; auth: test_edge_auth.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, render_pb2, render_service_pb2
from render.v1.progress_service_connect import ProgressServiceClient
from render.v1.render_service_connect import RenderServiceClient

from render_common.auth import mint_session_token
from render_common.config import Settings
from tests.support.edge import EdgeProcess
from tests.support.edge_http import (
    TINY,
    EdgeStack,
    SseReader,
    cancel,
    publish,
    start_render,
)


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


async def test_sigterm_ends_open_streams_and_stops_within_the_grace(
    stack: EdgeStack, client: httpx.AsyncClient, user: str, tmp_path: Path
) -> None:
    """The edge runs under render_common.runner: SIGTERM ends its SSE streams (browsers
    resume elsewhere), it logs its stop and exits 0."""
    render_id = (await start_render(stack, client, user))["renderId"]
    env = stack.edge.env
    own = EdgeProcess(
        stack.settings,
        render_api_port=int(env["RENDER_API_ADDR"].rsplit(":", 1)[1]),
        progress_port=int(env["PROGRESS_ADDR"].rsplit(":", 1)[1]),
        log=tmp_path / "edge.log",
        SHUTDOWN_GRACE_SECONDS="5",
    )
    await asyncio.to_thread(own.start)
    try:
        url = f"{own.url}/v1/renders/{render_id}/events"
        async with client.stream("GET", url, headers=stack.headers(user)) as response:
            sse = SseReader(response)
            assert (await sse.next()) is not None  # the snapshot
            assert own.process is not None
            own.process.terminate()
            assert await sse.rest() == []  # the stream ended, cleanly
        assert await asyncio.to_thread(own.process.wait, 60) == 0
    finally:
        await asyncio.to_thread(own.stop)
    log = (tmp_path / "edge.log").read_text()
    assert "edge serving" in log and "edge stopping" in log
