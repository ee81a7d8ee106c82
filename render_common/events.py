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
from render_common.renders.states import TERMINAL

PREV_FIELD = "prev"  # id of the entry before this one in its stream ("0-0": the first)


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One progress event of one render."""

    render_id: str
    state: str  # a State (a plain string when read back from the stream)
    stage: str  # a Stage, likewise
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
        return self.state in TERMINAL

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


# Appends one event to its render's stream and, when a user stream is given, a copy pointing
# back at it to the user's stream, atomically (one script) so both list a user's events in
# the same order. Both entries get the same id, computed here as Redis' `*` would (the clock
# in milliseconds, or just after the newest id of either stream), so an event's id is the
# same in both streams and ids are unique and increasing among all of a user's renders.
# Each entry records `prev`, the id of the entry before it in its own stream ("0-0" for a
# stream's first entry): a reader that finds the entry after a client's cursor trimmed away
# knows exactly whether an event in between was lost (see services/progress).
# KEYS: render stream[, user stream]. ARGV: maxlen, ttl (0 = keep), user maxlen, user ttl,
# render id, the channel to announce a terminal event on ("" = none: render:ended, see
# streams.py), then the event's fields as name, value pairs.
_PUBLISH = """
local function last_id(key)
  if redis.call('EXISTS', key) == 0 then return 0, 0 end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      local ms, seq = string.match(info[i + 1], '^(%d+)-(%d+)$')
      return tonumber(ms), tonumber(seq)
    end
  end
  return 0, 0
end
local function later(ms, seq, other_ms, other_seq)
  if other_ms > ms or (other_ms == ms and other_seq >= seq) then return other_ms, other_seq + 1 end
  return ms, seq
end
local clock = redis.call('TIME')
local ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local seq = 0
local render_ms, render_seq = last_id(KEYS[1])
ms, seq = later(ms, seq, render_ms, render_seq)
local user_ms, user_seq = 0, 0
if #KEYS > 1 then
  user_ms, user_seq = last_id(KEYS[2])
  ms, seq = later(ms, seq, user_ms, user_seq)
end
local id = string.format('%d-%d', ms, seq)
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id,
  'prev', string.format('%d-%d', render_ms, render_seq), unpack(fields))
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if #KEYS > 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id,
    'render_id', ARGV[5], 'event_id', id,
    'prev', string.format('%d-%d', user_ms, user_seq), unpack(fields))
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[5]) end
return id
"""
_PUBLISH_SHA = hashlib.sha1(_PUBLISH.encode()).hexdigest()


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
    (`render:user-events:{user_id}`, with the render id), under the same id, which the
    progress service reads to push a user's renders to a dashboard. Returns the event's id.
    """
    args: list[str | int] = [
        maxlen,
        ttl_seconds if event.terminal else 0,
        streams.USER_EVENTS_MAXLEN,
        ttl_seconds,
        event.render_id,
        streams.RENDER_ENDED_CHANNEL if event.terminal else "",
    ]
    for name, value in event.to_fields().items():
        args.extend((name, value))
    keys = [streams.events_stream(event.render_id)]
    if user_id:
        keys.append(streams.user_events_stream(user_id))
    try:
        entry_id = await redis.evalsha(_PUBLISH_SHA, len(keys), *keys, *args)
    except NoScriptError:
        entry_id = await redis.eval(_PUBLISH, len(keys), *keys, *args)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
