"""Pacing of the Lambda calls of one worker: a rate for getRenderProgress, a budget of
functions for renderMediaOnLambda, and the backoff of a throttled start."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time

START_BACKOFF_SECONDS = 1.0  # first wait after a throttled start (HTTP 429)
START_BACKOFF_MAX_SECONDS = 30.0


def backoff(retry: int) -> float:
    """The wait before retry `retry` (0-based) of a throttled start: exponential, capped,
    with full jitter so that throttled starts do not come back together."""
    ceiling = min(START_BACKOFF_MAX_SECONDS, START_BACKOFF_SECONDS * 2**retry)
    return random.uniform(ceiling / 2, ceiling)


class RateLimiter:
    """A token bucket: `acquire` returns at most `rate` times a second (bursts of `burst`)."""

    def __init__(self, rate: float, *, burst: float = 1.0) -> None:
        self._rate = rate
        self._burst = max(1.0, burst)
        self._tokens = self._burst
        self._last = time.monotonic()
        self._lock = asyncio.Lock()
        self.granted = 0

    async def acquire(self) -> None:
        """Wait for a token (callers are served in arrival order)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    self.granted += 1
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)


class FunctionBudget:
    """The Lambda functions this worker keeps busy, within LAMBDA_CONCURRENCY_LIMIT.

    A render takes its functions before renderMediaOnLambda and gives them back when it
    ends; starts wait in arrival order (no wake-up storm: only the head is woken).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, functions: int) -> bool:
        # A render needing more than the whole limit runs alone rather than never.
        return self.in_use == 0 or self.in_use + functions <= self.limit

    async def acquire(self, functions: int) -> None:
        """Wait until `functions` more fit in the budget, then take them."""
        if not self._waiting and self._fits(functions):
            self.in_use += functions
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (functions, future)
        self._waiting.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(functions)  # granted as we were cancelled: give it back
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(entry)
            raise

    def take(self, functions: int) -> None:
        """Count functions already running (a render followed after a takeover)."""
        self.in_use += functions

    def release(self, functions: int) -> None:
        """Give functions back; wake the starts that now fit, in order."""
        self.in_use = max(0, self.in_use - functions)
        while self._waiting and self._fits(self._waiting[0][0]):
            needed, future = self._waiting.popleft()
            if not future.done():
                self.in_use += needed
                future.set_result(None)
