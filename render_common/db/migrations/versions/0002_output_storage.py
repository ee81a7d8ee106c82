"""output storage: where a render's objects are, so download links are signed when read

Adds `storage` (local | s3 | lambda) and `storage_location` (the local root directory, or
the bucket); with the existing `output_key` / `thumbnail_key` they say where the output
and thumbnail are, and render_common/downloads.py makes the links each time a render is
read. Existing rows that carry a key are matched to it from their stored URL:

- a `file://` URL ending in the key: local storage, the root is the URL's directory;
- a presigned http(s) URL (SigV4 or SigV2 query) whose path ends in the key: our S3
  bucket, taken from the path (path style) or the host (virtual-hosted style).

Matched rows keep their stored URL (readers no longer use it; a downgrade finds it again).
Rows that cannot be matched (Lambda outputs, URLs of another form) keep returning their
stored URL. New rows store no URL that expires, so downgrade writes back the `file://`
URLs of local rows; new S3 and private Lambda rows are left without one (a URL signed
here would expire).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import url2pathname

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+?)\.s3[.-]")
_SIGNATURE_PARAMS = ("X-Amz-Signature", "Signature")

renders = sa.table(
    "video_renders",
    sa.column("id", sa.String),
    sa.column("output_url", sa.Text),
    sa.column("output_key", sa.Text),
    sa.column("thumbnail_url", sa.Text),
    sa.column("thumbnail_key", sa.Text),
    sa.column("storage", sa.String),
    sa.column("storage_location", sa.Text),
)


def local_root(url: str, key: str) -> str | None:
    """The root directory of a `file://` URL of `key`, or None."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    path = url2pathname(parts.path)
    suffix = "/" + key
    return path[: -len(suffix)] if path.endswith(suffix) and len(path) > len(suffix) else None


def presigned_bucket(url: str, key: str) -> str | None:
    """The bucket of a presigned S3 GET URL of `key`, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    if not any(name in parse_qs(parts.query) for name in _SIGNATURE_PARAMS):
        return None
    path = unquote(parts.path)
    if path == "/" + key:  # virtual-hosted style: bucket.s3[.region].amazonaws.com
        match = _VIRTUAL_HOST.match(parts.hostname or "")
        return match.group("bucket") if match else None
    suffix = "/" + key
    if path.endswith(suffix):  # path style: endpoint/bucket/key
        bucket = path[1 : -len(suffix)]
        return bucket if bucket and "/" not in bucket else None
    return None


def upgrade() -> None:
    with op.batch_alter_table("video_renders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("storage_location", sa.Text(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(renders.c.id, renders.c.output_url, renders.c.output_key).where(
            renders.c.output_key.is_not(None), renders.c.output_url.is_not(None)
        )
    ).all()
    for render_id, url, key in rows:
        root = local_root(url, key)
        bucket = None if root is not None else presigned_bucket(url, key)
        if root is None and bucket is None:
            continue  # keeps its stored URL
        connection.execute(
            renders.update()
            .where(renders.c.id == render_id)
            .values(
                storage="local" if root is not None else "s3",
                storage_location=root if root is not None else bucket,
            )
        )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            renders.c.id,
            renders.c.storage_location,
            renders.c.output_key,
            renders.c.thumbnail_key,
        ).where(renders.c.storage == "local", renders.c.output_url.is_(None))
    ).all()
    for render_id, root, output_key, thumbnail_key in rows:
        connection.execute(
            renders.update()
            .where(renders.c.id == render_id)
            .values(
                output_url=(Path(root) / output_key).as_uri() if output_key else None,
                thumbnail_url=(Path(root) / thumbnail_key).as_uri() if thumbnail_key else None,
            )
        )
    with op.batch_alter_table("video_renders", schema=None) as batch_op:
        batch_op.drop_column("storage_location")
        batch_op.drop_column("storage")
