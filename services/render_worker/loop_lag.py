"""The event loop's lag, measured from inside: how late a short sleep wakes up.

A callback that holds the loop (a blocking call, a long computation) delays every timer;
the probe sees it as a late wake-up. It logs the worst lag of each window ("event loop
lag", fields max_ms and window_seconds) and keeps the worst since start, so a benchmark
or an operator can check the worker never stalls its renders' timers.

A late wake-up has two causes: the loop's own thread was busy (our code held it: a stall),
or the machine did not schedule the process (load). `busy_max_ms` tells them apart: the
loop thread's CPU time (time.thread_time) spent during the late sleeps, the worst of the
window. On a quiet machine both are the same.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)
PROBE_SECONDS = 0.05
WINDOW_SECONDS = 5.0


class LoopLagProbe:
    """Sleeps PROBE_SECONDS at a time and records how late it woke."""

    def __init__(self, *, window_seconds: float = WINDOW_SECONDS) -> None:
        self._window = window_seconds
        self.max_seconds = 0.0  # worst since start
        self.busy_max_seconds = 0.0  # worst CPU of the loop thread during one late sleep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start probing on the running loop."""
        self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        window_max, window_busy, window_end = 0.0, 0.0, time.monotonic() + self._window
        while True:
            before, cpu_before = time.monotonic(), time.thread_time()
            await asyncio.sleep(PROBE_SECONDS)
            now = time.monotonic()
            lag = max(0.0, now - before - PROBE_SECONDS)
            busy = time.thread_time() - cpu_before if lag > 0.01 else 0.0
            window_max, window_busy = max(window_max, lag), max(window_busy, busy)
            self.max_seconds = max(self.max_seconds, lag)
            self.busy_max_seconds = max(self.busy_max_seconds, busy)
            if now >= window_end:
                log.info(
                    "event loop lag",
                    extra={
                        "max_ms": round(window_max * 1000, 1),
                        "busy_max_ms": round(window_busy * 1000, 1),
                        "window_seconds": self._window,
                    },
                )
                window_max, window_busy, window_end = 0.0, 0.0, now + self._window

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
