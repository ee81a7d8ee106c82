"""Migrations as their own step: `python -m render_common.db migrate`, once, under a lock.

Eight migrate commands started together on an empty database (PostgreSQL, SQLite) all
succeed and the schema is created once; services never migrate and refuse to start on a
database that has not been migrated, with a message saying what to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from render_common.config import ROOT, Settings
from render_common.db.engine import create_engine
from render_common.db.migrate import SchemaNotCurrent, head_revision
from services.render_api import app as api_app
from tests.support.processes import ThrowawayDatabase, free_port, migrate_command

TOGETHER = 8


def run_together(url: str) -> list[str]:
    """Start TOGETHER migrate commands at once; each one's output, all having exited 0."""
    processes = [migrate_command(url) for _ in range(TOGETHER)]
    outputs = []
    for process in processes:
        output, _ = process.communicate(timeout=180)
        assert process.returncode == 0, output
        outputs.append(output)
    return outputs


def check_migrated_once(outputs: list[str]) -> None:
    head = head_revision()
    summaries = [line for out in outputs for line in out.splitlines() if line.startswith("schema ")]
    assert sorted(summaries) == sorted(
        [f"schema migrated: empty -> {head}"]
        + [f"schema already at head: {head} -> {head}"] * (TOGETHER - 1)
    ), summaries


async def test_concurrent_migrate_on_empty_postgres() -> None:
    database = ThrowawayDatabase()
    await database.create(migrated=False)
    try:
        check_migrated_once(run_together(database.url))
        connection = await asyncpg.connect(database.url.replace("+asyncpg", ""))
        try:
            versions = await connection.fetch("SELECT version_num FROM alembic_version")
            assert [row["version_num"] for row in versions] == [head_revision()]
            assert await connection.fetchval("SELECT count(*) FROM video_renders") == 0
        finally:
            await connection.close()
        # Idempotent: once more, nothing to do.
        (again,) = [migrate_command(database.url).communicate(timeout=120)[0]]
        assert f"schema already at head: {head_revision()}" in again
    finally:
        await database.drop()


async def test_concurrent_migrate_on_empty_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    check_migrated_once(run_together(url))
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            versions = await connection.execute(text("SELECT version_num FROM alembic_version"))
            assert list(versions.scalars()) == [head_revision()]
    finally:
        await engine.dispose()


def test_services_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "RENDER_DATA_DIR": str(tmp_path / "data"),
        "RENDER_API_PORT": str(free_port()),
        "PROGRESS_PORT": str(free_port()),
        "WORKER_HEALTH_PORT": str(free_port()),
        "LOG_FORMAT": "text",
    }
    services = {
        module: subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module in ("services.render_api", "services.progress", "services.render_worker")
    }
    for module, process in services.items():
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 1, (module, stderr)
        last = stderr.strip().splitlines()[-1]
        assert "refusing to start: the database has no schema" in last, (module, stderr)
        assert "run `python -m render_common.db migrate` first" in last, module


async def test_render_api_refuses_an_unmigrated_postgres_database(
    base_settings: Settings,
) -> None:
    database = ThrowawayDatabase()
    await database.create(migrated=False)
    try:
        settings = base_settings.with_overrides(database_url=database.url)
        with pytest.raises(SchemaNotCurrent, match="has no schema"):
            await api_app.start(settings, port=0)
    finally:
        await database.drop()
