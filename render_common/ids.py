"""Formats of the identifiers clients pass in, checked the same way by every service."""

from __future__ import annotations

import re

from render_common.errors import InvalidArgument

PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
RENDER_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EVENT_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_MAX_ID_PART = 2**64 - 1  # both parts of a stream entry id are unsigned 64-bit


def check_render_id(render_id: str) -> None:
    """Raise InvalidArgument unless `render_id` looks like one of ours (a UUID)."""
    if not RENDER_ID.match(render_id):
        raise InvalidArgument([("render_id", "must be a render id (a lower-case UUID)")])


def check_project_id(project_id: str, field: str = "project_id") -> None:
    """Raise InvalidArgument unless `project_id` is 1-128 letters, digits, '_' and '-'."""
    if not PROJECT_ID.match(project_id):
        raise InvalidArgument([(field, "must be 1-128 characters of letters, digits, '_' and '-'")])


def check_event_id(event_id: str, field: str = "after_event_id") -> None:
    """Raise InvalidArgument unless `event_id` is a Redis stream entry id (`<ms>-<seq>`)."""
    if not EVENT_ID.match(event_id) or max(parse_event_id(event_id)) > _MAX_ID_PART:
        raise InvalidArgument([(field, "must be an event id from a RenderEvent (e.g. 1-0)")])


def parse_event_id(event_id: str) -> tuple[int, int]:
    """An event id (a stream entry id, `<ms>-<seq>` or `<ms>`) as a comparable pair."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)
