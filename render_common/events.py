"""Progress events: the fields of a `render:events:{id}` entry, written and read in one place.

The worker (and render_api, for a cancelled queued render) appends; the progress service
reads and turns entries into render.v1.RenderEvent. Fields are flat strings, as Redis
streams store them; the terminal event's full render is read from the database.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

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


# Appends one event to its render's stream and a copy, pointing back at it, to the user's
# stream, atomically (one script) so both streams list a user's events in the same order.
# KEYS: render stream, user stream. ARGV: maxlen, ttl (0 = keep), user maxlen, user ttl,
# render id, then the event's fields as name, value pairs.
_PUBLISH_WITH_USER = """
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'render_id', ARGV[5], 'event_id', id, unpack(fields))
redis.call('EXPIRE', KEYS[2], ARGV[4])
return id
"""
_PUBLISH_WITH_USER_SHA = hashlib.sha1(_PUBLISH_WITH_USER.encode()).hexdigest()


async def publish_event(
    redis: Redis,
    event: ProgressEvent,
    *,
    maxlen: int = 1000,
    ttl_seconds: int = 24 * 3600,
    user_id: str | None = None,
) -> str:
    """Append an event to its render's stream; after a terminal event the stream expires.

    With `user_id` (the render's owner), the event is also copied to the user's stream
    (`render:user-events:{user_id}`, with the render id and this event's id), which the
    progress service reads to push a user's renders to a dashboard.
    """
    key = streams.events_stream(event.render_id)
    if user_id:
        return await _publish_with_user(redis, key, event, maxlen, ttl_seconds, user_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(key, event.to_fields(), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        if event.terminal:
            pipe.expire(key, ttl_seconds)
        results = await pipe.execute()
    entry_id = results[0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def _publish_with_user(
    redis: Redis, key: str, event: ProgressEvent, maxlen: int, ttl_seconds: int, user_id: str
) -> str:
    args: list[str | int] = [
        maxlen,
        ttl_seconds if event.terminal else 0,
        streams.USER_EVENTS_MAXLEN,
        ttl_seconds,
        event.render_id,
    ]
    for name, value in event.to_fields().items():
        args.extend((name, value))
    keys = (key, streams.user_events_stream(user_id))
    try:
        entry_id = await redis.evalsha(_PUBLISH_WITH_USER_SHA, len(keys), *keys, *args)
    except NoScriptError:
        entry_id = await redis.eval(_PUBLISH_WITH_USER, len(keys), *keys, *args)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
