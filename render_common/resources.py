"""Conversions between render.v1 messages and the stored `video_renders` values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf import duration_pb2, timestamp_pb2
from render.v1 import render_pb2, render_service_pb2

from render_common.downloads import DownloadLinks
from render_common.output_shape import OutputShape
from render_common.poster import resolve_poster_frame
from render_common.pricing import FPS
from render_common.renders.record import Render, as_utc
from render_common.renders.states import Stage, State

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

    from render_common.renders.webhooks import SigningSecret

V = TypeVar("V", bound=int)

STATE_TO_PROTO: dict[str, render_pb2.Render.State.ValueType] = {
    state: render_pb2.Render.State.Value(f"STATE_{state.name}") for state in State
}
STATE_FROM_PROTO: dict[int, State] = {v: State(k) for k, v in STATE_TO_PROTO.items()}
STAGE_TO_PROTO: dict[str, render_pb2.Stage.ValueType] = {
    stage: render_pb2.Stage.Value(f"STAGE_{stage.name}") for stage in Stage
}
STAGE_FROM_PROTO: dict[int, Stage] = {v: Stage(k) for k, v in STAGE_TO_PROTO.items()}


def enum_maps(
    enum: _EnumTypeWrapper[V],
    prefix: str,
    *,
    unspecified: str | None = None,
    rename: Callable[[str], str] = str.lower,
) -> tuple[dict[str, V], dict[int, str]]:
    """A render.v1 enum's values by their stored names, and back: FORMAT_MP4 <-> "mp4"
    (the name after `prefix`, `rename`d). UNSPECIFIED has no name; with `unspecified`,
    the way back maps it to that."""
    to_proto = {
        rename(name.removeprefix(prefix)): value
        for name, value in enum.items()
        if name != f"{prefix}UNSPECIFIED"
    }
    from_proto: dict[int, str] = {}
    if unspecified is not None:
        from_proto[enum.Value(f"{prefix}UNSPECIFIED")] = unspecified
    from_proto.update((value, name) for name, value in to_proto.items())
    return to_proto, from_proto


FORMAT_TO_PROTO, FORMAT_FROM_PROTO = enum_maps(render_pb2.Format, "FORMAT_")
QUALITY_TO_PROTO, QUALITY_FROM_PROTO = enum_maps(render_pb2.Quality, "QUALITY_")
ENGINE_TO_PROTO, ENGINE_FROM_PROTO = enum_maps(render_pb2.Engine, "ENGINE_")
ASPECT_RATIO_TO_PROTO, ASPECT_RATIO_FROM_PROTO = enum_maps(
    render_pb2.AspectRatio, "ASPECT_RATIO_", unspecified="", rename=lambda n: n.replace("_", ":")
)
RESOLUTION_TO_PROTO, RESOLUTION_FROM_PROTO = enum_maps(
    render_pb2.Resolution, "RESOLUTION_", unspecified=""
)
VIDEO_CODEC_TO_PROTO, VIDEO_CODEC_FROM_PROTO = enum_maps(
    render_pb2.VideoCodec, "VIDEO_CODEC_", unspecified=""
)
# Captions without a style are boxed.
CAPTION_STYLE_TO_PROTO, CAPTION_STYLE_FROM_PROTO = enum_maps(
    render_pb2.CaptionStyle, "CAPTION_STYLE_", unspecified="boxed"
)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf Timestamp, or None."""
    aware = as_utc(value)
    if aware is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(aware)
    return stamp


def seconds_duration(seconds: float) -> duration_pb2.Duration:
    """A protobuf Duration of `seconds`."""
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def cost_message(cost: Mapping[str, Any] | None) -> render_pb2.Cost | None:
    """A Cost from its stored JSON form."""
    if not cost:
        return None
    return render_pb2.Cost(
        total_usd=float(cost.get("total_usd", 0.0)),
        compute_usd=float(cost.get("compute_usd", 0.0)),
        storage_usd=float(cost.get("storage_usd", 0.0)),
    )


