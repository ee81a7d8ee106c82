"""The render:jobs consumer: reads, reclaims, retries, cancels and shuts down gracefully.

- XREADGROUP only as many entries as there are free slots (WORKER_CONCURRENCY), so other
  workers get the rest.
- Redis answering NOGROUP (it restarted without its data) re-creates the group, at id 0,
  so the entries the sweeper adds back are read.
- Entries of a worker that went silent longer than VISIBILITY_TIMEOUT_SECONDS are taken
  over with XAUTOCLAIM; a live worker keeps its entries fresh with XCLAIM ... JUSTID
  (which does not count as a delivery). A reclaimed entry carries its delivery count
  (XPENDING times_delivered): past MAX_DELIVERIES the processor fails the render.
- Retries wait in the render:retry sorted set; a Lua script moves due ones into the stream
  atomically, so two workers never enqueue the same retry.
- Cancel messages on render:cancel stop the matching render within a second.
- SIGTERM: stop reading, let running renders finish within SHUTDOWN_GRACE_SECONDS, then
  cancel the rest, which hands their attempts back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from render_common import metrics, streams
from render_common.config import Settings
from render_common.outage import REDIS_DOWN, ride_out
from render_common.queue import ensure_group, is_missing_group
from render_common.renders.attempts import AttemptTransitions
from render_common.tasks import raise_if_cancelling
from services.render_worker.processor import Delivery, RenderProcessor

log = logging.getLogger(__name__)
ACK_OUTAGE_SECONDS = 10.0

MOVE_DUE_RETRIES = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
local moved = {}
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local job = cjson.decode(member)
    local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
      'render_id', job.render_id, 'attempt', tostring(job.attempt),
      'traceparent', job.traceparent or '')
    table.insert(moved, job.render_id)
    table.insert(moved, id)
  end
end
return moved
"""


