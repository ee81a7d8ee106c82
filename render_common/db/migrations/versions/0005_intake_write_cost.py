"""intake write cost: drop the redundant user_id index, leave room for HOT updates

StartRender inserts a row, then records its queue entry id (`queue_job_id`, not indexed)
with an UPDATE. Measured per admit on PostgreSQL 15 (64 inserts, then their 64 updates,
as under 64 calls in flight):

- `user_id_idx` repeats the first column of `user_created_idx`, `user_status_idx` and
  the (user_id, request_id) unique constraint, which serve every query by user: dropping
  it takes 79 of the insert's 1,117 WAL bytes (7%) and one index insertion per render;
- with the default fillfactor (100) a page filled by the batch's inserts has no room for
  its rows' new versions, so 9-13% of those updates were not HOT and wrote an entry into
  every index; fillfactor 85 leaves room: 99-100% HOT, an update's WAL 107 -> 90 bytes.
  Lease heartbeats (progress, updated_at: no indexed column) gain the same way.

The fillfactor applies to pages written from now on. SQLite has neither setting: there
only the index is dropped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 04:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 85


def upgrade() -> None:
    op.drop_index("user_id_idx", table_name="video_renders")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE video_renders SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE video_renders RESET (fillfactor)")
    op.create_index("user_id_idx", "video_renders", ["user_id"], unique=False)
