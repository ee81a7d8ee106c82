"""Async engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), tuned for each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from render_common.config import Settings
from render_common.telemetry import instrument_engine

# The client waits this much longer than PostgreSQL's statement_timeout: while the server is
# reachable, its own timeout ends a slow statement (the connection stays usable); only a
# silent connection reaches the client's, and that connection is then discarded.
CLIENT_TIMEOUT_MARGIN_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class DbTimeouts:
    """Bounds on every database call, in seconds (`statement=None`: no statement timeout)."""

    connect: float = 3.0
    statement: float | None = 5.0
    pool: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DbTimeouts:
        """DB_CONNECT_TIMEOUT_SECONDS, DB_STATEMENT_TIMEOUT_SECONDS, DB_POOL_TIMEOUT_SECONDS."""
        return cls(
            connect=settings.db_connect_timeout_seconds,
            statement=settings.db_statement_timeout_seconds,
            pool=settings.db_pool_timeout_seconds,
        )


def json_text(value: Any) -> str:
    """JSON columns' serializer: orjson (several times faster than json on the hot path)."""
    return orjson.dumps(value).decode()


_JSON = {"json_serializer": json_text, "json_deserializer": orjson.loads}


def is_sqlite(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    pool_size: int = 20,
    timeouts: DbTimeouts | None = None,
    pre_ping: bool = False,
) -> AsyncEngine:
    """An engine for `url`; for SQLite, WAL mode, a busy timeout and immediate transactions.

    SQLite transactions begin with BEGIN IMMEDIATE so that a quota check and the insert
    after it are serialised across connections and processes (race-free limits).

    On PostgreSQL every connect, statement, commit and rollback is bounded (`timeouts`), a
    connection whose call timed out is discarded rather than returned to the pool, and
    `pre_ping` checks a connection before each checkout (for services whose connections
    sit idle; the intake hot path goes without: a dead connection fails its first call,
    which discards the whole pool's connections of that age).
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
    limits = timeouts or DbTimeouts()
    engine = create_async_engine(
        url,
        connect_args=_postgres_connect_args(limits),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=limits.pool,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        **_JSON,
    )
    event.listen(engine.sync_engine, "handle_error", _discard_timed_out_connection)
    instrument_engine(engine)
    return engine


def _postgres_connect_args(limits: DbTimeouts) -> dict[str, Any]:
    """asyncpg's connect timeout, client-side command timeout and server-side settings."""
    # Plan each execution for its parameters: asyncpg prepares every statement, and
    # PostgreSQL's cached generic plans, built while a table was small, kept scanning
    # the whole table as it grew (pg_stat_statements: 2 ms a statement and rising).
    server_settings = {"plan_cache_mode": "force_custom_plan"}
    args: dict[str, Any] = {"timeout": limits.connect, "server_settings": server_settings}
    if limits.statement is not None:
        statement_ms = int(limits.statement * 1000)
        server_settings["statement_timeout"] = str(statement_ms)
        # A session whose client went silent mid-transaction releases its locks (the
        # intake's per-user advisory locks) instead of blocking that user's intakes.
        server_settings["idle_in_transaction_session_timeout"] = str(max(2 * statement_ms, 10_000))
        args["command_timeout"] = limits.statement + CLIENT_TIMEOUT_MARGIN_SECONDS
    return args


def _discard_timed_out_connection(context: Any) -> None:
    """Treat a call that timed out on the client as a lost connection.

    The connection's state is unknown (the server may still be running the statement or
    be unreachable): SQLAlchemy then invalidates it instead of rolling it back (a ROLLBACK
    on a silent connection would wait again) and never hands it out again.
    """
    if not isinstance(context.original_exception, TimeoutError):
        return
    context.is_disconnect = True
    connection = context.connection
    if connection is not None and not connection.invalidated:
        # Close the socket now: the driver's graceful close would first wait (2 s) for a
        # goodbye the silent server cannot answer.
        connection.connection.driver_connection.terminate()


def engine_for(settings: Settings, *, pool_size: int = 20, pre_ping: bool = False) -> AsyncEngine:
    """`create_engine` for DATABASE_URL with the DB_*_TIMEOUT_SECONDS settings."""
    return create_engine(
        settings.effective_database_url,
        pool_size=pool_size,
        timeouts=DbTimeouts.from_settings(settings),
        pre_ping=pre_ping,
    )
