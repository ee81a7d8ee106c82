"""Following many Lambda renders at once: webhooks first, paced polling as the fallback.

Each followed render gets an `asyncio.Queue` of updates; the engine's coroutine for that
render waits on it and costs nothing meanwhile. Updates come from:

- the webhook: the endpoint (webhook.py) parks the payload under
  render:lambda:webhook:{id} and publishes the id on render:lambda:webhooks; the tracker,
  subscribed once for the whole worker, reads the parked payload at once;
- polling: each render is due every REMOTION_POLL_INTERVAL_SECONDS (x WEBHOOK_POLL_FACTOR
  when webhooks are configured: polling is then only the fallback), with jitter, and the
  calls of all renders together are paced by LAMBDA_MAX_POLLS_PER_SECOND; a due render
  whose webhook is parked (a missed message) is completed from it without a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import random
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from render_common import streams
from render_common.tasks import polled, supervised
from services.render_worker.engines.lambda_client import LambdaClient, LambdaRender
from services.render_worker.failures import RenderFailure

log = logging.getLogger(__name__)
WEBHOOK_POLL_FACTOR = 5.0  # polls are the fallback when the webhook reports the end
JITTER = 0.2  # each interval is drawn from +-20% around its value
MAX_DUE_BATCH = 200  # due renders checked for a parked webhook in one round trip
IDLE_SECONDS = 0.5  # the due loop's longest sleep (it is woken for anything earlier)


@dataclass(frozen=True, slots=True)
class Update:
    """What the tracker learnt of a render: a webhook payload, a polled progress, or a
    failed progress call."""

    kind: str  # "webhook" | "progress" | "error"
    payload: dict[str, Any] = field(default_factory=dict)
    failure: RenderFailure | None = None


@dataclass(eq=False)
class _Followed:
    render: LambdaRender
    updates: asyncio.Queue[Update] = field(default_factory=asyncio.Queue)


class LambdaTracker:
    """Schedules the progress calls and webhook reads of the renders followed here."""

    def __init__(
        self,
        client: LambdaClient,
        redis: Redis,  # its own client (closed with the tracker): pipelines and pub/sub
        *,
        poll_interval: float,
        webhooks: bool,
        pollers: int,
    ) -> None:
        self._client = client
        self._redis = redis
        self._interval = poll_interval * (WEBHOOK_POLL_FACTOR if webhooks else 1.0)
        self._pollers = pollers
        self._followed: dict[str, _Followed] = {}
        self._due: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._calls: asyncio.Queue[_Followed] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def follow(self, render: LambdaRender) -> asyncio.Queue[Update]:
        """Start following a render; its updates arrive on the queue returned."""
        self._ensure_started()
        followed = _Followed(render)
        self._followed[render.render_id] = followed
        self._schedule(render.render_id, self._next_interval())
        return followed.updates

    def unfollow(self, render: LambdaRender) -> None:
        """Stop following it (its due entry is dropped when reached)."""
        self._followed.pop(render.render_id, None)

    @property
    def followed(self) -> int:
        """Renders followed now."""
        return len(self._followed)

    def _ensure_started(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._due_loop(), name="lambda-due"),
            asyncio.create_task(self._webhook_loop(), name="lambda-webhooks"),
        ] + [
            asyncio.create_task(self._poller(), name=f"lambda-poll-{n}")
            for n in range(self._pollers)
        ]

    def _next_interval(self) -> float:
        return self._interval * random.uniform(1 - JITTER, 1 + JITTER)

    def _schedule(self, lambda_id: str, delay: float) -> None:
        due = time.monotonic() + delay
        if not self._due or due < self._due[0][0]:
            self._wake.set()
        heapq.heappush(self._due, (due, next(self._seq), lambda_id))

    async def _due_loop(self) -> None:
        await supervised(self._due_once, "checking due lambda renders")

    async def _due_once(self) -> None:
        """Wait until the first render is due (or a wake-up), then check a batch of due ones."""
        self._wake.clear()
        delay = self._due[0][0] - time.monotonic() if self._due else IDLE_SECONDS
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, IDLE_SECONDS)):
                    await self._wake.wait()
            return
        now = time.monotonic()
        due: dict[str, _Followed] = {}
        while self._due and self._due[0][0] <= now and len(due) < MAX_DUE_BATCH:
            lambda_id = heapq.heappop(self._due)[2]
            followed = self._followed.get(lambda_id)
            if followed is not None:
                due[lambda_id] = followed
        await self._check(list(due.values()))

    async def _check(self, due: list[_Followed]) -> None:
        """Complete from parked webhooks what has one; queue a progress call for the rest."""
        parked = await self._parked([f.render.render_id for f in due])
        for followed, payload in zip(due, parked, strict=True):
            if payload is not None:
                followed.updates.put_nowait(Update("webhook", payload))
            else:
                self._calls.put_nowait(followed)

    async def _parked(self, lambda_ids: list[str]) -> list[dict[str, Any] | None]:
        if not lambda_ids:
            return []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for lambda_id in lambda_ids:
                    pipe.lindex(streams.lambda_webhook(lambda_id), 0)
                raw = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("reading parked webhooks failed; polling", extra={"error": str(exc)})
            return [None] * len(lambda_ids)
        return [json.loads(value) if value else None for value in raw]

    async def _poller(self) -> None:
        """One of LAMBDA_CALL_THREADS callers: a progress call at a time, paced by the
        client's rate; the render is due again one interval after the answer."""
        await supervised(self._poll_once, "polling lambda progress")

    async def _poll_once(self) -> None:
        followed = await self._calls.get()
        if followed.render.render_id not in self._followed:
            return
        try:
            progress = await self._client.progress(followed.render)
            update = Update("progress", progress)
        except RenderFailure as failure:
            update = Update("error", failure=failure)
        except Exception as exc:  # the poller must survive anything a call raises
            update = Update("error", failure=RenderFailure("INTERNAL", str(exc), retryable=True))
        if followed.render.render_id in self._followed:
            followed.updates.put_nowait(update)
            self._schedule(followed.render.render_id, self._next_interval())

    async def _webhook_loop(self) -> None:
        """Subscribed to render:lambda:webhooks: a webhook parked for a followed render
        makes it due now (the due loop reads the payload); resubscribes after a drop."""
        await supervised(self._follow_webhooks, "lambda webhook subscription")

    async def _follow_webhooks(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(streams.LAMBDA_WEBHOOK_CHANNEL)
            async for message in polled(partial(pubsub.get_message, timeout=1.0)):
                if message is None or message.get("type") != "message":
                    continue
                if message.get("data") in self._followed:
                    self._schedule(str(message["data"]), 0.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Stop following anything; close the Redis client."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._redis.aclose()
