"""One multiplexed Redis reader per process (a fixed set of shards), fanning entries out.

Each of a fixed number of shards (PROGRESS_READERS) owns the streams whose key hashes to
it; its single connection runs `XREAD COUNT n BLOCK ms STREAMS k1 k2 ... id1 id2 ...`
over those streams, each from the last id already dispatched (a "topic" position); the
key list is rebuilt on every loop, so a new topic is read at the latest after one block
timeout, from a concrete position (never `$`), so nothing written meanwhile is missed.
Other reads (a new topic's starting id, history replay) go through one small shared pool;
the number of Redis connections therefore does not grow with the number of watchers.

Every entry is decoded once into an `Item` that all subscribers of its stream share; each
subscriber has a bounded buffer and a subscriber that falls `buffer` entries behind is
dropped (its stream ends ABORTED and resumes later), so a slow client never holds up the
reader or the other clients.

When Redis goes away the reader retries with backoff and resumes every topic from its
position: if Redis is back within `outage_seconds` the streams carry on without loss;
otherwise every subscription ends (UNAVAILABLE) and clients resume from their last event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from render_common import metrics
from render_common.ids import parse_event_id
from render_common.tasks import Backoff, supervised
from services.progress.subscription import EndReason, Item, Subscription
from services.progress.xread import PackedXRead, bulk

log = logging.getLogger(__name__)

READ_COUNT = 200  # most entries per stream per XREAD (at most half a subscriber buffer)
_BACKOFF_START = 0.05
_BACKOFF_MAX = 1.0
_REDIS_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


@dataclass(slots=True)
class _Topic:
    position: str
    order: tuple[int, int]
    subscribers: dict[Subscription, None] = field(default_factory=dict)
    packed_key: bytes = b""  # the key as a RESP bulk string
    packed_position: bytes = b""  # the position as a RESP bulk string

    def move_to(self, position: str, order: tuple[int, int]) -> None:
        self.position, self.order = position, order
        self.packed_position = bulk(position)


class HubClosed(Exception):
    """Raised by `subscribe` once the hub is shutting down."""


class _Shard:
    """One multiplexed reader: its share of the topics and their subscribers."""

    def __init__(
        self,
        reader: Redis,
        pool: Redis,
        *,
        buffer: int = 256,
        block_ms: int = 100,
        outage_seconds: float = 5.0,
    ) -> None:
        """`reader`'s pool gives the shard its one connection (blocking reads); `pool` is small."""
        self._pool = pool
        self._buffer = buffer
        self._block_ms = block_ms
        self._outage_seconds = outage_seconds
        self._count = max(1, min(READ_COUNT, buffer // 2))
        self._xread = PackedXRead(reader, count=self._count, block_ms=block_ms)
        self._topics: dict[str, _Topic] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._outage_since: float | None = None  # when the current Redis outage began
        self.reads = 0  # XREAD calls made (for tests and metrics)

    @property
    def topic_count(self) -> int:
        """Streams currently watched."""
        return len(self._topics)

    @property
    def subscriber_count(self) -> int:
        """Subscriptions currently open."""
        return sum(len(t.subscribers) for t in self._topics.values())

    def start(self) -> None:
        """Start the reader task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="progress-hub-reader")

    async def close(self) -> None:
        """End every subscription (SHUTDOWN) and stop the reader."""
        self._closed = True
        self._end_all(EndReason.SHUTDOWN)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._xread.close()

    async def subscribe(self, key: str) -> Subscription:
        """Watch a stream from now on; `Subscription.position` is where delivery starts.

        Items with ids after `position` are delivered; anything up to it is history, to be
        read by the caller (XRANGE) after subscribing so that nothing falls in between.
        """
        if self._closed:
            raise HubClosed
        topic = self._topics.get(key)
        if topic is None:
            newest = await self._pool.xrevrange(key, count=1)
            if self._closed:
                raise HubClosed
            topic = self._topics.get(key)  # created by someone else meanwhile?
            if topic is None:
                position = str(newest[0][0]) if newest else "0-0"
                topic = _Topic(
                    position=position, order=parse_event_id(position), packed_key=bulk(key)
                )
                topic.move_to(position, topic.order)
                self._topics[key] = topic
                self._changed.set()
        subscription = Subscription(key, self._buffer)
        subscription.position = topic.position
        topic.subscribers[subscription] = None
        metrics.progress_watchers.add(1)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to a subscription; the stream is dropped with its last watcher."""
        topic = self._topics.get(subscription.key)
        if topic is None or subscription not in topic.subscribers:
            return
        del topic.subscribers[subscription]
        metrics.progress_watchers.add(-1)
        if not topic.subscribers:
            del self._topics[subscription.key]
            self._changed.set()

    def _end_all(self, reason: EndReason) -> None:
        topics, self._topics = self._topics, {}
        ended = 0
        for topic in topics.values():
            for subscription in topic.subscribers:
                subscription.end(reason)
                ended += 1
        if ended:
            # Their later `unsubscribe` finds no topic, so the gauge is settled here.
            metrics.progress_watchers.add(-ended)

    async def _run(self) -> None:
        backoff = Backoff(_BACKOFF_START, _BACKOFF_MAX)
        await supervised(
            self._read_once,
            "reading streams",
            backoff=backoff,
            failed=self._read_failed,
            until=lambda: self._closed,
        )

    async def _read_once(self) -> None:
        """One XREAD over every topic (or wait for a first topic) and its dispatch."""
        if not self._topics:
            self._outage_since = None
            self._changed.clear()
            await self._changed.wait()
            return
        response = await self._read()
        if self._outage_since is not None:
            log.info("redis is back; streams resume")
            self._outage_since = None
        self.reads += 1
        if response:
            self._dispatch(response)

    async def _read_failed(self, exc: Exception) -> None:
        """A Redis outage longer than the window ends the streams; the reader backs off."""
        if not isinstance(exc, _REDIS_ERRORS):
            log.error("unexpected error reading streams", exc_info=exc)
            return
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            log.warning("redis unavailable; retrying", extra={"error": str(exc)})
        elif now - self._outage_since > self._outage_seconds:
            log.error("redis unavailable past the outage window; ending streams")
            self._end_all(EndReason.REDIS_UNAVAILABLE)
            self._outage_since = None

    def _pack(self) -> bytes:
        """This shard's XREAD, from each topic's cached key and position (see xread.py)."""
        topics = list(self._topics.values())
        return self._xread.pack([t.packed_key for t in topics], [t.packed_position for t in topics])

    async def _read(self) -> Any:
        """The next XREAD's reply. It is sent once the watchers woken by the last reply
        have run (one turn of the loop), so their sends do not wait behind packing and
        writing a command that names every stream of the shard."""
        await asyncio.sleep(0)
        return await self._xread.read(self._pack())

    def _dispatch(self, response: Any) -> None:
        streams = response.items() if isinstance(response, dict) else response
        for key, entries in streams:
            topic = self._topics.get(key)
            if topic is None:
                continue
            for entry in entries:
                entry_id, raw = entry[0], entry[1]
                order = parse_event_id(entry_id)
                if order <= topic.order:
                    continue  # read before the topic was (re)created at a later position
                topic.move_to(entry_id, order)
                if isinstance(raw, dict):
                    fields = raw
                else:
                    pairs = iter(raw or ())
                    fields = dict(zip(pairs, pairs, strict=False))
                item = Item(key=key, entry_id=entry_id, order=order, fields=fields)
                dropped = [s for s in topic.subscribers if not s.push(item)]
                for subscription in dropped:
                    self.unsubscribe(subscription)
                if key not in self._topics:
                    break


class Hub:
    """The process's readers: watched streams are spread over `readers` shards by key hash.

    Each shard holds one connection doing XREAD BLOCK over its own streams only, so an
    event wakes one shard, and each read names a fraction of the watched keys (Redis
    registers and unregisters a blocked client on every key it names, per read). The
    number of Redis connections is `readers` plus the small pool, whatever the watchers.
    """

    def __init__(
        self,
        reader: Redis,
        pool: Redis,
        *,
        readers: int = 1,
        buffer: int = 256,
        block_ms: int = 100,
        outage_seconds: float = 5.0,
    ) -> None:
        """`reader`'s pool must allow `readers` connections; `pool` is small and shared."""
        self._shards = [
            _Shard(reader, pool, buffer=buffer, block_ms=block_ms, outage_seconds=outage_seconds)
            for _ in range(max(1, readers))
        ]

    def _shard(self, key: str) -> _Shard:
        return self._shards[zlib.crc32(key.encode()) % len(self._shards)]

    @property
    def topic_count(self) -> int:
        """Streams currently watched."""
        return sum(shard.topic_count for shard in self._shards)

    @property
    def subscriber_count(self) -> int:
        """Subscriptions currently open."""
        return sum(shard.subscriber_count for shard in self._shards)

    @property
    def reads(self) -> int:
        """XREAD calls made by all shards (for tests and metrics)."""
        return sum(shard.reads for shard in self._shards)

    def start(self) -> None:
        """Start every shard's reader task."""
        for shard in self._shards:
            shard.start()

    async def close(self) -> None:
        """End every subscription (SHUTDOWN) and stop the readers."""
        await asyncio.gather(*(shard.close() for shard in self._shards))

    async def subscribe(self, key: str) -> Subscription:
        """Watch a stream from now on (see `_Shard.subscribe`)."""
        return await self._shard(key).subscribe(key)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to a subscription."""
        self._shard(subscription.key).unsubscribe(subscription)
