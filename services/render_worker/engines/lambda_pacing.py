"""Pacing of the Lambda calls of one worker: a rate for getRenderProgress and the backoff
of a throttled start (the budget of functions is shared: lambda_budget.py)."""

from __future__ import annotations

import asyncio
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
