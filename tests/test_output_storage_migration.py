"""Migration 0002 (output storage) upgrades and downgrades on SQLite and PostgreSQL, and
matches rows written before it (stored URLs only) to their keys where it can."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import column, inspect, select, table, text
from sqlalchemy.engine import Connection

from render_common.config import Settings
from render_common.db.engine import create_engine
from render_common.db.schema import video_renders
from render_common.downloads import DownloadLinks
from render_common.renders.record import Render
from tests.support.links import OUTPUT_COLUMNS, row_values
from tests.support.migrations import execute, migrate

NEW_COLUMNS = ("storage", "storage_location")


def columns(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:

                def names(sync: Connection) -> set[str]:
                    return {c["name"] for c in inspect(sync).get_columns("video_renders")}

                return await connection.run_sync(names)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def insert_old_rows(url: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows through the 0001 schema (no storage columns)."""
    old_table = table(
        "video_renders",
        *(column(c.name, c.type) for c in video_renders.columns if c.name not in NEW_COLUMNS),
    )
    values = [{k: v for k, v in row.items() if k not in NEW_COLUMNS} for row in rows]
    execute(url, old_table.insert(), values)


def by_id(url: str) -> dict[str, Any]:
    return {row["id"]: row for row in execute(url, select(video_renders))}


LAMBDA_URL = "https://s3.us-east-1.amazonaws.com/remotionlambda-x/renders/abc/out.mp4"


def old_outputs(root: Path, ids: dict[str, str]) -> dict[str, dict[str, str]]:
    """Output columns as rows before 0002 held them: a local file, S3 path-style and
    virtual-host URLs, a Lambda URL without a key, a URL elsewhere with a key."""
    local_key = f"renders/p/{ids['local']}.mp4"
    path_key = f"videos/renders/p/{ids['path']} ü.mp4"
    virtual_key = f"renders/p/{ids['virtual']}.webm"
    return {
        "local": {
            "output_url": (root / local_key).as_uri(),
            "output_key": local_key,
            "thumbnail_url": (root / local_key[:-3]).as_uri() + "jpg",
            "thumbnail_key": local_key[:-3] + "jpg",
        },
        "path": {
            "output_url": f"http://127.0.0.1:9000/exports/{quote(path_key)}"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=604800&X-Amz-Signature=ab12",
            "output_key": path_key,
        },
        "virtual": {
            "output_url": f"https://my.exports.s3.eu-west-1.amazonaws.com/{virtual_key}"
            "?AWSAccessKeyId=AKID&Signature=xyz%3D&Expires=1700000000",
            "output_key": virtual_key,
        },
        "lambda": {"output_url": LAMBDA_URL},
        "other": {"output_url": "https://cdn.example/elsewhere.mp4", "output_key": "renders/x.mp4"},
    }


def check_upgraded(
    url: str, ids: dict[str, str], old: dict[str, dict[str, str]], root: Path, tmp_path: Path
) -> None:
    """0002 matched each old row to its storage where the URL tells it, and links read
    from the keys are the URLs the rows had."""
    assert set(NEW_COLUMNS) <= columns(url)
    rows = by_id(url)
    storage = {
        name: (rows[ids[name]]["storage"], rows[ids[name]]["storage_location"]) for name in ids
    }
    assert storage == {
        "local": ("local", str(root)),
        "path": ("s3", "exports"),
        "virtual": ("s3", "my.exports"),
        "lambda": (None, None),
        "other": (None, None),
    }
    links = DownloadLinks(Settings(data_dir=str(tmp_path)))
    local = Render.from_row(rows[ids["local"]])
    assert links.output_url(local) == old["local"]["output_url"]  # same link, from the key
    assert links.thumbnail_url(local) == old["local"]["thumbnail_url"]
    assert links.output_url(Render.from_row(rows[ids["lambda"]])) == LAMBDA_URL  # only a URL: kept
    other = Render.from_row(rows[ids["other"]])
    assert links.output_url(other) == "https://cdn.example/elsewhere.mp4"


def insert_new_rows(url: str, user: str, root: Path) -> tuple[str, str]:
    """Rows as the worker writes them now (no URL that expires): a local one, an S3 one."""
    new_local, new_s3 = str(uuid.uuid4()), str(uuid.uuid4())
    local = {"storage": "local", "storage_location": str(root)}
    on_s3 = {"storage": "s3", "storage_location": "exports"}
    rows = [
        row_values(
            user,
            new_local,
            **local,
            output_key=f"renders/p/{new_local}.mp4",
            thumbnail_key=f"renders/p/{new_local}.jpg",
        ),
        row_values(user, new_s3, **on_s3, output_key=f"renders/p/{new_s3}.mp4"),
    ]
    execute(url, video_renders.insert(), rows)
    return new_local, new_s3


def test_upgrade_matches_old_rows_and_downgrade_restores(
    empty_database: str, tmp_path: Path
) -> None:
    url = empty_database
    user = f"user-{uuid.uuid4().hex[:8]}"
    migrate(url, "upgrade", "0001")
    assert not set(NEW_COLUMNS) & columns(url)
    root = tmp_path / "data dir"
    ids = {name: str(uuid.uuid4()) for name in ("local", "path", "virtual", "lambda", "other")}
    old = old_outputs(root, ids)
    insert_old_rows(url, [row_values(user, ids[name], **old[name]) for name in ids])

    migrate(url, "upgrade", "head")
    check_upgraded(url, ids, old, root, tmp_path)
    new_local, new_s3 = insert_new_rows(url, user, root)

    migrate(url, "downgrade", "0001")
    assert not set(NEW_COLUMNS) & columns(url)
    rows = {row["id"]: row for row in execute(url, text("SELECT * FROM video_renders"))}
    for name in ids:  # what each row had before 0002
        for output_column in OUTPUT_COLUMNS:
            if output_column not in NEW_COLUMNS:
                got = rows[ids[name]][output_column]
                assert got == old[name].get(output_column), (name, output_column)
    assert rows[new_local]["output_url"] == (root / f"renders/p/{new_local}.mp4").as_uri()
    assert rows[new_local]["thumbnail_url"] == (root / f"renders/p/{new_local}.jpg").as_uri()
    assert rows[new_s3]["output_url"] is None  # a signed URL would expire: none is written

    migrate(url, "upgrade", "head")  # and up again
    rows = by_id(url)
    assert rows[new_local]["storage"] == "local" and rows[ids["path"]]["storage"] == "s3"
