"""Migration 0005 (intake write cost) on SQLite and PostgreSQL: the redundant user_id
index goes (queries by user keep an index that starts with user_id), PostgreSQL's table
gets fillfactor 85 for HOT updates; the downgrade restores both."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from render_common.db.engine import create_engine
from tests.support.migrations import execute, migrate

PG_INDEXES = text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'video_renders'")
SQLITE_INDEXES = text("SELECT name FROM sqlite_master WHERE tbl_name = 'video_renders'")
PG_OPTIONS = text("SELECT reloptions FROM pg_class WHERE relname = 'video_renders'")


def index_names(url: str) -> set[str]:
    if url.startswith("sqlite"):
        return {row["name"] for row in execute(url, SQLITE_INDEXES)}
    return {row["indexname"] for row in execute(url, PG_INDEXES)}


def fillfactor(url: str) -> list[str] | None:
    [row] = execute(url, PG_OPTIONS)
    options: list[str] | None = row["reloptions"]
    return options


def user_query_plan(url: str) -> str:
    """EXPLAIN of a query by user with sequential scans off: an index serves it."""

    async def explain() -> str:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("SET LOCAL enable_seqscan = off"))
                query = text("EXPLAIN SELECT id FROM video_renders WHERE user_id = 'u'")
                return " ".join(str(row[0]) for row in await connection.execute(query))
        finally:
            await engine.dispose()

    return asyncio.run(explain())


def test_user_id_index_dropped_and_restored(empty_database: str) -> None:
    url = empty_database
    migrate(url, "upgrade", "0004")
    assert "user_id_idx" in index_names(url)
    migrate(url, "upgrade", "head")
    names = index_names(url)
    assert "user_id_idx" not in names
    assert {"user_created_idx", "user_status_idx"} <= names
    if not url.startswith("sqlite"):
        assert fillfactor(url) == ["fillfactor=85"]
        assert "Index" in user_query_plan(url)
    migrate(url, "downgrade", "0004")
    assert "user_id_idx" in index_names(url)
    if not url.startswith("sqlite"):
        assert fillfactor(url) is None
