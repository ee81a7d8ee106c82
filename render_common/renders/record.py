"""`Render`: one `video_renders` row as a frozen, typed record.

Built from a row mapping (`Render.from_row`) by the database layer; the services read its
attributes instead of looking up dict keys, and render_common.resources builds the
render.v1.Render message from it. Columns the record does not name are ignored.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from render_common.output_shape import OutputShape, default_shape
from render_common.renders.states import ACTIVE, TERMINAL, Stage, State


def as_utc(value: datetime | None) -> datetime | None:
    """Stored datetimes as aware UTC (SQLite hands them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Where the Lambda render behind an attempt is: a later worker follows it from these, and a
# retry (a new attempt) clears them.
LAMBDA_COLUMNS = ("lambda_render_id", "lambda_function_name", "lambda_bucket_name")


@dataclass(frozen=True, slots=True)
class Render:
    """A render as stored: identity, state, request, queue, outputs, errors, cost, times."""

    id: str
    user_id: str
    project_id: str
    status: State
    stage: Stage
    format: str
    quality: str
    engine: str
    created_at: datetime
    updated_at: datetime
    request_id: str | None = None
    request_hash: str | None = None
    progress: float = 0.0
    requested_engine: str = "default"
    # {"scenes": [...], "soundtrack"?: {...}, "captions"?: {...}} as validated at intake
    spec: Mapping[str, Any] | None = None
    scene_count: int = 0
    frames_total: int = 0
    queue_job_id: str | None = None
    attempt: int = 0
    retry_count: int = 0
    cancel_requested: bool = False
    worker_id: str | None = None
    lambda_render_id: str | None = None
    lambda_function_name: str | None = None
    lambda_bucket_name: str | None = None
    output_url: str | None = None
    output_key: str | None = None
    thumbnail_url: str | None = None
    thumbnail_key: str | None = None
    captions_key: str | None = None  # the .vtt sidecar, beside the output (migration 0004)
    storage: str | None = None  # where the keys are: local | s3 | lambda (downloads.py)
    storage_location: str | None = None  # the local root directory or the bucket
    metadata: Mapping[str, Any] | None = None
    error_reason: str | None = None
    error_message: str | None = None
    error_stack: str | None = None
    error_retryable: bool | None = None
    cost_estimate: Mapping[str, Any] | None = None
    cost_estimate_usd: float | None = None
    cost_actual: Mapping[str, Any] | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # The caller's metadata and webhook (migration 0003), and the webhook's delivery
    # (render_common/renders/webhooks.py).
    client_metadata: Mapping[str, Any] | None = None
    webhook_url: str | None = None
    webhook_state: str | None = None
    webhook_attempts: int = 0
    webhook_next_at: datetime | None = None
    webhook_lease_until: datetime | None = None
    webhook_claim: str | None = None
    webhook_last_attempt_at: datetime | None = None
    webhook_last_status: int | None = None
    webhook_last_error: str | None = None
    webhook_delivered_at: datetime | None = None
    poster_frame: int | None = None  # the thumbnail's frame (migration 0004; null: default)
    # The output's shape (migration 0004); older rows have no width, height, resolution
    # or codec, and take their quality's and format's defaults (see `shape`).
    aspect_ratio: str = "16:9"
    resolution: str | None = None
    width: int | None = None
    height: int | None = None
    fps: int = 30
    video_codec: str | None = None
    transparent: bool = False

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Render:
        """The record of a row mapping (a SELECT of `video_renders`, or an inserted row).

        Columns the row lacks take the record's defaults, NULL numbers zero. Built field by
        field through the slots (a 50-keyword __init__ of a frozen dataclass costs several
        times more, on StartRender's hot path).
        """
        render = _new(cls)
        get = row.get
        for name, default, convert, setter in _SETTERS:
            value = get(name, default)
            if convert is not None:
                value = convert(value)
            setter(render, value)
        return render

    def with_values(self, **values: Any) -> Render:
        """A copy with `values` changed, as `dataclasses.replace` (same values, no
        conversion) but copied through the slots: replace's 61-keyword __init__ cost
        several times more on StartRender's hot path (the entry id set after the XADD)."""
        unknown = values.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"Render has no fields {sorted(unknown)}")
        copy = _new(Render)
        for (name, _, _, setter), value in zip(_SETTERS, _ALL_FIELDS(self), strict=True):
            setter(copy, values.get(name, value))
        return copy

    @property
    def terminal(self) -> bool:
        """Whether the render has ended (it will not change again)."""
        return self.status in TERMINAL

    @property
    def active(self) -> bool:
        """Whether the render is queued or running."""
        return self.status in ACTIVE

    @property
    def scenes(self) -> list[dict[str, Any]]:
        """The validated scenes of the request."""
        return list((self.spec or {}).get("scenes", []))

    @property
    def soundtrack(self) -> dict[str, Any] | None:
        """The validated soundtrack (composition props), if the request had one."""
        found = (self.spec or {}).get("soundtrack")
        return dict(found) if found else None

    @property
    def captions(self) -> dict[str, Any] | None:
        """The validated caption track ({"cues", "style", "burn"}), if the request had one."""
        found = (self.spec or {}).get("captions")
        return dict(found) if found else None

    @property
    def shape(self) -> OutputShape:
        """The output's resolved shape (the defaults of its quality for older rows)."""
        if not (self.width and self.height and self.resolution):
            return default_shape(self.format, self.quality)
        return OutputShape(
            self.aspect_ratio or "16:9",
            self.resolution,
            self.width,
            self.height,
            self.fps or 30,
            self.video_codec or "",
            transparent=bool(self.transparent),
        )

    @property
    def lambda_details(self) -> dict[str, str]:
        """Where the Lambda render behind the current attempt is (set columns only)."""
        return {name: getattr(self, name) for name in LAMBDA_COLUMNS if getattr(self, name)}


def _time(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is UTC else as_utc(value)


def _number(value: Any) -> Any:
    return value or 0


_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "status": {str(state): state for state in State}.__getitem__,
    "stage": {str(stage): stage for stage in Stage}.__getitem__,
    "progress": lambda value: float(value or 0.0),
    **{name: _number for name in ("scene_count", "frames_total", "attempt")},
    **{name: _number for name in ("retry_count", "webhook_attempts")},
}
_new = object.__new__
_SETTERS: tuple[tuple[str, Any, Callable[[Any], Any] | None, Callable[[Any, Any], None]], ...] = (
    tuple(
        (
            field.name,
            None if field.default is MISSING else field.default,
            _time if field.name.endswith(("_at", "_until")) else _CONVERSIONS.get(field.name),
            Render.__dict__[field.name].__set__,
        )
        for field in fields(Render)
    )
)
_FIELD_NAMES = frozenset(name for name, _, _, _ in _SETTERS)
_ALL_FIELDS = operator.attrgetter(*(name for name, _, _, _ in _SETTERS))
