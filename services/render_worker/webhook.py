"""The Remotion Lambda webhook endpoint: POST /webhooks/remotion.

Runs inside every worker whose Lambda engine is configured (WEBHOOK_PORT, default 8090),
or on its own: `python -m services.render_worker.webhook`. WEBHOOK_URL is the public URL
that reaches it; Remotion posts there when a Lambda render succeeds, fails or times out.

A call is accepted only when
1. `X-Remotion-Signature` is `sha512=` + hex HMAC-SHA512 of the raw body under
   WEBHOOK_SECRET (compared in constant time; `NO_SECRET_PROVIDED` is refused)   else 401;
2. the body is a JSON object whose `type` matches `X-Remotion-Status`, with a `renderId`
   and our render id in `customData`                                              else 400;
3. that render exists and is (or was) following that Lambda render                else 404;
4. it is the first webhook for that Lambda render (replay guard, SET NX)          else 409.
The payload is then parked in Redis (and its Lambda render id published on
render:lambda:webhooks) for the engine that follows the render, which
completes it (or fails it) exactly once, whether the webhook or its own polling is first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.db.engine import engine_for
from render_common.listen import IPV4_WILDCARD, dual_stack_socket, is_any_address
from render_common.logs import configure_logging
from render_common.redis_client import redis_for
from render_common.renders import queries as renders
from render_common.server import wait_for_shutdown_signal

log = logging.getLogger(__name__)

PATH = "/webhooks/remotion"
MAX_BODY_BYTES = 1 << 20
STATUSES = frozenset({"success", "error", "timeout"})


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` is Remotion's signature of the raw `body` under `secret`."""
    if not secret or not header.startswith("sha512="):
        return False
    expected = "sha512=" + hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


class WebhookRejected(Exception):
    """A webhook call refused with an HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebhookReceiver:
    """Verifies Remotion webhooks and hands them to the engine following the render."""

    def __init__(self, settings: Settings, db: AsyncEngine, redis: Redis) -> None:
        self._secret = settings.webhook_secret
        self._db = db
        self._redis = redis

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp handler of POST /webhooks/remotion."""
        body = await request.read()
        try:
            accepted = await self.receive(
                body,
                signature=request.headers.get("X-Remotion-Signature", ""),
                status=request.headers.get("X-Remotion-Status", ""),
            )
        except WebhookRejected as rejected:
            log.warning(
                "webhook rejected", extra={"status": rejected.status, "reason": rejected.reason}
            )
            return web.json_response({"error": rejected.reason}, status=rejected.status)
        return web.json_response({"accepted": True, "render_id": accepted})

    async def receive(self, body: bytes, *, signature: str, status: str) -> str:
        """Check and park one webhook; our render id. Raises WebhookRejected."""
        if not verify_signature(body, signature, self._secret):
            raise WebhookRejected(401, "invalid or missing X-Remotion-Signature")
        payload = _parse(body, status)
        lambda_render_id = str(payload["renderId"])
        render_id = str(payload["customData"]["renderId"])
        row = await renders.get(self._db, render_id)
        follows = row is not None and (
            row.lambda_render_id == lambda_render_id
            or (row.lambda_render_id is None and row.active)
        )
        if not follows:
            raise WebhookRejected(404, "no render is following this Lambda render")
        seen = streams.webhook_seen(lambda_render_id)
        try:
            first = await self._redis.set(
                seen, payload["type"], nx=True, ex=streams.WEBHOOK_SEEN_TTL_SECONDS
            )
            if not first:
                raise WebhookRejected(409, "webhook already received (replay)")
            key = streams.lambda_webhook(lambda_render_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, json.dumps(payload, separators=(",", ":")))
                pipe.expire(key, streams.WEBHOOK_SEEN_TTL_SECONDS)
                pipe.publish(streams.LAMBDA_WEBHOOK_CHANNEL, lambda_render_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # Not parked: forget it so Remotion's retry is accepted.
            await _forget(self._redis, seen)
            raise WebhookRejected(503, "temporarily unavailable") from exc
        log.info(
            "webhook accepted",
            extra={
                "render_id": render_id,
                "lambda_render_id": lambda_render_id,
                "type": payload["type"],
            },
        )
        return render_id


def _parse(body: bytes, status: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookRejected(400, "body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    kind = payload.get("type")
    if kind not in STATUSES or kind != status:
        raise WebhookRejected(400, "type and X-Remotion-Status disagree or are unknown")
    if not isinstance(payload.get("renderId"), str) or not payload["renderId"]:
        raise WebhookRejected(400, "renderId missing")
    custom = payload.get("customData")
    if not isinstance(custom, dict) or not isinstance(custom.get("renderId"), str):
        raise WebhookRejected(400, "customData.renderId missing")
    return payload


async def _forget(redis: Redis, key: str) -> None:
    try:
        await redis.delete(key)
    except (RedisError, OSError):
        log.warning("could not clear webhook replay guard", extra={"key": key})


@dataclass
class WebhookServer:
    """A running webhook endpoint."""

    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        """Stop accepting calls and close."""
        await self.runner.cleanup()


async def start_webhook_server(
    settings: Settings, db: AsyncEngine, redis: Redis, *, port: int | None = None
) -> WebhookServer:
    """Serve the webhook on BIND_HOST:WEBHOOK_PORT (port 0 = any free port)."""
    receiver = WebhookReceiver(settings, db, redis)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(PATH, receiver.handle)
    app.router.add_get("/healthz", _health)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = _site(runner, settings.bind_host, settings.webhook_port if port is None else port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = int(runner.addresses[0][1])
    log.info(
        "webhook endpoint listening",
        extra={"port": bound, "path": PATH, "addresses": [a[0] for a in runner.addresses]},
    )
    return WebhookServer(runner=runner, port=bound)


def _site(runner: web.AppRunner, bind_host: str, port: int) -> web.BaseSite:
    """Where to listen: BIND_HOST `[::]` (the default) or empty is IPv4 and IPv6 on one
    dual-stack socket (IPv4 only on a host without IPv6); any other host is honoured as
    given (`0.0.0.0` IPv4 only, `::1` that address only)."""
    if is_any_address(bind_host):
        sock = dual_stack_socket(port)
        if sock is not None:
            return web.SockSite(runner, sock)
        return web.TCPSite(runner, IPV4_WILDCARD, port)
    return web.TCPSite(runner, bind_host.strip().strip("[]"), port)


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def main() -> None:
    """Run the webhook endpoint on its own until SIGTERM/SIGINT."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    if not settings.webhook_secret:
        raise SystemExit("WEBHOOK_SECRET must be set to receive Remotion webhooks")
    db = engine_for(settings, pool_size=5, pre_ping=True)
    redis = redis_for(settings)
    server = await start_webhook_server(settings, db, redis)
    try:
        await wait_for_shutdown_signal()
    finally:
        await server.stop()
        await redis.aclose()
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
