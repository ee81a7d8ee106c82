"""Human and JSON output of renders, estimates, quotas and progress."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from google.protobuf.message import Message
from render.v1 import progress_service_pb2, render_pb2, render_service_pb2

from render_common.renders.states import State
from render_common.resources import STAGE_FROM_PROTO, STATE_FROM_PROTO


def as_json(message: Message) -> str:
    """A message as JSON (proto3 JSON mapping)."""
    from google.protobuf import json_format  # only for --json: not imported on every start

    return json_format.MessageToJson(message, indent=2, preserving_proto_field_name=True)


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix, lower case."""
    return str(enum.Name(value)).removeprefix(prefix).lower()


def state_name(state: int) -> str:
    """'succeeded', 'running', ... (a `State`; 'unspecified' for none)."""
    return str(STATE_FROM_PROTO.get(state, "unspecified"))


def stage_name(stage: int) -> str:
    """'bundling', 'rendering', ... (a `Stage`; 'unspecified' for none)."""
    return str(STAGE_FROM_PROTO.get(stage, "unspecified"))


def format_name(value: int) -> str:
    """'mp4', 'webm' or 'gif'."""
    return enum_name(render_pb2.Format, value, "FORMAT_")


def quality_name(value: int) -> str:
    """'low', 'medium' or 'high'."""
    return enum_name(render_pb2.Quality, value, "QUALITY_")


def engine_name(value: int) -> str:
    """'ssr', 'lambda', 'auto'."""
    return enum_name(render_pb2.Engine, value, "ENGINE_")


def video_codec_name(value: int) -> str:
    """ "h264", "prores", ... ("-" when none: audio only)."""
    return enum_name(render_pb2.VideoCodec, value, "VIDEO_CODEC_") if value else "-"


def estimate_summary(estimate: render_service_pb2.EstimateRenderResponse) -> str:
    """Frames, engine, cost and budget of an estimate."""
    seconds = estimate.duration.ToTimedelta().total_seconds()
    cost = estimate.cost
    verdict = "within budget" if estimate.within_budget else "TOO EXPENSIVE"
    return (
        f"{estimate.width}x{estimate.height} at {estimate.fps} fps: "
        f"{estimate.frames_total} frames ({seconds:.1f} s) on {engine_name(estimate.engine)}"
        f" ({estimate.engine_reason})\n"
        f"estimated ${cost.total_usd:.4f} (compute ${cost.compute_usd:.4f},"
        f" storage ${cost.storage_usd:.4f}); maximum ${estimate.max_cost_usd:.2f}: {verdict}"
    )


def quota_summary(quota: render_service_pb2.GetQuotaResponse) -> str:
    """Daily and concurrent usage and the cost limit."""
    reset = f"{quota.reset_time.ToDatetime():%Y-%m-%d %H:%M} UTC"
    return (
        f"today    {quota.daily_used}/{quota.daily_limit} renders"
        f" ({quota.daily_remaining} left, resets {reset})\n"
        f"active   {quota.concurrent_active}/{quota.concurrent_limit}\n"
        f"max cost ${quota.max_cost_usd:.2f} per render"
    )


def render_summary(render: render_pb2.Render) -> str:
    """A few lines describing a render."""
    lines = [
        f"render   {render.render_id}",
        f"state    {state_name(render.state)}"
        + (
            f" ({stage_name(render.stage)}, {render.progress:.0%})"
            if STATE_FROM_PROTO.get(render.state) == State.RUNNING
            else ""
        ),
        f"project  {render.project_id}   format {format_name(render.format)}"
        f"   quality {quality_name(render.quality)}   engine {engine_name(render.engine)}",
        f"picture  {render.width}x{render.height} {render.fps or 30} fps"
        f"   codec {video_codec_name(render.video_codec)}"
        + ("   transparent" if render.transparent else ""),
        f"frames   {render.frames_total} ({render.frames_total / (render.fps or 30):.1f} s)"
        f"   scenes {render.scene_count}   estimated ${render.cost_estimate.total_usd:.4f}",
    ]
    if render.output_url:
        lines.append(f"output   {render.output_url}")
    if render.thumbnail_url:
        lines.append(f"thumb    {render.thumbnail_url}")
    if render.captions_url:
        lines.append(f"captions {render.captions_url}")
    if render.HasField("metadata"):
        meta = render.metadata
        lines.append(
            f"file     {meta.width}x{meta.height} {meta.codec} {meta.fps:g} fps, "
            f"{meta.duration.ToTimedelta().total_seconds():.2f} s, {meta.size_bytes / 1e6:.2f} MB"
        )
    if render.error.reason:
        lines.append(f"error    {render.error.reason}: {render.error.message}")
    if render.retry_count:
        lines.append(f"retries  {render.retry_count}")
    return "\n".join(lines)


def render_row(render: render_pb2.Render) -> str:
    """One table row of a render."""
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(render.create_time.seconds))
    return (
        f"{render.render_id}  {state_name(render.state):<10} {render.progress:>4.0%}  "
        f"{format_name(render.format):<5} {render.project_id[:24]:<24} {created}"
    )


class ProgressBar:
    """A one-line progress bar with stage, frames and ETA (plain lines when not a terminal)."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.started = time.monotonic()
        self.tty = stream.isatty()
        self.last_line = ""

    def update(self, event: progress_service_pb2.RenderEvent) -> None:
        """Draw the bar for an event."""
        progress = max(0.0, min(1.0, event.progress))
        filled = int(progress * self.width)
        stage = stage_name(event.stage)
        elapsed = time.monotonic() - self.started
        eta = f"ETA {elapsed / progress - elapsed:4.0f}s" if 0.02 < progress < 1 else "         "
        frames = (
            f"{event.frames_rendered}/{event.frames_total} frames" if event.frames_total else ""
        )
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {progress:4.0%} {stage:<9} {frames:<18} {eta}"
        if event.message:
            line += f"  {event.message}"
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self.last_line)))
        elif line != self.last_line:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last_line = line

    def note(self, text: str) -> None:
        """A line of its own above the bar (e.g. a gap in the events), marked with '!'."""
        if self.tty and self.last_line:
            self.stream.write("\n")
        self.stream.write(f"! {text}\n")
        if self.tty and self.last_line:
            self.stream.write(self.last_line)
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self.tty and self.last_line:
            self.stream.write("\n")
            self.stream.flush()


def print_json(message: Message) -> None:
    """Print a message as JSON on stdout."""
    print(as_json(message))
