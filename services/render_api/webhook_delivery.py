"""Caller webhook delivery: POST each ended render to its webhook, signed, retried, durable.

A loop in render_api polls the database every CALLER_WEBHOOK_POLL_INTERVAL_SECONDS, and
at once when a render ends (the `render:ended` pub/sub channel, which `publish_event`
announces terminal events on after their row was written; a missed message only waits
for the poll), for due deliveries (render_common/renders/webhooks.py: terminal renders with a
pending webhook), leases them, and sends each in its own task, at most
CALLER_WEBHOOK_CONCURRENCY at once.
The body is the render.v1.WebhookEvent JSON; the headers are Standard Webhooks'
(render_common/webhook_signing.py), signed with the owner's secret(s) in force. A 2xx
answer delivers it. Anything else (a 3xx too: redirects are not followed, as Svix does),
a network error or CALLER_WEBHOOK_TIMEOUT_SECONDS passing schedules the next attempt
after CALLER_WEBHOOK_RETRY_SCHEDULE (+-20% jitter); after the last one it has failed. A
URL whose host resolves to a private or reserved address is refused for good (the policy
of render_common/outbound.py with CALLER_WEBHOOK_ALLOWED_NETWORKS; the request goes to
the checked address). Renders never wait for any of this, and the database is the only
state: a process killed mid-send leaves a lease that runs out, then any render_api
(the restarted one, or another) sends it again with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import orjson
from google.protobuf import json_format
from redis.asyncio import Redis
from render.v1 import render_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.downloads import DownloadLinks
from render_common.outage import REDIS_DOWN
from render_common.outbound import (
    ForbiddenAddress,
    Unresolvable,
    parse_networks,
    pinned,
    resolve_permitted,
)
from render_common.renders import webhooks
from render_common.renders.record import Render
from render_common.renders.webhooks import Claim, Outcome
from render_common.resources import render_message, webhook_id
from render_common.tasks import every, log_failure, polled, supervised
from render_common.webhook_signing import signed_headers

log = logging.getLogger(__name__)

JITTER = 0.2
USER_AGENT = "render-export-webhooks/1"


def event_body(row: Render, links: DownloadLinks) -> bytes:
    """The JSON body of a render's terminal event (render.v1.WebhookEvent).

    Built at each attempt: the download links in it are signed afresh (they expire).
    """
    render = render_message(row, links)
    render.ClearField("webhook_delivery")
    event = render_pb2.WebhookEvent(type=f"render.{row.status}", data=render)
    if render.HasField("complete_time"):
        event.timestamp.CopyFrom(render.complete_time)
    return orjson.dumps(json_format.MessageToDict(event))


async def _listener_failed(exc: Exception) -> None:
    """The render:ended listener failed: retried in a second (polling goes on meanwhile);
    Redis being away is no news (its own loops warn about it)."""
    if isinstance(exc, REDIS_DOWN):
        log.debug("render:ended listener: redis away", exc_info=exc)
    else:
        log_failure(exc, "render:ended listener")


class WebhookDelivery:
    """The delivery loop of one process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        links: DownloadLinks,
        redis: Redis | None = None,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._wake = asyncio.Event()
        self._links = links
        self._timeout = settings.caller_webhook_timeout_seconds
        self._poll = settings.caller_webhook_poll_interval_seconds
        self._concurrency = settings.caller_webhook_concurrency
        self._delays = settings.caller_webhook_delays
        self._allowed = parse_networks(settings.caller_webhook_allowed_networks)
        # Longer than an attempt can take, so a live sender never loses its lease.
        self._lease_seconds = 2 * self._timeout + 5
        self._in_flight: set[asyncio.Task[None]] = set()
        # Built once: loading the CA bundle costs about 0.1 s of CPU.
        self._tls = httpx.create_ssl_context()

    async def run(self) -> None:
        """Poll and deliver until cancelled; a database outage only delays deliveries."""
        listener = asyncio.create_task(self._listen()) if self._redis is not None else None
        try:
            await every(self._poll, self.tick, "webhook delivery poll", wake=self._wake)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            for task in list(self._in_flight):
                task.cancel()
            for task in list(self._in_flight):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self) -> None:
        """Wake the loop whenever a render ends; through Redis outages, retry every second."""
        await supervised(self._wake_on_ended, "render:ended listener", failed=_listener_failed)

    async def _wake_on_ended(self) -> None:
        assert self._redis is not None
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(streams.RENDER_ENDED_CHANNEL)
            async for message in polled(partial(pubsub.get_message, timeout=1.0)):
                if message is not None:
                    self._wake.set()

    async def tick(self) -> int:
        """Claim what is due (as many as there is room for) and start sending it."""
        claims = await webhooks.claim_due(
            self._engine,
            limit=self._concurrency - len(self._in_flight),
            now=datetime.now(UTC),
            lease_seconds=self._lease_seconds,
        )
        for claim in claims:
            task = asyncio.create_task(self._deliver(claim))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claims)

    async def _deliver(self, claim: Claim) -> None:
        outcome = await self._attempt(claim)
        now = datetime.now(UTC)
        kept = await webhooks.record_outcome(self._engine, claim, outcome, now)
        row = claim.row
        log.info(
            "webhook %s for render %s (attempt %d)",
            "delivered" if outcome.delivered else "attempt failed",
            row.id,
            row.webhook_attempts,
            extra={
                "render_id": row.id,
                "webhook_id": webhook_id(row.id),
                "attempt": row.webhook_attempts,
                "status_code": outcome.status_code,
                "error": outcome.error,
                "next_attempt_at": outcome.next_at.isoformat() if outcome.next_at else None,
                "lease_kept": kept,
            },
        )

    async def _attempt(self, claim: Claim) -> Outcome:
        row = claim.row
        attempt = row.webhook_attempts
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._post(row)
        except ForbiddenAddress as exc:
            return Outcome(delivered=False, error=f"refused: the URL resolves to a {exc}")
        except Unresolvable:
            return self._retry(attempt, None, "the webhook host does not resolve")
        except (TimeoutError, httpx.TimeoutException):
            return self._retry(attempt, None, f"no answer within {self._timeout:g}s")
        except httpx.HTTPError as exc:
            return self._retry(attempt, None, f"network error: {exc or type(exc).__name__}")
        if 200 <= status < 300:
            return Outcome(delivered=True, status_code=status)
        error = f"HTTP {status}"
        if 300 <= status < 400:
            error += " (redirects are not followed)"
        return self._retry(attempt, status, error)

    def _retry(self, attempt: int, status: int | None, error: str) -> Outcome:
        """Schedule the attempt after `attempt`, or give up after the last one."""
        if attempt > len(self._delays):
            return Outcome(delivered=False, status_code=status, error=error)
        delay = self._delays[attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        return Outcome(
            delivered=False,
            status_code=status,
            error=error,
            next_at=datetime.now(UTC) + timedelta(seconds=delay),
        )

    async def _post(self, row: Render) -> int:
        """One signed POST to the checked address; the answer's status code."""
        url = str(row.webhook_url)
        body = event_body(row, self._links)
        now = datetime.now(UTC)
        secret = await webhooks.signing_secret(self._engine, row.user_id, now)
        target = pinned(url, await resolve_permitted(url, self._allowed))
        signed = signed_headers(secret.in_force(now), webhook_id(row.id), int(time.time()), body)
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signed,
        }
        # A client per attempt: pooled connections are keyed by address, and one opened
        # for another host name (SNI) must never carry this request.
        async with (
            httpx.AsyncClient(
                verify=self._tls,
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self._timeout),
            ) as client,
            client.stream(
                "POST", target.url, content=body, headers=headers, extensions=target.extensions
            ) as response,
        ):
            return response.status_code
