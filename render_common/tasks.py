"""Helpers for long-running background tasks."""

from __future__ import annotations

import asyncio


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
