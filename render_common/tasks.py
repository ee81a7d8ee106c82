"""Helpers for long-running background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library turned into another exception.

    A retry-forever loop catches `Exception` to survive a bad pass. When the task is
    cancelled inside a database or Redis call, the driver may surface the cancellation as
    its own error, or absorb it and return (seen here: render_api's sweeper, cancelled in
    a SQLAlchemy/asyncpg transaction, went on to sleep while `Task.cancelling()` said 1,
    and `RenderApi.stop` waited forever). Call this in such an `except` block and once per
    iteration before the loop waits again.
    """
    if cancelling():
        raise asyncio.CancelledError


def cancelling() -> bool:
    """Whether the current task has been asked to stop (see raise_if_cancelling)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def one_pass(step: Callable[[], Awaitable[Any]], what: str) -> None:
    """One pass of a retry-forever loop: a failure is logged (a Redis or network error as a
    warning, anything else with its traceback) and swallowed; a cancellation is not."""
    try:
        await step()
    except (RedisError, OSError) as exc:
        raise_if_cancelling()
        log.warning("%s failed", what, extra={"error": str(exc)})
    except Exception:
        raise_if_cancelling()
        log.exception("%s failed", what)
    raise_if_cancelling()  # a driver may have swallowed it mid-pass


async def every(interval: float, step: Callable[[], Awaitable[Any]], what: str) -> None:
    """`one_pass(step)` every `interval` seconds until cancelled."""
    while True:
        await one_pass(step, what)
        await asyncio.sleep(interval)
