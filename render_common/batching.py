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
from typing import Generic, TypeVar

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
    instead goes to every caller of that batch. At most `max_concurrent` batches are in
    flight at once.
    """

    def __init__(
        self,
        handler: Handler[Item, Result],
        *,
        name: str,
        max_batch: int = 64,
        max_concurrent: int = 1,
    ) -> None:
        if max_batch < 1 or max_concurrent < 1:
            raise ValueError("max_batch and max_concurrent must be at least 1")
        self._handler = handler
        self._name = name
        self._max_batch = max_batch
        self._max_concurrent = max_concurrent
        self._pending: deque[tuple[Item, trace.SpanContext, asyncio.Future[Result]]] = deque()
        self._drains: set[asyncio.Task[None]] = set()
        self._running = 0  # drains not yet returned (a done task may await its callbacks)

    async def submit(self, item: Item) -> Result:
        """Queue `item` and wait for its result (raises its exception).

        A caller cancelled before its batch starts is dropped from it; once the batch has
        started, the item is handled all the same (the caller just stops waiting).
        """
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        span = trace.get_current_span().get_span_context()
        self._pending.append((item, span, future))
        if self._running < self._max_concurrent:
            self._running += 1
            task = asyncio.create_task(
                self._drain(), name=f"{self._name}-drain", context=contextvars.Context()
            )
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        return await future

    async def _drain(self) -> None:
        """Handle batches while submissions are waiting."""
        try:
            await self._drain_pending()
        finally:
            # No await between the last look at _pending and this: a submission either
            # was seen by this drain or sees a free slot and starts another.
            self._running -= 1

    async def _drain_pending(self) -> None:
        while self._pending:
            taken = self._take()
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
        """Wait for the batches in flight (new submissions start new drains)."""
        while self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)
