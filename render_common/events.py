"""Progress events: the fields of a `render:events:{id}` entry, written and read in one place.

The worker (and render_api, for a cancelled queued render) appends; the progress service
reads and turns entries into render.v1.RenderEvent. Fields are flat strings, as Redis
streams store them; the terminal event's full render is read from the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from render_common import streams
from render_common.db.schema import TERMINAL_STATES

STAGES = ("queued", "bundling", "rendering", "encoding", "uploading", "done")


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One progress event of one render."""

    render_id: str
    state: str  # a status value of the video_renders table
    stage: str  # one of STAGES
    progress: float = 0.0
    frames_rendered: int = 0
    frames_total: int = 0
    message: str = ""
    error_reason: str = ""
    error_message: str = ""
    error_retryable: bool = False
    time_ms: int = 0
    event_id: str = ""  # the stream entry id, once read

    @property
    def terminal(self) -> bool:
        """Whether the render ends with this event."""
        return self.state in TERMINAL_STATES

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields."""
        fields = {
            "state": self.state,
            "stage": self.stage,
            "progress": f"{self.progress:.4f}",
            "frames_rendered": str(self.frames_rendered),
            "frames_total": str(self.frames_total),
            "t": str(self.time_ms or int(time.time() * 1000)),
        }
        if self.message:
            fields["message"] = self.message
        if self.error_reason:
            fields["error_reason"] = self.error_reason
            fields["error_message"] = self.error_message
            fields["error_retryable"] = "1" if self.error_retryable else "0"
        return fields

    @classmethod
    def from_entry(cls, render_id: str, event_id: str, fields: dict[str, str]) -> ProgressEvent:
        """Decode a stream entry (decoded to str)."""
        return cls(
            render_id=render_id,
            event_id=event_id,
            state=fields.get("state", ""),
            stage=fields.get("stage", ""),
            progress=float(fields.get("progress", "0") or 0),
            frames_rendered=int(fields.get("frames_rendered", "0") or 0),
            frames_total=int(fields.get("frames_total", "0") or 0),
            message=fields.get("message", ""),
            error_reason=fields.get("error_reason", ""),
            error_message=fields.get("error_message", ""),
            error_retryable=fields.get("error_retryable") == "1",
            time_ms=int(fields.get("t", "0") or 0),
        )


async def publish_event(
    redis: Redis,
    event: ProgressEvent,
    *,
    maxlen: int = 1000,
    ttl_seconds: int = 24 * 3600,
) -> str:
    """Append an event to its render's stream; after a terminal event the stream expires."""
    key = streams.events_stream(event.render_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(key, event.to_fields(), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        if event.terminal:
            pipe.expire(key, ttl_seconds)
        results = await pipe.execute()
    entry_id = results[0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
