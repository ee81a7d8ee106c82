"""The Remotion webhook endpoint answers over IPv4 and IPv6, as BIND_HOST says.

Real HTTP over 127.0.0.1 and ::1 to the real endpoint (aiohttp), with a real SQLite
database and Redis: `GET /healthz` and a signed `POST /webhooks/remotion` that is
accepted and parked in Redis. The default BIND_HOST `[::]` must take both families
(asyncio alone binds `::` IPv6-only, which IPv4 pod networks cannot reach); an explicit
host is honoured.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.db.engine import create_engine
from render_common.listen import dual_stack_socket, is_any_address
from render_common.redis_client import create_redis
from services.render_worker.webhook import PATH, WebhookServer, start_webhook_server
from tests.support.fake_lambda import calculate_signature, js_stringify
from tests.support.lambda_env import WEBHOOK_SECRET
from tests.support.processes import sqlite_url
from tests.support.render_rows import insert_render
from tests.test_deploy import DEPLOY, by_kind

IPV4 = "127.0.0.1"
CONFIG = "render-export-config"
IPV6 = "::1"


def _loopback_v6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind((IPV6, 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _loopback_v6_available(), reason="no IPv6 loopback")

StartWebhook = Callable[[str], Awaitable[WebhookServer]]


@pytest_asyncio.fixture
async def database(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite database of this test's own."""
    engine = create_engine(sqlite_url(tmp_path))  # sqlite_url runs the migrate command
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def start_webhook(
    base_settings: Settings, database: AsyncEngine, redis_url: str
) -> AsyncIterator[StartWebhook]:
    """Start the webhook endpoint on a free port with a given BIND_HOST."""
    servers: list[WebhookServer] = []
    client = create_redis(redis_url)

    async def _start(bind_host: str) -> WebhookServer:
        settings = base_settings.with_overrides(bind_host=bind_host, webhook_secret=WEBHOOK_SECRET)
        server = await start_webhook_server(settings, database, client, port=0)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        await server.stop()
    await client.aclose()


def url(host: str, port: int, path: str) -> str:
    """http URL of `path` on `host` (an IPv4 or IPv6 literal)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


async def signed_post(
    client: httpx.AsyncClient, host: str, port: int, render_id: str, lambda_render_id: str
) -> httpx.Response:
    """POST a success webhook for the render, signed as Remotion signs it."""
    body = js_stringify(
        {
            "type": "success",
            "renderId": lambda_render_id,
            "bucketName": "remotionlambda-test",
            "customData": {"renderId": render_id, "attempt": 1},
            "outputUrl": "https://example.com/out.mp4",
        }
    )
    return await client.post(
        url(host, port, PATH),
        content=body.encode(),
        headers={
            "Content-Type": "application/json",
            "X-Remotion-Status": "success",
            "X-Remotion-Signature": calculate_signature(body, WEBHOOK_SECRET),
        },
    )


async def reachable(client: httpx.AsyncClient, host: str, port: int) -> bool:
    """Whether GET /healthz on host:port answers 200 (False when refused)."""
    try:
        response = await client.get(url(host, port, "/healthz"))
    except httpx.ConnectError:
        return False
    assert response.json() == {"status": "ok"}
    return response.status_code == 200


@needs_ipv6
@pytest.mark.parametrize("bind_host", ["[::]", "::", ""])
async def test_any_address_answers_on_ipv4_and_ipv6(
    bind_host: str,
    start_webhook: StartWebhook,
    database: AsyncEngine,
    redis: Redis,
    user: str,
) -> None:
    server = await start_webhook(bind_host)
    async with httpx.AsyncClient(timeout=10) as client:
        for host in (IPV4, IPV6):
            assert await reachable(client, host, server.port), f"{host} refused"
            lambda_render_id = f"lr-{uuid.uuid4().hex[:12]}"
            render_id = await insert_render(
                database,
                user,
                status="running",
                stage="rendering",
                lambda_render_id=lambda_render_id,
            )
            accepted = await signed_post(client, host, server.port, render_id, lambda_render_id)
            assert accepted.status_code == 200, f"{host}: {accepted.text}"
            assert accepted.json() == {"accepted": True, "render_id": render_id}
            parked = await redis.lrange(streams.lambda_webhook(lambda_render_id), 0, -1)
            assert [json.loads(p)["customData"]["renderId"] for p in parked] == [render_id]
            forged = await client.post(
                url(host, server.port, PATH),
                content=b"{}",
                headers={"X-Remotion-Signature": "sha512=00", "X-Remotion-Status": "success"},
            )
            assert forged.status_code == 401, host


@needs_ipv6
@pytest.mark.parametrize(
    ("bind_host", "answers", "refuses"),
    [("0.0.0.0", IPV4, IPV6), (IPV4, IPV4, IPV6), ("[::1]", IPV6, IPV4), (IPV6, IPV6, IPV4)],
)
async def test_an_explicit_host_is_honoured(
    bind_host: str, answers: str, refuses: str, start_webhook: StartWebhook
) -> None:
    server = await start_webhook(bind_host)
    async with httpx.AsyncClient(timeout=10) as client:
        assert await reachable(client, answers, server.port), f"{answers} refused"
        assert not await reachable(client, refuses, server.port), f"{refuses} answered"


@needs_ipv6
def test_a_taken_port_fails_to_bind() -> None:
    """Binding dual-stack must not hide an address in use behind a silent fallback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((IPV4, 0))
        taken.listen()
        sock = dual_stack_socket(0)
        assert sock is not None
        sock.close()
        with pytest.raises(OSError):
            dual_stack_socket(taken.getsockname()[1])


def test_any_address_spellings() -> None:
    assert [is_any_address(h) for h in ("[::]", "::", "", " [::] ")] == [True] * 4
    assert [is_any_address(h) for h in ("0.0.0.0", "127.0.0.1", "::1", "[::1]")] == [False] * 4


def test_deploy_routes_the_webhook_port_on_every_address() -> None:
    """k8s and compose agree on the webhook port and leave BIND_HOST at both families."""
    (config,) = [c["data"] for c in by_kind("ConfigMap") if c["metadata"]["name"] == CONFIG]
    port = int(config["WEBHOOK_PORT"])
    assert port == Settings().webhook_port
    assert is_any_address(config.get("BIND_HOST", Settings().bind_host))
    (worker,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "render-worker"]
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "webhook", "containerPort": port} in container["ports"]
    assert "BIND_HOST" not in {e["name"] for e in container.get("env", [])}
    (service,) = [s for s in by_kind("Service") if s["metadata"]["name"] == "render-webhook"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["webhook"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["worker"]
    assert str(port) in compose["expose"]
    assert is_any_address(str(compose["environment"].get("BIND_HOST", Settings().bind_host)))
