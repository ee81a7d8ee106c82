"""The leases of the renders a worker runs, renewed together: one UPDATE a heartbeat for
all of them (a worker following 500 Lambda renders would otherwise write 500 rows a
second, one statement each).

Each render still has its own lease (its row's `worker_id` and `updated_at`); a render's
`HeldLease.ended` resolves when its owner asked to cancel it or it is no longer ours.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import partial

from render_common.renders.attempts import AttemptTransitions
from render_common.renders.lease import HEARTBEAT_SECONDS, Heartbeat, Lease
from render_common.renders.states import Stage
from render_common.tasks import every, one_pass

log = logging.getLogger(__name__)
BATCH = 1000  # renders per statement (bind parameters stay well under SQLite's limit)


@dataclass(eq=False)
class HeldLease:
    """One render's lease: the progress its next heartbeat records, and how it ended."""

    render_id: str
    stage: str = Stage.BUNDLING
    progress: float = 0.0
    frames: int = 0
    written: tuple[str, float] | None = None  # the stage and progress the row holds
    ended: asyncio.Future[Lease] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def end(self, lease: Lease) -> None:
        """The lease ended (cancel requested, or lost); the render stops."""
        if not self.ended.done():
            self.ended.set_result(lease)


class LeaseKeeper:
    """Renews the leases of every render this worker holds, every HEARTBEAT_SECONDS."""

    def __init__(
        self, transitions: AttemptTransitions, *, interval: float = HEARTBEAT_SECONDS
    ) -> None:
        self._transitions = transitions
        self._interval = interval
        self._held: dict[str, HeldLease] = {}

    def hold(self, render_id: str) -> HeldLease:
        """Start renewing a render's lease (the claim just took it)."""
        held = HeldLease(render_id)
        self._held[render_id] = held
        return held

    def release(self, held: HeldLease) -> None:
        """Stop renewing it (the attempt is ending)."""
        if self._held.get(held.render_id) is held:
            del self._held[held.render_id]

    async def run(self) -> None:
        """Renew until cancelled."""
        await every(self._interval, self.renew_once, "lease renewal")

    async def renew_once(self) -> None:
        """One heartbeat for every held lease; a failed batch is tried again next time
        (the render goes on; its completion is conditional on the lease anyway)."""
        held = list(self._held.values())
        for start in range(0, len(held), BATCH):
            chunk = held[start : start + BATCH]
            await one_pass(
                partial(self._renew, chunk),
                "lease renewal",
                expected=(Exception,),
                extra={"renders": len(chunk)},
            )

    async def _renew(self, chunk: list[HeldLease]) -> None:
        beats = [
            Heartbeat(h.render_id, h.stage, h.progress, (h.stage, h.progress) != h.written)
            for h in chunk
        ]
        leases = await self._transitions.renew_leases(beats)
        for each, beat in zip(chunk, beats, strict=True):
            each.written = (beat.stage, beat.progress)
            lease = leases.get(each.render_id, Lease.LOST)
            if lease is not Lease.HELD and self._held.get(each.render_id) is each:
                each.end(lease)
