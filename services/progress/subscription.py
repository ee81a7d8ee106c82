"""A watcher's side of the hub: the shared `Item`, its bounded `Subscription`, and why a
subscription ends (`EndReason`)."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any


class EndReason(enum.Enum):
    """Why the hub ended a subscription."""

    TOO_SLOW = "too_slow"  # the subscriber's buffer overflowed
    REDIS_UNAVAILABLE = "redis_unavailable"  # Redis stayed away past the outage window
    SHUTDOWN = "shutdown"  # the process is stopping


class SubscriptionEnded(Exception):
    """Raised by `Subscription.get` once the hub has ended the subscription."""

    def __init__(self, reason: EndReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(slots=True)
class Item:
    """One stream entry, shared by every subscriber of its stream."""

    key: str
    entry_id: str
    order: tuple[int, int]
    fields: dict[str, str]
    memo: dict[str, Any] = field(default_factory=dict)  # conversions shared by subscribers


class Subscription:
    """One watcher's view of one stream: a bounded buffer filled by the hub."""

    __slots__ = ("_items", "_limit", "_waiter", "ended", "key", "position")

    def __init__(self, key: str, limit: int) -> None:
        self.key = key
        self.position = "0-0"  # the topic position when this subscription joined
        self.ended: EndReason | None = None
        self._limit = limit
        self._items: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def push(self, item: Item) -> bool:
        """Buffer an item; False (and the subscription ends) when the buffer is full."""
        if self.ended is not None:
            return False
        if len(self._items) >= self._limit:
            self.end(EndReason.TOO_SLOW)
            return False
        self._items.append(item)
        self._wake()
        return True

    def end(self, reason: EndReason) -> None:
        """End the subscription; buffered items are dropped (the client resumes instead)."""
        if self.ended is None:
            self.ended = reason
            self._items.clear()
            self._wake()

    async def get(self) -> Item:
        """The next item; raises SubscriptionEnded once ended."""
        while True:
            if self.ended is not None:
                raise SubscriptionEnded(self.ended)
            if self._items:
                return self._items.popleft()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
