"""Async engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), tuned for each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from render_common.telemetry import instrument_engine


def json_text(value: Any) -> str:
    """JSON columns' serializer: orjson (several times faster than json on the hot path)."""
    return orjson.dumps(value).decode()


_JSON = {"json_serializer": json_text, "json_deserializer": orjson.loads}


def is_sqlite(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An engine for `url`; for SQLite, WAL mode, a busy timeout and immediate transactions.

    SQLite transactions begin with BEGIN IMMEDIATE so that a quota check and the insert
    after it are serialised across connections and processes (race-free limits).
    """
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **_JSON)
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, issue BEGIN (pysqlite's default is wrong).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        instrument_engine(engine)
        return engine
    engine = create_async_engine(
        url,
        # Plan each execution for its parameters: asyncpg prepares every statement, and
        # PostgreSQL's cached generic plans, built while a table was small, kept scanning
        # the whole table as it grew (pg_stat_statements: 2 ms a statement and rising).
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        **_JSON,
    )
    instrument_engine(engine)
    return engine
