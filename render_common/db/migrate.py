"""Schema migrations as their own step: `python -m render_common.db migrate`.

`migrate` brings a database to the newest schema once, under a lock, so that any number
of copies may run at the same time (a deploy's Job, `make up`, several test sessions):
on PostgreSQL a session-level advisory lock, on SQLite an exclusive lock on a file next
to the database. Whoever takes the lock second finds the schema at head and does nothing.

Services never migrate: at start-up they check the database's revision against this
build's head (`require_current_schema`) and refuse to start on an empty or older schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from render_common.config import Settings
from render_common.db.engine import DbTimeouts, create_engine, engine_for, is_sqlite

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATE_COMMAND = "python -m render_common.db migrate"
# Key of the PostgreSQL advisory lock migrations run under ("render-export migrations").
ADVISORY_LOCK_KEY = 0x72656E646572_6D
LOCK_POLL_SECONDS = 0.1


class SchemaNotCurrent(RuntimeError):
    """The database's schema is missing or older than this build needs."""


@dataclass(frozen=True, slots=True)
class MigrationOutcome:
    """Revisions before and after a `migrate` run (None: no schema yet)."""

    before: str | None
    after: str | None

    @property
    def applied(self) -> bool:
        """Whether this run changed the schema."""
        return self.before != self.after


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str:
    """The newest revision this build knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: no schema)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def require_current_schema(engine: AsyncEngine) -> None:
    """Raise SchemaNotCurrent unless the database is at this build's head.

    A revision this build does not know is taken to be newer (a later release migrated
    first, as a rolling deploy does): the service starts, with a warning.
    """
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaNotCurrent(
            f"the database has no schema (this build needs revision {head}); "
            f"run `{MIGRATE_COMMAND}` first"
        )
    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(current)
    except CommandError:
        known = None
    if known is None:
        log.warning(
            "the database schema is newer than this build",
            extra={"revision": current, "head": head},
        )
        return
    raise SchemaNotCurrent(
        f"the database schema is at revision {current}, this build needs {head}; "
        f"run `{MIGRATE_COMMAND}` first"
    )


@contextlib.contextmanager
def refuse_stale_schema(service: str) -> Iterator[None]:
    """Turn SchemaNotCurrent into a clean exit (status 1) with the reason on stderr."""
    try:
        yield
    except SchemaNotCurrent as exc:
        log.error("refusing to start: %s", exc)
        raise SystemExit(f"{service}: refusing to start: {exc}") from None


async def open_engine(
    settings: Settings, *, pool_size: int = 20, pre_ping: bool = False
) -> AsyncEngine:
    """A service's engine (`engine_for`), once its schema is current (SchemaNotCurrent)."""
    engine = engine_for(settings, pool_size=pool_size, pre_ping=pre_ping)
    try:
        await require_current_schema(engine)
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def migrate(
    url: str, *, lock_wait_seconds: float = 300.0, connect_timeout: float = 10.0
) -> MigrationOutcome:
    """Bring the database at `url` to head under the migration lock (idempotent).

    No statement timeout applies (a migration may rewrite a large table); waiting for
    the lock is bounded by `lock_wait_seconds` (TimeoutError).
    """
    engine = create_engine(
        url, pool_size=1, timeouts=DbTimeouts(connect=connect_timeout, statement=None)
    )
    try:
        async with (
            engine.connect() as connection,
            _migration_lock(url, connection, lock_wait_seconds),
        ):
            before = await connection.run_sync(_current)
            await connection.commit()
            if before != head_revision():
                await connection.run_sync(_upgrade)
                await connection.commit()
            after = await connection.run_sync(_current)
            await connection.commit()
    finally:
        await engine.dispose()
    outcome = MigrationOutcome(before, after)
    log.info(
        "schema migrated" if outcome.applied else "schema already at head",
        extra={"before": before, "after": after},
    )
    return outcome


@contextlib.asynccontextmanager
async def _migration_lock(
    url: str, connection: AsyncConnection, wait_seconds: float
) -> AsyncIterator[None]:
    """Hold the migration lock: a file lock for SQLite, an advisory lock for PostgreSQL."""
    if is_sqlite(url):
        database = make_url(url).database
        if not database or database == ":memory:":
            yield
            return
        descriptor = _open_lock_file(Path(f"{database}.migrate-lock"))

        async def try_file_lock() -> bool:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            await _acquire(try_file_lock, wait_seconds)
            yield  # the lock goes with the descriptor
        finally:
            os.close(descriptor)
        return

    async def try_advisory_lock() -> bool:
        result = await connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )
        locked = bool(result.scalar_one())
        await connection.commit()
        return locked

    await _acquire(try_advisory_lock, wait_seconds)
    try:
        yield
    finally:
        await connection.execute(
            text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )
        await connection.commit()


def _open_lock_file(path: Path) -> int:
    """The descriptor of the lock file next to an SQLite database (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


async def _acquire(try_lock: Callable[[], Awaitable[bool]], wait_seconds: float) -> None:
    """Poll `try_lock` until it succeeds; TimeoutError after `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    logged = False
    while not await try_lock():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"another migration held the lock for {wait_seconds:.0f} s")
        if not logged:
            log.info("another migration is running; waiting for it")
            logged = True
        await asyncio.sleep(LOCK_POLL_SECONDS)
