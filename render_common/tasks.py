"""Helpers for long-running background tasks: the one place that loops survive failures.

Every background loop of the services runs on one of these, so that none can forget the
rule below:

- `one_pass(step)`: one pass that survives a failure (logged, swallowed).
- `every(interval, step)`: a pass, then a pause, until cancelled (or `until()`).
- `supervised(step)`: for a step that waits by itself (XREAD BLOCK, a pub/sub listen):
  run it again and again, with a backoff after each failure.
- `polled(read)`: a step's own inner loop (a pub/sub subscription's messages), checked
  after every read.

The rule: a cancellation is never survived. When the task is cancelled inside a database
or Redis call, the driver may surface the cancellation as its own error, or absorb it and
return (seen here: render_api's sweeper, cancelled in a SQLAlchemy/asyncpg transaction,
went on to sleep while `Task.cancelling()` said 1, and `RenderApi.stop` waited forever;
later the webhook listener and the Lambda webhook subscription, through redis-py). The
helpers re-raise it after a failure and after every pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[Any]]
Until = Callable[[], bool]
# Handles a failed pass (the loop's own logging, repairs); returns the seconds to wait
# before the next pass, or None for the loop's backoff.
Failed = Callable[[Exception], Awaitable[float | None]]
EXPECTED: tuple[type[Exception], ...] = (RedisError, OSError)
T = TypeVar("T")


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library turned into another exception or absorbed.

    Only the helpers below call it: a loop built on them cannot forget it.
    """
    if cancelling():
        raise asyncio.CancelledError


def cancelling() -> bool:
    """Whether the current task has been asked to stop (see raise_if_cancelling)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Backoff:
    """Waits after failures: `first` seconds, doubled after each failure up to `cap`,
    back to `first` after a success."""

    def __init__(self, first: float, cap: float | None = None) -> None:
        self._first = first
        self._cap = first if cap is None else cap
        self._next = first

    def next(self) -> float:
        """The wait after this failure (the next one waits longer)."""
        delay = self._next
        self._next = min(self._next * 2, self._cap)
        return delay

    def reset(self) -> None:
        """A pass succeeded: the next failure waits `first` again."""
        self._next = self._first


def log_failure(
    exc: Exception,
    what: str,
    *,
    expected: tuple[type[Exception], ...] = EXPECTED,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Log a failed pass: an expected error (by default Redis or network) as a warning,
    anything else with its traceback."""
    if isinstance(exc, expected):
        log.warning("%s failed", what, extra={**(extra or {}), "error": str(exc)})
    else:
        log.error("%s failed", what, exc_info=exc, extra=dict(extra or {}))


async def one_pass(
    step: Step,
    what: str,
    *,
    expected: tuple[type[Exception], ...] = EXPECTED,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """One pass of a retry-forever loop: whether it succeeded. A failure is logged (see
    log_failure) and swallowed; a cancellation is not, even one a driver absorbed."""
    try:
        await step()
    except Exception as exc:
        raise_if_cancelling()
        log_failure(exc, what, expected=expected, extra=extra)
        return False
    raise_if_cancelling()  # a driver may have swallowed it mid-pass
    return True


async def every(
    interval: float,
    step: Step,
    what: str,
    *,
    until: Until | None = None,
    wake: asyncio.Event | None = None,
    expected: tuple[type[Exception], ...] = EXPECTED,
) -> None:
    """`one_pass(step)`, then a pause of `interval` seconds (cut short when `wake` is
    set; it is cleared after), until cancelled or `until()`."""
    while until is None or not until():
        await one_pass(step, what, expected=expected)
        if wake is None:
            await asyncio.sleep(interval)
            continue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await wake.wait()
        wake.clear()


async def supervised(
    step: Step,
    what: str,
    *,
    backoff: Backoff | float = 1.0,
    failed: Failed | None = None,
    until: Until | None = None,
) -> None:
    """Run `step` again and again until cancelled or `until()`: for a step that waits by
    itself. After a failure, `failed(exc)` (default: log_failure) and a wait, `backoff`
    seconds (or as a Backoff grows); a success resets the backoff."""
    delays = backoff if isinstance(backoff, Backoff) else Backoff(backoff)
    while until is None or not until():
        try:
            await step()
        except Exception as exc:
            raise_if_cancelling()
            delay: float | None = None
            if failed is None:
                log_failure(exc, what)
            else:
                delay = await failed(exc)
            await asyncio.sleep(delays.next() if delay is None else delay)
        else:
            delays.reset()
        raise_if_cancelling()  # a driver may have swallowed it mid-pass


async def polled(read: Callable[[], Awaitable[T]]) -> AsyncIterator[T]:
    """`read()` again and again, each result in turn, until cancelled: a loop inside a
    step. A cancellation a read absorbed is re-raised after it (redis-py's
    `PubSub.get_message` may return None instead; give it a timeout, so a stop never
    waits for a message to arrive)."""
    while True:
        item = await read()
        raise_if_cancelling()
        yield item
