"""One job queue's reader: fills this worker's slots for that queue with its entries.

- XREADGROUP only as many entries as there are free slots (SSR: WORKER_CONCURRENCY, one
  at a time; Lambda: LAMBDA_MAX_IN_FLIGHT, in batches), so other workers get the rest.
- Redis answering NOGROUP (it restarted without its data) re-creates the group, at id 0,
  so the entries the sweeper adds back are read.
- Entries of a worker that went silent longer than VISIBILITY_TIMEOUT_SECONDS are taken
  over with XAUTOCLAIM (in batches: a killed worker may leave hundreds of Lambda renders);
  a live worker keeps its entries fresh with XCLAIM ... JUSTID (which does not count as a
  delivery). A reclaimed entry carries its delivery count (XPENDING times_delivered):
  past MAX_DELIVERIES the processor fails the render.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from render_common import metrics, streams
from render_common.config import Settings
from render_common.outage import REDIS_DOWN, ride_out
from render_common.queue import ensure_group, is_missing_group
from render_common.tasks import log_failure, one_pass, supervised
from services.render_worker.delivery import Delivery, Running

log = logging.getLogger(__name__)
ACK_OUTAGE_SECONDS = 10.0
XCLAIM_CHUNK = 500  # entry ids per XCLAIM ... JUSTID
# A handed-on entry's idle time: past any worker's VISIBILITY_TIMEOUT_SECONDS, so that the
# next XAUTOCLAIM of any worker takes it (a day; Redis ignores an IDLE reaching before 1970).
HAND_ON_IDLE_MS = 86_400_000


Process = Callable[[Running], Awaitable[bool]]


class QueueReader:
    """Reads one queue into at most `slots` concurrent `process` calls."""

    def __init__(
        self,
        queue: streams.JobQueue,
        settings: Settings,
        redis: Redis,
        blocking_redis: Redis,
        name: str,
        process: Process,
        *,
        slots: int,
        batch: int,
    ) -> None:
        self.queue = queue
        self._settings = settings
        self._redis = redis
        self._blocking = blocking_redis
        self.name = name
        self._process_entry = process
        self.slots = slots
        self._batch = batch
        self.running: dict[str, Running] = {}
        self._freed = asyncio.Event()
        self._reclaim_cursor = "0-0"
        self._idle_ms = int(settings.visibility_timeout_seconds * 1000)
        self._reclaim_every = max(0.5, settings.visibility_timeout_seconds / 4)
        self._next_reclaim = 0.0
        self._unclaimed: list[Delivery] = []  # cancelled before their claim: to hand on

    @property
    def free(self) -> int:
        """Slots free now."""
        return self.slots - len(self.running)

    async def take_loop(self, stopping: asyncio.Event) -> None:
        """Fill free slots until stopped (see `_take`)."""
        what = f"reading {self.queue.stream}"
        await supervised(self._take, what, failed=self._read_failed, until=stopping.is_set)

    async def _take(self) -> None:
        """Wait for a free slot; reclaim silent workers' entries when due, else read new ones."""
        while self.free <= 0:
            self._freed.clear()
            await self._freed.wait()
        deliveries: list[Delivery] = []
        now = time.monotonic()
        if now >= self._next_reclaim:
            self._next_reclaim = now + self._reclaim_every
            metrics.queue_depth.record(int(await self._redis.xlen(self.queue.stream)))
            deliveries = await self._reclaim(self._idle_ms)
        if not deliveries:
            block_ms = max(1, int((self._next_reclaim - time.monotonic()) * 1000))
            deliveries = await self._read(min(block_ms, 1000))
        for delivery in deliveries:
            self._dispatch(delivery)

    async def _read_failed(self, exc: Exception) -> float:
        """Log a failed take (re-creating a lost group); the seconds before the next."""
        if not isinstance(exc, (RedisError, OSError)):
            log_failure(exc, f"reading {self.queue.stream}")
        elif is_missing_group(exc):
            log.warning("consumer group missing (Redis lost its data); re-creating it")
            try:
                await ensure_group(self._redis, self.queue)
                return 0.0
            except (RedisError, OSError) as again:
                log.warning("re-creating the consumer group failed", extra={"error": str(again)})
        else:
            log.warning(
                "reading the job queue failed; retrying",
                extra={"queue": self.queue.stream, "error": str(exc)},
            )
        return 1.0

    def _count(self) -> int:
        return max(1, min(self.free, self._batch))

    async def _read(self, block_ms: int) -> list[Delivery]:
        reply = await self._blocking.xreadgroup(
            self.queue.group,
            self.name,
            {self.queue.stream: ">"},
            count=self._count(),
            block=block_ms,
        )
        batches: list[Any] = list(reply or [])
        return [
            Delivery.from_entry(str(entry_id), dict(fields), reclaimed=False, queue=self.queue)
            for _, items in batches
            for entry_id, fields in items
            if fields
        ]

    async def _reclaim(self, idle_ms: int) -> list[Delivery]:
        reply = await self._redis.xautoclaim(
            self.queue.stream,
            self.queue.group,
            self.name,
            idle_ms,
            self._reclaim_cursor,
            count=self._count(),
        )
        self._reclaim_cursor = str(reply[0] or "0-0")
        claimed: list[Any] = [
            entry for entry in reply[1] if entry and entry[1] and entry[0] not in self.running
        ]  # one of ours still running: Redis was away and missed our heartbeats
        if not claimed:
            return []
        pending = await self._redis.xpending_range(
            self.queue.stream,
            self.queue.group,
            min=claimed[0][0],
            max=claimed[-1][0],
            count=len(claimed) + len(self.running) + 1,
            consumername=self.name,
        )
        deliveries = {str(p["message_id"]): int(p["times_delivered"]) for p in pending}
        log.warning(
            "reclaimed entries from a silent worker",
            extra={"queue": self.queue.stream, "entries": len(claimed)},
        )
        return [
            Delivery.from_entry(
                str(entry_id),
                dict(fields),
                reclaimed=True,
                deliveries=deliveries.get(str(entry_id), 1),
                queue=self.queue,
            )
            for entry_id, fields in claimed
        ]

    def _dispatch(self, delivery: Delivery) -> None:
        running = Running(delivery=delivery)
        self.running[delivery.entry_id] = running
        running.task = asyncio.create_task(self._process(running))

    async def _process(self, running: Running) -> None:
        delivery = running.delivery
        try:
            # A failure leaves the entry pending: XAUTOCLAIM retries it after the
            # visibility timeout.
            await one_pass(
                partial(self._process_and_ack, running),
                "processing (entry left for reclaim)",
                expected=(),
                extra={"entry": delivery.entry_id},
            )
        except asyncio.CancelledError:
            if running.claimed:
                await asyncio.shield(self.acknowledge(delivery.entry_id))  # handed back anew
            else:
                self._unclaimed.append(delivery)  # never taken: `hand_on` passes it on
            raise
        finally:
            self.running.pop(delivery.entry_id, None)
            self._freed.set()

    async def _process_and_ack(self, running: Running) -> None:
        if await self._process_entry(running):
            await self.acknowledge(running.delivery.entry_id)

    async def acknowledge(self, entry_id: str) -> None:
        """XACK and XDEL the entry, riding out a Redis outage (bounded). An entry that
        stays pending is reclaimed later, and its claim finds the render done: a skip."""

        async def acknowledge() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.queue.stream, self.queue.group, entry_id)
                pipe.xdel(self.queue.stream, entry_id)
                await pipe.execute()

        try:
            await ride_out(
                acknowledge,
                within=min(self._settings.redis_outage_seconds, ACK_OUTAGE_SECONDS),
                what=f"ack of {entry_id}",
            )
        except REDIS_DOWN as exc:
            log.warning("entry not acknowledged", extra={"entry": entry_id, "error": str(exc)})

    async def keep_fresh(self) -> None:
        """Reset the idle time of our pending entries (XCLAIM JUSTID), so no other worker
        reclaims the entries of renders that still run here."""
        with contextlib.suppress(RedisError, OSError):
            await self._claim_ours(list(self.running))

    async def _claim_ours(self, ids: list[Any], **options: Any) -> None:
        """XCLAIM ... JUSTID our pending `ids` to ourselves, in chunks; `options` as in
        redis-py (idle, retrycount). Without them it resets their idle time only."""
        for start in range(0, len(ids), XCLAIM_CHUNK):
            chunk = ids[start : start + XCLAIM_CHUNK]
            await self._redis.xclaim(
                self.queue.stream, self.queue.group, self.name, 0, chunk, justid=True, **options
            )

    def tasks(self) -> list[asyncio.Task[None]]:
        """The processing tasks running now."""
        return [r.task for r in self.running.values() if r.task is not None]

    def cancel_unclaimed(self) -> None:
        """Stop the deliveries whose render is not claimed yet (stopping: take no more
        work); `hand_on` then passes their entries on."""
        for running in self.running.values():
            if running.task is not None and not running.claimed:
                running.task.cancel()

    async def hand_on(self) -> None:
        """Pass on the entries whose render this worker never claimed (cancelled at stop),
        once its heartbeat has stopped: they stay pending (not acked, so not lost to the
        sweeper), made idle past any visibility timeout so that the next XAUTOCLAIM of any
        worker takes them at once, with this delivery uncounted (RETRYCOUNT): it was no
        attempt. If Redis is away they are reclaimed after the visibility timeout."""
        by_count: dict[int, list[Any]] = {}
        for delivery in self._unclaimed:
            by_count.setdefault(max(0, delivery.deliveries - 1), []).append(delivery.entry_id)
        self._unclaimed.clear()
        for count, ids in by_count.items():
            try:
                await self._claim_ours(ids, idle=HAND_ON_IDLE_MS, retrycount=count)
            except (RedisError, OSError) as exc:
                log.warning("entries not handed on", extra={"error": str(exc)})
        if by_count:
            log.info(
                "unclaimed entries handed on",
                extra={"queue": self.queue.stream, "entries": sum(map(len, by_count.values()))},
            )
