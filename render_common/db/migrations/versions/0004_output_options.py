"""output options: shape, frame rate, codec, transparency, poster frame, captions sidecar

The request's output options (issue 17) and the chosen poster frame (issue 15) as columns,
so that listing, pricing and the engines read them without parsing the spec. The
soundtrack and the caption track travel in `spec` with the scenes (they are inputs of the
composition, like the scenes). Existing rows were all 16:9 at 30 fps in their quality's
default size; `width`, `height`, `resolution`, `video_codec` and `poster_frame` stay null
for them and readers derive those from `quality` and `format` as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 00:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "aspect_ratio",
    "resolution",
    "width",
    "height",
    "fps",
    "video_codec",
    "transparent",
    "poster_frame",
    "captions_key",
)


def upgrade() -> None:
    with op.batch_alter_table("video_renders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("aspect_ratio", sa.String(length=8), nullable=False, server_default="16:9")
        )
        batch_op.add_column(sa.Column("resolution", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("fps", sa.Integer(), nullable=False, server_default=sa.text("30"))
        )
        batch_op.add_column(sa.Column("video_codec", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("transparent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("poster_frame", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("captions_key", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("video_renders", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
