"""The `video_renders` table (the seed's schema plus engine, idempotency, progress, cost).

SQLAlchemy Core: the intake hot path inserts through Core, which is several times faster
than the ORM on these machines (see ARCHITECTURE.md, performance bars).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from render_common.renders.states import Stage, State

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Delivery of a caller's webhook (`webhook_state`): pending until the render has ended and
# a 2xx answer came, delivered, or failed for good.
WEBHOOK_PENDING = "pending"
WEBHOOK_DELIVERED = "delivered"
WEBHOOK_FAILED = "failed"

video_renders = Table(
    "video_renders",
    metadata,
    Column("id", String(36), primary_key=True),
    # User and project.
    Column("user_id", String(255), nullable=False),
    Column("project_id", String(128), nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("request_hash", String(64), nullable=True),
    # Render details.
    Column("status", String(16), nullable=False, default=State.QUEUED),
    Column("stage", String(16), nullable=False, default=Stage.QUEUED),
    Column("progress", Float, nullable=False, default=0.0),
    Column("format", String(10), nullable=False),
    Column("quality", String(10), nullable=False),
    Column("engine", String(10), nullable=False),
    Column("requested_engine", String(10), nullable=False),
    Column("spec", JSON, nullable=False),  # {"scenes": [...]} as validated at intake
    Column("scene_count", Integer, nullable=False),
    Column("frames_total", Integer, nullable=False),
    # Queue details (both engines).
    Column("queue_job_id", String(64), nullable=True),
    Column("attempt", Integer, nullable=False, default=0),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("worker_id", String(128), nullable=True),
    # Lambda details (null for SSR).
    Column("lambda_render_id", String(255), nullable=True),
    Column("lambda_function_name", String(255), nullable=True),
    Column("lambda_bucket_name", String(255), nullable=True),
    # Output: the keys, and (below, `storage`) where they are. A URL is stored only when it
    # never expires (a public Lambda output) or for rows from before migration 0002.
    Column("output_url", Text, nullable=True),
    Column("output_key", Text, nullable=True),
    Column("thumbnail_url", Text, nullable=True),
    Column("thumbnail_key", Text, nullable=True),
    Column("metadata", JSON, nullable=True),
    # Errors.
    Column("error_reason", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("error_stack", Text, nullable=True),
    Column("error_retryable", Boolean, nullable=True),
    # Cost.
    Column("cost_estimate", JSON, nullable=True),
    Column("cost_estimate_usd", Float, nullable=True),
    Column("cost_actual", JSON, nullable=True),
    # Timestamps (UTC).
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Where the output and thumbnail keys are (render_common/downloads.py makes the links
    # when a render is read): `storage` local | s3 | lambda, `storage_location` the local
    # root directory or the bucket. Last, where migration 0002 adds them, so that the model's
    # column order is the table's.
    Column("storage", String(16), nullable=True),
    Column("storage_location", Text, nullable=True),
    # Migration 0003: the caller's metadata (StartRender `metadata`, echoed back), webhook.
    Column("client_metadata", JSON, nullable=True),
    Column("webhook_url", Text, nullable=True),
    # Webhook delivery (render_common/renders/webhooks.py; null state: no webhook).
    Column("webhook_state", String(16), nullable=True),
    Column("webhook_attempts", Integer, nullable=False, default=0, server_default=text("0")),
    Column("webhook_next_at", DateTime(timezone=True), nullable=True),
    Column("webhook_lease_until", DateTime(timezone=True), nullable=True),
    Column("webhook_claim", String(36), nullable=True),
    Column("webhook_last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("webhook_last_status", Integer, nullable=True),
    Column("webhook_last_error", Text, nullable=True),
    Column("webhook_delivered_at", DateTime(timezone=True), nullable=True),
    # Migration 0004: output options (null width/height/resolution/video_codec on older
    # rows: derived from quality and format); soundtrack and captions travel in `spec`.
    Column("aspect_ratio", String(8), nullable=False, default="16:9", server_default="16:9"),
    Column("resolution", String(8), nullable=True),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("fps", Integer, nullable=False, default=30, server_default=text("30")),
    Column("video_codec", String(16), nullable=True),
    Column("transparent", Boolean, nullable=False, default=False, server_default=false()),
    Column("poster_frame", Integer, nullable=True),
    Column("captions_key", Text, nullable=True),
    # Seed indexes (the seed's user_id_idx is dropped by migration 0005: the indexes below
    # start with user_id; 0005 also sets fillfactor 85 on PostgreSQL, for HOT updates).
    Index("status_created_at_idx", "status", "created_at"),
    Index("project_id_idx", "project_id"),
    # Listing newest first, per user; quota counts.
    Index("user_created_idx", "user_id", "created_at", "id"),
    Index("user_status_idx", "user_id", "status"),
    # Idempotency key (AIP-155): unique per user.
    UniqueConstraint("user_id", "request_id", name="uq_video_renders_user_request"),
    # Deliveries still to make: only pending rows are indexed (a handful at any time).
    Index(
        "webhook_pending_idx",
        "webhook_next_at",
        postgresql_where=text("webhook_state = 'pending'"),
        sqlite_where=text("webhook_state = 'pending'"),
    ),
)

# Per-user webhook signing secrets (Standard Webhooks `whsec_...`), created on first use.
# During a rotation's grace period the previous secret signs too.
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("secret", String(128), nullable=False),
    Column("previous_secret", String(128), nullable=True),
    Column("previous_expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
