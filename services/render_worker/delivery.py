"""A job queue entry handed to this worker: which attempt of which render, and how."""

from __future__ import annotations

from dataclasses import dataclass

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
