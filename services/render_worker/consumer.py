"""The worker's consumer: one reader per job queue, plus what they share.

- render:jobs:ssr feeds the SSR slots (WORKER_CONCURRENCY); render:jobs:lambda feeds the
  Lambda follower (LAMBDA_MAX_IN_FLIGHT), when this worker has the Lambda engine. A flood
  of Lambda renders never takes an SSR slot (services/render_worker/queue_reader.py).
- Retries wait in the render:retry sorted set; a Lua script moves due ones into their
  engine's queue atomically, so two workers never enqueue the same retry.
- The legacy render:jobs stream is drained into the engines' queues (legacy_drain.py).
- Cancel messages on render:cancel stop the matching render within a second.
- SIGTERM: stop reading, let running renders finish within SHUTDOWN_GRACE_SECONDS, then
  cancel the rest, which hands their attempts back to the queue. Entries read but whose
  render is not claimed yet (Lambda entries waiting for a database connection) are not
  started: they are handed on to the next worker as they are (queue_reader.hand_on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common import streams
from render_common.config import Settings
from render_common.queue import ensure_group
from render_common.renders.attempts import AttemptTransitions
from render_common.tasks import every, polled, supervised
from services.render_worker.delivery import Running
from services.render_worker.legacy_drain import LegacyDrain
from services.render_worker.processor import RenderProcessor
from services.render_worker.queue_reader import QueueReader

log = logging.getLogger(__name__)
LAMBDA_READ_BATCH = 100  # entries per XREADGROUP / XAUTOCLAIM of the Lambda queue

# KEYS: retry zset, SSR queue, Lambda queue, legacy stream (members without an engine,
# scheduled before the split: the legacy drain routes them).
MOVE_DUE_RETRIES = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
local moved = {}
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local job = cjson.decode(member)
    local stream = KEYS[4]
    if job.engine == 'ssr' then stream = KEYS[2] elseif job.engine == 'lambda' then
      stream = KEYS[3] end
    local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*',
      'render_id', job.render_id, 'attempt', tostring(job.attempt),
      'traceparent', job.traceparent or '')
    table.insert(moved, job.render_id)
    table.insert(moved, id)
  end
end
return moved
"""


class Consumer:
    """Feeds the job queues' entries to the processor, each queue with its own bound."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        blocking_redis: Redis,
        processor: RenderProcessor,
        transitions: AttemptTransitions,
        name: str,
        *,
        db: AsyncEngine,
        follow_lambda: bool,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._blocking = blocking_redis
        self._transitions = transitions
        self.name = name
        self.readers = [
            QueueReader(
                streams.SSR_QUEUE,
                settings,
                redis,
                blocking_redis,
                name,
                processor.process,
                slots=settings.worker_concurrency,
                batch=1,
            )
        ]
        if follow_lambda:
            self.readers.append(
                QueueReader(
                    streams.LAMBDA_QUEUE,
                    settings,
                    redis,
                    blocking_redis,
                    name,
                    processor.process,
                    slots=settings.lambda_max_in_flight,
                    batch=LAMBDA_READ_BATCH,
                )
            )
        self._drain = LegacyDrain(redis, db, name, idle_seconds=settings.visibility_timeout_seconds)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._move_retries = redis.register_script(MOVE_DUE_RETRIES)

    @property
    def active(self) -> int:
        """Renders running now."""
        return sum(len(reader.running) for reader in self.readers)

    def _running(self) -> list[Running]:
        return [running for reader in self.readers for running in reader.running.values()]

    async def start(self) -> None:
        """Create the groups and start the loops."""
        await ensure_group(self._redis)
        self._tasks = [
            asyncio.create_task(reader.take_loop(self._stopping), name=f"take {reader.queue}")
            for reader in self.readers
        ]
        self._tasks += [
            asyncio.create_task(self._retry_loop(), name="retry"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._cancel_loop(), name="cancel"),
            asyncio.create_task(self._drain.run(self._stopping), name="legacy-drain"),
        ]

    async def _retry_loop(self) -> None:
        await every(0.25, self._move_due_retries, "moving due retries", until=self._stopping.is_set)

    async def _move_due_retries(self) -> None:
        keys = [
            streams.RETRY_ZSET,
            streams.SSR_JOBS_STREAM,
            streams.LAMBDA_JOBS_STREAM,
            streams.LEGACY_JOBS_STREAM,
        ]
        moved = await self._move_retries(keys=keys, args=[time.time(), streams.JOBS_MAXLEN])
        for render_id, entry_id in zip(moved[::2], moved[1::2], strict=True):
            await self._transitions.reenqueue_retry(render_id, entry_id)

    async def _heartbeat_loop(self) -> None:
        """Keep our pending entries from looking idle while their renders run."""
        interval = max(0.2, self._settings.visibility_timeout_seconds / 3)
        await every(interval, self._keep_fresh, "keeping entries fresh")

    async def _keep_fresh(self) -> None:
        for reader in self.readers:
            await reader.keep_fresh()

    async def _cancel_loop(self) -> None:
        await supervised(self._follow_cancels, "cancel subscription", until=self._stopping.is_set)

    async def _follow_cancels(self) -> None:
        """Subscribed to render:cancel: a message stops the matching running render."""
        pubsub = self._blocking.pubsub()
        try:
            await pubsub.subscribe(streams.CANCEL_CHANNEL)
            async for message in polled(partial(pubsub.get_message, timeout=1.0)):
                if message is None or message.get("type") != "message":
                    continue
                render_id = message.get("data")
                for running in self._running():
                    if running.delivery.render_id == render_id:
                        running.cancel.set()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self, grace: float) -> None:
        """Stop taking work; finish within `grace`, then hand the rest back."""
        self._stopping.set()
        for task in self._tasks:
            if task.get_name() != "heartbeat":  # keep our entries fresh during the grace
                task.cancel()
        tasks = [task for reader in self.readers for task in reader.tasks()]
        for reader in self.readers:
            reader.cancel_unclaimed()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=15)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for reader in self.readers:
            await reader.hand_on()  # after the heartbeat, which would make them fresh again
