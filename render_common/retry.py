"""Retry with bounded exponential backoff: the one helper, on `tenacity`.

`retry_call` awaits a call again while it raises one of the given errors, the delay
doubling from `first` up to `most` seconds, for at most `within` seconds (the last wait is
cut short so that the final try happens at the bound, never after it). The first failure
is logged as a warning and a recovery as info, so an outage shows once, not per try.
Cancellation is never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


async def retry_call(
    call: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...],
    within: float,
    first: float,
    most: float,
    what: str,
) -> T:
    """`await call()`, retried on `on` for up to `within` seconds; the last error is raised.

    `within=0`: one try.
    """
    backoff = wait_exponential(multiplier=first, min=first, max=most)

    def wait(state: RetryCallState) -> float:
        return max(0.0, min(backoff(state), within - (state.seconds_since_start or 0.0)))

    def warn_once(state: RetryCallState) -> None:
        if state.attempt_number == 1 and state.outcome is not None:
            error = state.outcome.exception()
            log.warning("unavailable; retrying", extra={"what": what, "error": str(error)})

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(on),
        stop=stop_after_delay(within),
        wait=wait,
        before_sleep=warn_once,
        reraise=True,
    )
    async for attempt in retrying:  # raises the last error once the bound has passed
        with attempt:
            result = await call()
    failures = attempt.retry_state.attempt_number - 1
    if failures:
        log.info("answered again", extra={"what": what, "failures": failures})
    return result
