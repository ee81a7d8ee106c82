"""Conversions between render.v1 messages and the stored `video_renders` values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from google.protobuf import duration_pb2, timestamp_pb2
from render.v1 import render_pb2, render_service_pb2

from render_common.downloads import DownloadLinks
from render_common.pricing import FPS

if TYPE_CHECKING:
    from render_common.db.webhooks import SigningSecret

STATE_TO_PROTO: dict[str, int] = {
    "queued": render_pb2.Render.STATE_QUEUED,
    "running": render_pb2.Render.STATE_RUNNING,
    "succeeded": render_pb2.Render.STATE_SUCCEEDED,
    "failed": render_pb2.Render.STATE_FAILED,
    "cancelled": render_pb2.Render.STATE_CANCELLED,
}
STATE_FROM_PROTO = {v: k for k, v in STATE_TO_PROTO.items()}
STAGE_TO_PROTO: dict[str, int] = {
    "queued": render_pb2.STAGE_QUEUED,
    "bundling": render_pb2.STAGE_BUNDLING,
    "rendering": render_pb2.STAGE_RENDERING,
    "encoding": render_pb2.STAGE_ENCODING,
    "uploading": render_pb2.STAGE_UPLOADING,
    "done": render_pb2.STAGE_DONE,
}
FORMAT_TO_PROTO: dict[str, int] = {
    "mp4": render_pb2.FORMAT_MP4,
    "webm": render_pb2.FORMAT_WEBM,
    "gif": render_pb2.FORMAT_GIF,
}
FORMAT_FROM_PROTO = {v: k for k, v in FORMAT_TO_PROTO.items()}
QUALITY_TO_PROTO: dict[str, int] = {
    "low": render_pb2.QUALITY_LOW,
    "medium": render_pb2.QUALITY_MEDIUM,
    "high": render_pb2.QUALITY_HIGH,
}
QUALITY_FROM_PROTO = {v: k for k, v in QUALITY_TO_PROTO.items()}
ENGINE_TO_PROTO: dict[str, int] = {
    "auto": render_pb2.ENGINE_AUTO,
    "ssr": render_pb2.ENGINE_SSR,
    "lambda": render_pb2.ENGINE_LAMBDA,
}
ENGINE_FROM_PROTO = {v: k for k, v in ENGINE_TO_PROTO.items()}


def as_utc(value: datetime | None) -> datetime | None:
    """Stored datetimes as aware UTC (SQLite hands them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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


def render_message(row: Mapping[str, Any], links: DownloadLinks) -> render_pb2.Render:
    """A render.v1.Render from a `video_renders` row mapping, with fresh download links."""
    render = render_pb2.Render(
        render_id=row["id"],
        user_id=row["user_id"],
        project_id=row["project_id"],
        state=STATE_TO_PROTO[row["status"]],  # type: ignore[arg-type]
        format=FORMAT_TO_PROTO[row["format"]],  # type: ignore[arg-type]
        quality=QUALITY_TO_PROTO[row["quality"]],  # type: ignore[arg-type]
        engine=ENGINE_TO_PROTO[row["engine"]],  # type: ignore[arg-type]
        request_id=row["request_id"] or "",
        stage=STAGE_TO_PROTO.get(row["stage"], render_pb2.STAGE_UNSPECIFIED),  # type: ignore[arg-type]
        progress=float(row["progress"] or 0.0),
        frames_total=int(row["frames_total"]),
        scene_count=int(row["scene_count"]),
        output_url=links.output_url(row),
        thumbnail_url=links.thumbnail_url(row),
        retry_count=int(row["retry_count"] or 0),
        queue_job_id=row["queue_job_id"] or "",
    )
    meta = row["metadata"]
    if meta:
        render.metadata.CopyFrom(
            render_pb2.OutputMetadata(
                duration=seconds_duration(float(meta.get("duration", 0.0))),
                size_bytes=int(meta.get("fileSize", 0)),
                width=int(meta.get("resolution", {}).get("width", 0)),
                height=int(meta.get("resolution", {}).get("height", 0)),
                fps=float(meta.get("fps", 0.0)),
                codec=str(meta.get("codec", "")),
                bitrate_bps=int(meta.get("bitrate", 0) or 0),
            )
        )
    if row["status"] == "failed" or row["error_reason"]:
        render.error.CopyFrom(
            render_pb2.RenderError(
                reason=row["error_reason"] or "",
                message=row["error_message"] or "",
                retryable=bool(row["error_retryable"]),
            )
        )
    estimate = cost_message(row["cost_estimate"])
    if estimate is not None:
        render.cost_estimate.CopyFrom(estimate)
    actual = cost_message(row["cost_actual"])
    if actual is not None:
        render.cost_actual.CopyFrom(actual)
    if row["lambda_render_id"]:
        render.lambda_details.CopyFrom(
            render_pb2.LambdaDetails(
                render_id=row["lambda_render_id"],
                function_name=row["lambda_function_name"] or "",
                bucket_name=row["lambda_bucket_name"] or "",
            )
        )
    _set_times(
        render,
        row,
        create_time="created_at",
        start_time="started_at",
        complete_time="completed_at",
        update_time="updated_at",
    )
    # .get: rows built before these columns existed (tests, hand-made rows) lack them.
    if row.get("client_metadata"):
        render.client_metadata.update(row["client_metadata"])
    if row.get("webhook_url"):
        render.webhook.url = row["webhook_url"]
    if row.get("webhook_state"):
        render.webhook_delivery.CopyFrom(webhook_delivery(row))
    return render


def _set_times(message: Any, row: Mapping[str, Any], **columns: str) -> None:
    """Set Timestamp fields of `message` from the row's datetime columns, when set."""
    for field, column in columns.items():
        stamp = timestamp(row[column])
        if stamp is not None:
            getattr(message, field).CopyFrom(stamp)


WEBHOOK_STATE_TO_PROTO: dict[str, int] = {
    "pending": render_pb2.WebhookDelivery.STATE_PENDING,
    "delivered": render_pb2.WebhookDelivery.STATE_DELIVERED,
    "failed": render_pb2.WebhookDelivery.STATE_FAILED,
}


def webhook_id(render_id: str) -> str:
    """The `webhook-id` of a render's terminal event: one per render, on every attempt."""
    return "msg_" + render_id.replace("-", "")


def webhook_delivery(row: Mapping[str, Any]) -> render_pb2.WebhookDelivery:
    """The delivery record of a render's webhook."""
    delivery = render_pb2.WebhookDelivery(
        webhook_id=webhook_id(row["id"]),
        state=WEBHOOK_STATE_TO_PROTO.get(  # type: ignore[arg-type]
            row["webhook_state"], render_pb2.WebhookDelivery.STATE_UNSPECIFIED
        ),
        attempts=int(row["webhook_attempts"] or 0),
        last_status_code=int(row["webhook_last_status"] or 0),
        last_error=row["webhook_last_error"] or "",
    )
    _set_times(
        delivery,
        row,
        last_attempt_time="webhook_last_attempt_at",
        next_attempt_time="webhook_next_at",
        deliver_time="webhook_delivered_at",
    )
    return delivery


def frames_duration(frames: int) -> duration_pb2.Duration:
    """Playing time of `frames` at 30 fps."""
    return seconds_duration(frames / FPS)


def secret_message(found: SigningSecret, now: datetime) -> render_service_pb2.WebhookSecret:
    """A user's signing secret as a render.v1.WebhookSecret (the previous one while it signs)."""
    message = render_service_pb2.WebhookSecret(secret=found.secret)
    times: dict[str, datetime | None] = {"created_at": found.created_at}
    if len(found.in_force(now)) > 1:
        message.previous_secret = found.previous_secret or ""
        times["previous_expires_at"] = found.previous_expires_at
    else:
        times["previous_expires_at"] = None
    _set_times(message, times, create_time="created_at", previous_expire_time="previous_expires_at")
    return message
