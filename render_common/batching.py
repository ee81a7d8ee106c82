"""Group commit: concurrent submissions handled together, one batch at a time.

Under load, StartRender's database transaction and its XADD cost mostly round trips and
per-statement overhead, not per-row work. A `Batcher` queues what concurrent callers
submit and hands the queue to one handler call: a batch of one when the server is quiet
(no added wait: the first submission starts a drain at once), larger batches as load
rises (submissions made while a batch is in flight form the next one). Callers await
their own result or exception, never another caller's.

The drain runs in a fresh context (no caller's contextvars, such as the authenticated
user, leak into it); each item carries what it needs, and `Batch.span` gives the handler
a span parented on the first caller's and linked to the others'.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentelemetry import trace

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True, slots=True)
class Batch(Generic[Item]):
    """The items of one batch, in submission order, with their callers' span contexts."""

    items: list[Item]
    spans: list[trace.SpanContext]

    def span(self, tracer: trace.Tracer, name: str) -> AbstractContextManager[object]:
        """A span for handling the batch: child of the first caller's span, linked to the
        others'. A no-op when no caller is traced (the hot path then pays nothing)."""
        if not any(context.is_valid for context in self.spans):
            return nullcontext()
        return tracer.start_as_current_span(
            name,
            context=trace.set_span_in_context(trace.NonRecordingSpan(self.spans[0])),
            links=[trace.Link(context) for context in self.spans[1:] if context.is_valid],
            attributes={"batch.size": len(self.items)},
        )


Handler = Callable[[Batch[Item]], Awaitable[Sequence["Result | BaseException"]]]


class Batcher(Generic[Item, Result]):
    """Hands concurrent submissions to `handler` in batches of at most `max_batch`.

    `handler` returns one result or exception per item, in order; an exception it raises
    instead goes to every caller of that batch. One batch is in flight at a time: what
    arrives meanwhile makes the next batch larger, which is what keeps the cost per item
    down (with two batches in flight, intake lost a third of its throughput).
    """

    def __init__(
        self,
        handler: Handler[Item, Result],
        *,
        name: str,
        max_batch: int = 64,
        linger: float = 0.0,
    ) -> None:
        """`linger` (seconds): under load (the last batch had more than one item), wait
        this long for more submissions before taking a batch that is not full. A quiet
        caller never waits for it."""
        if max_batch < 1 or linger < 0:
            raise ValueError("max_batch must be at least 1 and linger not negative")
        self._handler = handler
        self._name = name
        self._max_batch = max_batch
        self._linger = linger
        self._pending: deque[tuple[Item, trace.SpanContext, asyncio.Future[Result]]] = deque()
        self._drain_task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Queue `item` and wait for its result (raises its exception).

        A caller cancelled before its batch starts is dropped from it; once the batch has
        started, the item is handled all the same (the caller just stops waiting).
        """
        return await self._queue(item)

    def post(self, item: Item) -> None:
        """Queue `item` without waiting: the handler's outcome for it is dropped."""
        self._queue(item).add_done_callback(drop_outcome)

    def _queue(self, item: Item) -> asyncio.Future[Result]:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        span = trace.get_current_span().get_span_context()
        self._pending.append((item, span, future))
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(
                self._drain(), name=f"{self._name}-drain", context=contextvars.Context()
            )
        return future

    async def _drain(self) -> None:
        """Handle batches while submissions are waiting."""
        try:
            await self._drain_pending()
        finally:
            # Cleared here, not in a done-callback (those run later): no await between
            # the last look at _pending and this, so a submission is either taken by
            # this drain or starts the next one.
            self._drain_task = None

    async def _drain_pending(self) -> None:
        previous = 0
        while self._pending:
            if self._linger and previous > 1 and len(self._pending) < self._max_batch:
                await asyncio.sleep(self._linger)
            taken = self._take()
            previous = len(taken)
            if not taken:
                continue
            batch = Batch([item for item, _, _ in taken], [span for _, span, _ in taken])
            try:
                results: Sequence[Result | BaseException] = await self._handler(batch)
                if len(results) != len(taken):
                    raise RuntimeError(
                        f"{self._name}: {len(results)} results for {len(taken)} items"
                    )
            except asyncio.CancelledError:
                # Stopped from outside (the loop is shutting down): nobody else may be left
                # to hand the waiting callers an answer.
                for _, _, future in (*taken, *self._pending):
                    future.cancel()
                self._pending.clear()
                raise
            except Exception as exc:
                self._settle(taken, [exc] * len(taken))
                continue
            self._settle(taken, results)

    def _take(self) -> list[tuple[Item, trace.SpanContext, asyncio.Future[Result]]]:
        """Up to max_batch pending submissions whose callers still wait."""
        taken: list[tuple[Item, trace.SpanContext, asyncio.Future[Result]]] = []
        while self._pending and len(taken) < self._max_batch:
            entry = self._pending.popleft()
            if not entry[2].done():
                taken.append(entry)
        return taken

    @staticmethod
    def _settle(
        taken: list[tuple[Item, trace.SpanContext, asyncio.Future[Result]]],
        results: Sequence[Result | BaseException],
    ) -> None:
        for (_, _, future), result in zip(taken, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        """Wait for the batch in flight and those queued behind it."""
        while self._drain_task is not None:
            await asyncio.gather(self._drain_task, return_exceptions=True)


def drop_outcome(future: asyncio.Future[Any]) -> None:
    """Mark a posted item's outcome as seen (asyncio logs an exception never retrieved)."""
    if not future.cancelled():
        future.exception()
