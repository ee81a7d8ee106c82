"""caller webhooks: metadata and webhook on renders, delivery record, per-user secrets

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("webhook_state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("video_renders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_metadata", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("webhook_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("webhook_state", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        for name in (
            "webhook_next_at",
            "webhook_lease_until",
            "webhook_last_attempt_at",
            "webhook_delivered_at",
        ):
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("webhook_claim", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("webhook_last_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("webhook_last_error", sa.Text(), nullable=True))
        batch_op.create_index(
            "webhook_pending_idx",
            ["webhook_next_at"],
            unique=False,
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        )
    op.create_table(
        "webhook_secrets",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret", sa.String(length=128), nullable=True),
        sa.Column("previous_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_webhook_secrets")),
    )


def downgrade() -> None:
    op.drop_table("webhook_secrets")
    with op.batch_alter_table("video_renders", schema=None) as batch_op:
        batch_op.drop_index("webhook_pending_idx")
        for name in (
            "webhook_last_error",
            "webhook_last_status",
            "webhook_claim",
            "webhook_delivered_at",
            "webhook_last_attempt_at",
            "webhook_lease_until",
            "webhook_next_at",
            "webhook_attempts",
            "webhook_state",
            "webhook_url",
            "client_metadata",
        ):
            batch_op.drop_column(name)
