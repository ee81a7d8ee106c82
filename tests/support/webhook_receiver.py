"""A caller's webhook receiver on 127.0.0.1 (aiohttp), as a backend would write one.

Every request is recorded. What it answers is scripted: `answers` is consumed one per
request (an HTTP status, or STALL: hold the request until `release()`), then 200. It
verifies each request with the `standardwebhooks` reference library when given secrets,
and de-duplicates by `webhook-id` as the spec tells receivers to: `processed` holds each
id once, counted only when it answered 2xx. It can go down and come back on its port.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks import Webhook

from tests.support.processes import free_port

STALL = -1


@dataclass
class Received:
    """One request as it arrived."""

    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()
    answered: int | None = None  # status sent, None if it never answered

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return orjson.loads(self.body)

    def verify(self, secret: str) -> Any:
        """The payload if signed with `secret` (raises WebhookVerificationError if not)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """The receiver (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    processed: dict[str, Received] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/hooks/render", host: str | None = None) -> str:
        """URL of the receiver (`host` in the URL; the default is its address)."""
        return f"http://{host or self.host}:{self.port}{path}"

    async def start(self) -> None:
        """Listen (again) on the receiver's port."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        """Stop listening: connections to the port are refused until start()."""
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def release(self) -> None:
        """Let stalled requests answer (200)."""
        self._release.set()

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until at least `count` requests arrived."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
            at=time.monotonic(),
        )
        async with self._arrived:
            self.received.append(received)
            self._arrived.notify_all()
        status = self.answers.pop(0) if self.answers else 200
        if status == STALL:
            await self._release.wait()
            status = 200
        received.answered = status
        if 200 <= status < 300:
            self.processed.setdefault(received.webhook_id, received)
        return web.Response(status=status)