def render_message(record: Render, links: DownloadLinks) -> render_pb2.Render:
    """A render.v1.Render from a render record, with fresh download links."""
    render = render_pb2.Render(
        render_id=record.id,
        user_id=record.user_id,
        project_id=record.project_id,
        state=STATE_TO_PROTO[record.status],
        format=FORMAT_TO_PROTO[record.format],
        quality=QUALITY_TO_PROTO[record.quality],
        engine=ENGINE_TO_PROTO[record.engine],
        request_id=record.request_id or "",
        stage=STAGE_TO_PROTO[record.stage],
        progress=record.progress,
        frames_total=record.frames_total,
        scene_count=record.scene_count,
        output_url=links.output_url(record),
        thumbnail_url=links.thumbnail_url(record),
        captions_url=links.captions_url(record),
        retry_count=record.retry_count,
        queue_job_id=record.queue_job_id or "",
        poster_frame=resolve_poster_frame(record.poster_frame, record.frames_total, record.fps),
    )
    set_shape(render, record.shape)
    if record.metadata:
        render.metadata.CopyFrom(output_metadata(record.metadata))
    soundtrack = record.soundtrack
    if soundtrack:
        render.soundtrack.CopyFrom(soundtrack_message(soundtrack))
    _set_outcome(render, record)
    _set_times(
        render,
        create_time=record.created_at,
        start_time=record.started_at,
        complete_time=record.completed_at,
        update_time=record.updated_at,
    )
    if record.client_metadata:
        render.client_metadata.update(record.client_metadata)
    if record.webhook_url:
        render.webhook.url = record.webhook_url
    if record.webhook_state:
        render.webhook_delivery.CopyFrom(webhook_delivery(record))
    return render


def _set_outcome(render: render_pb2.Render, record: Render) -> None:
    """The error, the costs and where the Lambda render is, when known."""
    if record.status == State.FAILED or record.error_reason:
        render.error.CopyFrom(
            render_pb2.RenderError(
                reason=record.error_reason or "",
                message=record.error_message or "",
                retryable=bool(record.error_retryable),
            )
        )
    estimate = cost_message(record.cost_estimate)
    if estimate is not None:
        render.cost_estimate.CopyFrom(estimate)
    actual = cost_message(record.cost_actual)
    if actual is not None:
        render.cost_actual.CopyFrom(actual)
    if record.lambda_render_id:
        render.lambda_details.CopyFrom(
            render_pb2.LambdaDetails(
                render_id=record.lambda_render_id,
                function_name=record.lambda_function_name or "",
                bucket_name=record.lambda_bucket_name or "",
            )
        )


def output_metadata(meta: Mapping[str, Any]) -> render_pb2.OutputMetadata:
    """The probed output as OutputMetadata, from its stored JSON form."""
    return render_pb2.OutputMetadata(
        duration=seconds_duration(float(meta.get("duration", 0.0))),
        size_bytes=int(meta.get("fileSize", 0)),
        width=int(meta.get("resolution", {}).get("width", 0)),
        height=int(meta.get("resolution", {}).get("height", 0)),
        fps=float(meta.get("fps", 0.0)),
        codec=str(meta.get("codec", "")),
        bitrate_bps=int(meta.get("bitrate", 0) or 0),
        audio_codec=str(meta.get("audioCodec") or ""),
        audio_sample_rate_hz=int(meta.get("audioSampleRate", 0) or 0),
        audio_channels=int(meta.get("audioChannels", 0) or 0),
    )


# A soundtrack's fields: render.v1.Soundtrack's name, the stored (composition prop) name,
# and the default, whose type is the stored value's.
SOUNDTRACK_FIELDS: tuple[tuple[str, str, str | float | bool], ...] = (
    ("src", "src", ""),
    ("volume", "volume", 1.0),
    ("fade_in_seconds", "fadeInSeconds", 0.0),
    ("fade_out_seconds", "fadeOutSeconds", 0.0),
    ("start_from_seconds", "startFromSeconds", 0.0),
    ("loop", "loop", False),
)