@dataclass
class _Running:
    delivery: Delivery
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Consumer:
    """Feeds render:jobs entries to the processor with bounded concurrency."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        blocking_redis: Redis,
        processor: RenderProcessor,
        transitions: AttemptTransitions,
        name: str,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._blocking = blocking_redis
        self._processor = processor
        self._transitions = transitions
        self.name = name
        self._running: dict[str, _Running] = {}
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._move_retries = redis.register_script(MOVE_DUE_RETRIES)

    @property
    def active(self) -> int:
        """Renders running now."""
        return len(self._running)

    async def start(self) -> None:
        """Create the group and start the loops."""
        await ensure_group(self._redis)
        self._tasks = [
            asyncio.create_task(self._take_loop(), name="take"),
            asyncio.create_task(self._retry_loop(), name="retry"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._cancel_loop(), name="cancel"),
        ]

    async def _take_loop(self) -> None:
        """Fill free slots: reclaim a silent worker's entry when due, else read a new one."""
        idle_ms = int(self._settings.visibility_timeout_seconds * 1000)
        reclaim_every = max(0.5, self._settings.visibility_timeout_seconds / 4)
        next_reclaim = 0.0
        while not self._stopping.is_set():
            await self._slots.acquire()
            try:
                delivery = None
                now = time.monotonic()
                if now >= next_reclaim:
                    next_reclaim = now + reclaim_every
                    metrics.queue_depth.record(int(await self._redis.xlen(streams.JOBS_STREAM)))
                    delivery = await self._reclaim(idle_ms)
                if delivery is None:
                    block_ms = max(1, int((next_reclaim - time.monotonic()) * 1000))
                    delivery = await self._read(min(block_ms, 1000))
            except (RedisError, OSError) as exc:
                delivery = None
                if is_missing_group(exc):
                    log.warning("consumer group missing (Redis lost its data); re-creating it")
                    await self._recreate_group()
                else:
                    log.warning("reading render:jobs failed; retrying", extra={"error": str(exc)})
                    await asyncio.sleep(1.0)
            if delivery is None:
                self._slots.release()
                continue
            self._dispatch(delivery)

    async def _recreate_group(self) -> None:
        try:
            await ensure_group(self._redis)
        except (RedisError, OSError) as exc:
            log.warning("re-creating the consumer group failed", extra={"error": str(exc)})
            await asyncio.sleep(1.0)

    async def _read(self, block_ms: int) -> Delivery | None:
        reply = await self._blocking.xreadgroup(
            streams.JOBS_GROUP, self.name, {streams.JOBS_STREAM: ">"}, count=1, block=block_ms
        )
        batches: list[Any] = list(reply or [])
        entries: list[Any] = [entry for _, items in batches for entry in items]
        if not entries:
            return None
        entry_id, fields = entries[0]
        return Delivery.from_entry(str(entry_id), dict(fields), reclaimed=False)

    async def _reclaim(self, idle_ms: int) -> Delivery | None:
        reply = await self._redis.xautoclaim(
            streams.JOBS_STREAM, streams.JOBS_GROUP, self.name, idle_ms, "0-0", count=1
        )
        claimed: list[Any] = [entry for entry in reply[1] if entry and entry[1]]
        if not claimed:
            return None
        entry_id, fields = claimed[0]
        if entry_id in self._running:
            return None  # ours, still running: Redis was away and missed our heartbeats
        pending = await self._redis.xpending_range(
            streams.JOBS_STREAM, streams.JOBS_GROUP, min=entry_id, max=entry_id, count=1
        )
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        log.warning(
            "reclaimed an entry from a silent worker",
            extra={
                "entry": entry_id,
                "render_id": fields.get("render_id"),
                "deliveries": deliveries,
            },
        )
        return Delivery.from_entry(
            str(entry_id), dict(fields), reclaimed=True, deliveries=deliveries
        )

    def _dispatch(self, delivery: Delivery) -> None:
        running = _Running(delivery=delivery)
        self._running[delivery.entry_id] = running
        running.task = asyncio.create_task(self._process(running))

    async def _process(self, running: _Running) -> None:
        delivery = running.delivery
        try:
            if await self._processor.process(delivery, running.cancel):
                await self._acknowledge(delivery.entry_id)
        except asyncio.CancelledError:
            await asyncio.shield(self._acknowledge(delivery.entry_id))  # handed back as a new entry
            raise
        except Exception:
            # The entry stays pending; XAUTOCLAIM retries it after the visibility timeout.
            raise_if_cancelling()
            log.exception(
                "processing failed; entry left for reclaim", extra={"entry": delivery.entry_id}
            )
        finally:
            self._running.pop(delivery.entry_id, None)
            self._slots.release()

    async def _acknowledge(self, entry_id: str) -> None:
        """XACK and XDEL the entry, riding out a Redis outage (bounded). An entry that
        stays pending is reclaimed later, and its claim finds the render done: a skip."""

        async def acknowledge() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(streams.JOBS_STREAM, streams.JOBS_GROUP, entry_id)
                pipe.xdel(streams.JOBS_STREAM, entry_id)
                await pipe.execute()

        try:
            await ride_out(
                acknowledge,
                within=min(self._settings.redis_outage_seconds, ACK_OUTAGE_SECONDS),
                what=f"ack of {entry_id}",
            )
        except REDIS_DOWN as exc:
            log.warning("entry not acknowledged", extra={"entry": entry_id, "error": str(exc)})

    async def _retry_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                moved = await self._move_retries(
                    keys=[streams.RETRY_ZSET, streams.JOBS_STREAM],
                    args=[time.time(), streams.JOBS_MAXLEN],
                )
                for render_id, entry_id in zip(moved[::2], moved[1::2], strict=True):
                    await self._transitions.reenqueue_retry(render_id, entry_id)
            except (RedisError, OSError) as exc:
                raise_if_cancelling()
                log.warning("moving due retries failed", extra={"error": str(exc)})
            except Exception:
                raise_if_cancelling()
                log.exception("moving due retries failed")
            raise_if_cancelling()  # a driver may have swallowed it mid-pass
            await asyncio.sleep(0.25)

    async def _heartbeat_loop(self) -> None:
        """Keep our pending entries from looking idle while their renders run."""
        interval = max(0.2, self._settings.visibility_timeout_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            ids: list[Any] = list(self._running)
            if not ids:
                continue
            with contextlib.suppress(RedisError, OSError):
                await self._redis.xclaim(
                    streams.JOBS_STREAM, streams.JOBS_GROUP, self.name, 0, ids, justid=True
                )

    async def _cancel_loop(self) -> None:
        while not self._stopping.is_set():
            pubsub = self._blocking.pubsub()
            try:
                await pubsub.subscribe(streams.CANCEL_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    render_id = message.get("data")
                    for running in list(self._running.values()):
                        if running.delivery.render_id == render_id:
                            running.cancel.set()
            except (RedisError, OSError) as exc:
                log.warning("cancel subscription dropped; resubscribing", extra={"error": str(exc)})
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self, grace: float) -> None:
        """Stop taking work; finish within `grace`, then hand the rest back."""
        self._stopping.set()
        for task in self._tasks:
            if task.get_name() != "heartbeat":  # keep our entries fresh during the grace
                task.cancel()
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=15)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
