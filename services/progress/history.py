"""Whether a client's resume cursor still has its whole history: the gap rule.

Streams are capped (`MAXLEN ~`), so the entries after a client's `after_event_id` may have
been trimmed. Every entry written by `publish_event` records `prev`, the id of the entry
before it in its stream when it was written ("0-0" for the first of the stream), so the
oldest entry found at or after the cursor tells exactly whether one in between was lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from render_common.events import PREV_FIELD
from render_common.ids import parse_event_id

START = "0-0"  # the cursor before every event: "replay from the start"


class HistoryGap(Exception):
    """Events recorded after the cursor are no longer held (trimmed or expired)."""


def lost_before(after: str, first: Mapping[str, str]) -> bool:
    """Whether an entry between cursor `after` and `first` (the oldest entry after it) is lost.

    `first`'s `prev` is the entry written just before it: nothing is lost when that is at or
    before the cursor. A stream's first entry ("0-0") follows no earlier entry of this stream,
    but the stream may have expired and started again, so a cursor other than START from
    before it may have missed events of the earlier stream: that is reported as lost too.
    Entries without `prev` (written by an older version) cannot tell: lost, to be safe.
    """
    prev = first.get(PREV_FIELD)
    if prev is None:
        return True
    if prev == START:
        return after != START
    return parse_event_id(prev) > parse_event_id(after)


def event_time(event_id: str) -> datetime:
    """When an event was recorded (the milliseconds part of its id)."""
    return datetime.fromtimestamp(parse_event_id(event_id)[0] / 1000, UTC)
