"""A job queue entry handed to this worker: which attempt of which render, and how."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from render_common import streams

# Set on an entry moved from the legacy render:jobs stream after its worker went silent:
# the attempt may be RUNNING on that silent worker, and may be taken over like a reclaim.
TAKEOVER_FIELD = "takeover"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A job queue entry handed to this worker."""

    entry_id: str
    render_id: str
    attempt: int
    traceparent: str
    reclaimed: bool
    deliveries: int = 1  # times Redis handed this entry out (XPENDING times_delivered)
    queue: streams.JobQueue = streams.SSR_QUEUE  # the queue it came from

    @classmethod
    def from_entry(
        cls,
        entry_id: str,
        fields: dict[str, str],
        *,
        reclaimed: bool,
        deliveries: int = 1,
        queue: streams.JobQueue = streams.SSR_QUEUE,
    ) -> Delivery:
        """Decode the entry's fields."""
        return cls(
            entry_id=entry_id,
            render_id=fields.get("render_id", ""),
            attempt=int(fields.get("attempt", "1") or 1),
            traceparent=fields.get("traceparent", ""),
            reclaimed=reclaimed or fields.get(TAKEOVER_FIELD) == "1",
            deliveries=deliveries,
            queue=queue,
        )


@dataclass(eq=False, slots=True)
class Running:
    """A delivery being processed, as its reader and the processor share it."""

    delivery: Delivery
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by the processor once it took the render: from then on a cancellation hands the
    # attempt back (a new entry), so the reader acks this one; before, nothing was taken
    # and the reader hands the entry itself on to the next worker.
    claimed: bool = False
    task: asyncio.Task[None] | None = None