def soundtrack_props(track: render_pb2.Soundtrack) -> dict[str, Any]:
    """A request's soundtrack in its stored (composition) form; an unset volume is 1."""
    props = {key: getattr(track, name) for name, key, _ in SOUNDTRACK_FIELDS}
    if not track.HasField("volume"):
        props["volume"] = 1.0
    return props


def soundtrack_message(stored: Mapping[str, Any]) -> render_pb2.Soundtrack:
    """The request's soundtrack from its stored (composition) form."""
    fields: dict[str, Any] = {
        name: type(default)(stored.get(key, default)) for name, key, default in SOUNDTRACK_FIELDS
    }
    return render_pb2.Soundtrack(**fields)


def _set_times(message: Any, **values: datetime | None) -> None:
    """Set Timestamp fields of `message` from datetimes, when set."""
    for field, value in values.items():
        aware = as_utc(value)
        if aware is not None:
            getattr(message, field).FromDatetime(aware)


WEBHOOK_STATE_TO_PROTO: dict[str, render_pb2.WebhookDelivery.State.ValueType] = {
    "pending": render_pb2.WebhookDelivery.STATE_PENDING,
    "delivered": render_pb2.WebhookDelivery.STATE_DELIVERED,
    "failed": render_pb2.WebhookDelivery.STATE_FAILED,
}


def webhook_id(render_id: str) -> str:
    """The `webhook-id` of a render's terminal event: one per render, on every attempt."""
    return "msg_" + render_id.replace("-", "")


def webhook_delivery(record: Render) -> render_pb2.WebhookDelivery:
    """The delivery record of a render's webhook."""
    delivery = render_pb2.WebhookDelivery(
        webhook_id=webhook_id(record.id),
        state=WEBHOOK_STATE_TO_PROTO.get(
            record.webhook_state or "", render_pb2.WebhookDelivery.STATE_UNSPECIFIED
        ),
        attempts=record.webhook_attempts,
        last_status_code=record.webhook_last_status or 0,
        last_error=record.webhook_last_error or "",
    )
    _set_times(
        delivery,
        last_attempt_time=record.webhook_last_attempt_at,
        next_attempt_time=record.webhook_next_at,
        deliver_time=record.webhook_delivered_at,
    )
    return delivery


def frames_duration(frames: int, fps: int = FPS) -> duration_pb2.Duration:
    """Playing time of `frames` at `fps`."""
    return seconds_duration(frames / fps)


def set_shape(
    message: render_pb2.Render | render_service_pb2.EstimateRenderResponse, shape: OutputShape
) -> None:
    """Echo a resolved output shape: size and fps on both; the choices on a Render."""
    message.width = shape.width
    message.height = shape.height
    message.fps = shape.fps
    if isinstance(message, render_pb2.Render):
        message.aspect_ratio = ASPECT_RATIO_TO_PROTO[shape.aspect_ratio]
        message.resolution = RESOLUTION_TO_PROTO[shape.resolution]
        message.video_codec = VIDEO_CODEC_TO_PROTO.get(
            shape.video_codec, render_pb2.VIDEO_CODEC_UNSPECIFIED
        )
        message.transparent = shape.transparent


def secret_message(found: SigningSecret, now: datetime) -> render_service_pb2.WebhookSecret:
    """A user's signing secret as a render.v1.WebhookSecret (the previous one while it signs)."""
    message = render_service_pb2.WebhookSecret(secret=found.secret)
    previous_expires_at = None
    if len(found.in_force(now)) > 1:
        message.previous_secret = found.previous_secret or ""
        previous_expires_at = found.previous_expires_at
    _set_times(message, create_time=found.created_at, previous_expire_time=previous_expires_at)
    return message
