"""Upstream progress streams shared by the SSE responses that watch the same thing.

A `Feed` reads one gRPC server stream (WatchRender or WatchRenders) and formats each
message once into SSE bytes, which it hands to every `Subscriber` (one per open HTTP
response). The `FeedHub` shares a fresh WatchRender between all the streams of one
(user, render): 5,000 browsers watching 500 renders cost 500 upstream streams and 500
JSON mappings per event, not 5,000. A subscriber that joins a running feed first gets
the feed's log (the upstream's snapshot and every message since, in order), so it sees
exactly what a stream of its own would have shown: no gap, no duplicate. Resumes
(Last-Event-ID), dashboards (WatchRenders) and joins after the log is full get a feed
of their own. Each user's streams share only with that user's: isolation stays with the
services, which answered the feed's first caller.

Heartbeats come from one ticker for all subscribers. A subscriber whose client reads too
slowly (MAX_BACKLOG chunks waiting) is dropped: its browser reconnects with the last id
it received and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc

log = logging.getLogger(__name__)

HEARTBEAT = b": heartbeat\n\n"
MAX_BACKLOG = 1000
LOG_LIMIT = 2000
Key = tuple[str, str]


class Subscriber:
    """The chunks waiting for one HTTP response, and how its stream ends."""

    __slots__ = ("chunks", "ended", "last_push", "waiter")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.ended = False
        self.last_push = time.monotonic()
        self.waiter: asyncio.Future[None] | None = None

    def push(self, chunk: bytes) -> None:
        """Queue a chunk (dropping the subscriber if its client does not keep up)."""
        if self.ended:
            return
        self.chunks.append(chunk)
        self.last_push = time.monotonic()
        if len(self.chunks) > MAX_BACKLOG:
            self.drop()
        self._wake()

    def end(self) -> None:
        """No more chunks: the stream ends after those queued."""
        self.ended = True
        self._wake()

    def drop(self) -> None:
        """End now, discarding what is queued (the client resumes from what it got)."""
        self.chunks.clear()
        self.end()

    async def next(self) -> bytes | None:
        """Everything queued, joined; None once the stream has ended."""
        while not self.chunks:
            if self.ended:
                return None
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        chunk = b"".join(self.chunks)
        self.chunks.clear()
        return chunk

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Feed:
    """One upstream stream, formatted once per message, fanned out to its subscribers."""

    def __init__(
        self,
        call: Any,
        formatter: Callable[[Any], bytes],
        on_idle: Callable[[Feed], None],
        key: Key | None = None,
    ) -> None:
        self.call = call
        self.key = key
        self.format = formatter
        self.on_idle = on_idle
        self.log: list[bytes] = []
        self.log_full = False
        self.subscribers: set[Subscriber] = set()
        self.first: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.done = False
        self.task = asyncio.create_task(self._run())

    def subscribe(self) -> Subscriber:
        """A new subscriber, given the log so far."""
        subscriber = Subscriber()
        if self.log:
            subscriber.push(b"".join(self.log))
        if self.done:
            subscriber.end()
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a subscriber; the last one leaving closes the upstream."""
        self.subscribers.discard(subscriber)
        if not self.subscribers:
            self.close()

    def close(self) -> None:
        """Cancel the upstream call and the reader."""
        self.done = True
        self.on_idle(self)
        self.call.cancel()
        self.task.cancel()

    async def _run(self) -> None:
        try:
            while True:
                message = await self.call.read()
                if not self.first.done():
                    self.first.set_result(message)
                if message is grpc.aio.EOF:
                    break
                chunk = self.format(message.event)
                # Shared: joiners replay the log. A stream's own feed has its one subscriber
                # from the start (open_stream subscribes before the first read), so no log.
                if self.key is not None:
                    if len(self.log) < LOG_LIMIT:
                        self.log.append(chunk)
                    else:
                        self.log_full = True
                for subscriber in self.subscribers:
                    subscriber.push(chunk)
        except grpc.aio.AioRpcError as exc:
            if not self.first.done():
                self.first.set_exception(exc)
            else:
                log.info("upstream stream ended", extra={"code": exc.code().name})
        finally:
            if not self.first.done():  # closed before any answer: nothing to stream
                self.first.set_result(grpc.aio.EOF)
            self.done = True
            self.on_idle(self)
            for subscriber in self.subscribers:
                subscriber.end()


class FeedHub:
    """The shared feeds by (user, render), and the heartbeat ticker of every subscriber."""

    def __init__(self, heartbeat_seconds: float) -> None:
        self.heartbeat = heartbeat_seconds
        self.shared: dict[Key, Feed] = {}
        self.feeds: set[Feed] = set()
        self.ticker: asyncio.Task[None] | None = None

    def joinable(self, key: Key) -> Feed | None:
        """The running shared feed for `key` a new stream may join, if any."""
        feed = self.shared.get(key)
        if feed is None or feed.done or feed.log_full:
            return None
        return feed

    def open(self, call: Any, formatter: Callable[[Any], bytes], key: Key | None) -> Feed:
        """A feed over `call`, shared under `key` (None: this stream's own)."""
        shared = key is not None and self.joinable(key) is None
        feed = Feed(call, formatter, self._forget, key if shared else None)
        self.feeds.add(feed)
        if feed.key is not None:
            self.shared[feed.key] = feed
        return feed

    def _forget(self, feed: Feed) -> None:
        self.feeds.discard(feed)
        if feed.key is not None and self.shared.get(feed.key) is feed:
            del self.shared[feed.key]

    def start(self) -> None:
        """Start the heartbeat ticker."""
        self.ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        """Stop the ticker and every feed (their streams end)."""
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
        for feed in list(self.feeds):
            feed.close()
            for subscriber in feed.subscribers:
                subscriber.end()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(min(self.heartbeat / 2, 1.0))
            due = time.monotonic() - self.heartbeat
            for feed in list(self.feeds):
                for subscriber in feed.subscribers:
                    if subscriber.last_push <= due:
                        subscriber.push(HEARTBEAT)
