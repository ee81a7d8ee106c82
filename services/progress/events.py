"""Conversions into render.v1.RenderEvent: from stream entries and from `video_renders` rows."""

from __future__ import annotations

from typing import TypeAlias

from render.v1 import progress_service_pb2, render_pb2

from render_common.downloads import DownloadLinks
from render_common.events import ProgressEvent
from render_common.renders.record import Render
from render_common.renders.states import State
from render_common.resources import STAGE_TO_PROTO, STATE_TO_PROTO, render_message, timestamp

Kind: TypeAlias = progress_service_pb2.RenderEvent.Kind.ValueType
EVENT: Kind = progress_service_pb2.RenderEvent.KIND_EVENT
SNAPSHOT: Kind = progress_service_pb2.RenderEvent.KIND_SNAPSHOT
GAP: Kind = progress_service_pb2.RenderEvent.KIND_GAP


def from_progress(event: ProgressEvent) -> progress_service_pb2.RenderEvent:
    """A RenderEvent from a decoded `render:events:{id}` entry (without `render`)."""
    message = progress_service_pb2.RenderEvent(
        event_id=event.event_id,
        render_id=event.render_id,
        state=STATE_TO_PROTO.get(event.state, render_pb2.Render.STATE_UNSPECIFIED),
        stage=STAGE_TO_PROTO.get(event.stage, render_pb2.STAGE_UNSPECIFIED),
        progress=event.progress,
        frames_rendered=event.frames_rendered,
        frames_total=event.frames_total,
        message=event.message,
        kind=EVENT,
    )
    if event.time_ms:
        message.event_time.FromMilliseconds(event.time_ms)
    if event.error_reason:
        message.error.CopyFrom(
            render_pb2.RenderError(
                reason=event.error_reason,
                message=event.error_message,
                retryable=event.error_retryable,
            )
        )
    return message


def from_row(
    row: Render, links: DownloadLinks, event_id: str = "", kind: Kind = SNAPSHOT
) -> progress_service_pb2.RenderEvent:
    """A snapshot (or gap) carrying a render's state as stored, with `render` set (its
    download links signed now)."""
    render = render_message(row, links)
    message = progress_service_pb2.RenderEvent(
        kind=kind,
        event_id=event_id,
        render_id=render.render_id,
        state=render.state,
        stage=render.stage,
        progress=render.progress,
        frames_rendered=round(render.progress * render.frames_total),
        frames_total=render.frames_total,
        render=render,
    )
    if row.status == State.FAILED or render.HasField("error"):
        message.error.CopyFrom(render.error)
    stamp = timestamp(row.updated_at)
    if stamp is not None:
        message.event_time.CopyFrom(stamp)
    return message


def with_render(
    event: progress_service_pb2.RenderEvent,
    links: DownloadLinks,
    row: Render | None,
) -> progress_service_pb2.RenderEvent:
    """A copy of an event with the stored render (output, metadata, error) set; its
    download links are signed now."""
    if row is None:
        return event
    complete = progress_service_pb2.RenderEvent()
    complete.CopyFrom(event)
    render = render_message(row, links)
    complete.render.CopyFrom(render)
    if event.state == render_pb2.Render.STATE_FAILED and not event.HasField("error"):
        complete.error.CopyFrom(render.error)
    return complete


def snapshot(
    newest: ProgressEvent,
    links: DownloadLinks,
    row: Render | None,
    kind: Kind = SNAPSHOT,
) -> progress_service_pb2.RenderEvent:
    """A snapshot (or gap) standing for every event up to `newest`: its state, `render` set.

    The state is the newest event's (the row's progress lags it between heartbeats); for a
    terminal event, `row` should be the final one.
    """
    message = with_render(from_progress(newest), links, row)
    message.kind = kind
    return message


def gap_marker() -> progress_service_pb2.RenderEvent:
    """The KIND_GAP marker of a multi-render stream: no render, no id."""
    return progress_service_pb2.RenderEvent(kind=GAP)


def row_is_terminal(row: Render) -> bool:
    """Whether a stored render has reached a terminal state."""
    return row.terminal
