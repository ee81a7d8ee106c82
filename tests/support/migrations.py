"""Migration tests' helpers: an empty database on each backend (the `empty_database`
fixture, registered in tests/conftest.py), Alembic commands and plain statements on it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from render_common.db.engine import create_engine
from render_common.db.migrate import alembic_config
from tests.support.processes import ThrowawayDatabase


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables yet."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'render.db'}"
        return
    database = ThrowawayDatabase()
    asyncio.run(database.create(migrated=False))
    try:
        yield database.url
    finally:
        asyncio.run(database.drop())


def migrate(url: str, action: str, revision: str) -> None:
    """Alembic `action` (upgrade, downgrade) to `revision`."""
    getattr(command, action)(alembic_config(url), revision)


def execute(url: str, statement: Any, rows: list[dict[str, Any]] | None = None) -> list[Any]:
    """Run `statement` (with `rows`, if any) in a transaction; its rows as mappings."""

    async def run() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(statement, rows) if rows else None
                if result is None:
                    result = await connection.execute(statement)
                return list(result.mappings().all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())
