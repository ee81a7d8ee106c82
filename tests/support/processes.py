"""Real backing services for tests: a private redis-server and a throwaway PostgreSQL database."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import asyncpg

from render_common.config import ROOT, Settings
from services.local_stack.redis_server import redis_server_argv


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of our own on a free port, stoppable and restartable on that port.

    `appendonly`: persist with AOF (fsync every second) in its directory, so a restart
    reloads the data; without it a restart starts empty.
    """

    def __init__(self, *, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make setup installs it)")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="render-test-redis-")
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server and wait until it answers."""
        self.process = subprocess.Popen(
            redis_server_argv(
                self.binary, self.port, self.dir, appendonly=self.appendonly, maxclients=20000
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def pause(self) -> None:
        """SIGSTOP: connections stay open and new ones are accepted, but nothing answers."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT (harmless when not paused)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server with SIGTERM (without AOF its data is lost)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """Stop the server with SIGKILL (AOF keeps what it fsynced, up to a second less)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        """Stop and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_admin_dsn() -> str:
    """DSN of the PostgreSQL server used for throwaway databases."""
    return os.environ.get(
        "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
    )


class ThrowawayDatabase:
    """A database created for one test module (or test) and dropped afterwards.

    A migrated one is a copy of a template database migrated once per process (CREATE
    DATABASE ... TEMPLATE): the migrate command, a Python process of its own, runs once
    rather than for every database.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name or f"render_test_{uuid.uuid4().hex[:12]}"
        self.admin = postgres_admin_dsn()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database."""
        base, _, _ = self.admin.rpartition("/")
        return base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{self.name}"

    async def create(self, *, migrated: bool = True) -> None:
        """CREATE DATABASE, migrated unless told otherwise (a copy of the template)."""
        template = await asyncio.to_thread(_postgres_template) if migrated else None
        clause = f' TEMPLATE "{template.name}"' if template else ""
        connection = await asyncpg.connect(self.admin)
        try:
            await connection.execute(f'CREATE DATABASE "{self.name}"{clause}')
        finally:
            await connection.close()
        if migrated:
            _MIGRATED.add(self.url)

    async def drop(self) -> None:
        """DROP DATABASE (closing other sessions first)."""
        connection = await asyncpg.connect(self.admin)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await connection.close()


_TEMPLATES: dict[str, ThrowawayDatabase | Path] = {}
_TEMPLATE_LOCK = threading.Lock()


def _postgres_template() -> ThrowawayDatabase:
    """This process's migrated template database (created on first use, dropped at exit).

    Runs in a thread of its own (its own event loop), so callers on any loop share it."""
    with _TEMPLATE_LOCK:
        template = _TEMPLATES.get("postgresql")
        if isinstance(template, ThrowawayDatabase):
            return template
        template = ThrowawayDatabase(f"render_test_template_{uuid.uuid4().hex[:12]}")
        asyncio.run(template.create(migrated=False))
        atexit.register(_drop_quietly, template)
        migrate_database(template.url)
        _TEMPLATES["postgresql"] = template
        return template


def _drop_quietly(database: ThrowawayDatabase) -> None:
    """Drop a database at exit; a server already gone leaves nothing to drop."""
    with contextlib.suppress(Exception):
        asyncio.run(database.drop())


def _sqlite_template() -> Path:
    """This process's migrated template SQLite file (removed at exit)."""
    with _TEMPLATE_LOCK:
        template = _TEMPLATES.get("sqlite")
        if isinstance(template, Path):
            return template
        directory = tempfile.mkdtemp(prefix="render-test-sqlite-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        template = Path(directory) / "template.db"
        migrate_database(f"sqlite+aiosqlite:///{template}")
        _TEMPLATES["sqlite"] = template
        return template


def sqlite_url(directory: Path, name: str = "render.db") -> str:
    """An SQLite database file in `directory`, migrated (as `make up` does): a copy of the
    template when new, the file as it is (migrated if need be) when it exists."""
    path = directory / name
    url = f"sqlite+aiosqlite:///{path}"
    if not path.exists():
        shutil.copyfile(_sqlite_template(), path)
        _MIGRATED.add(url)
    migrate_database(url)
    return url


_MIGRATED: set[str] = set()


def migrate_command(url: str) -> subprocess.Popen[str]:
    """Start `python -m render_common.db migrate` against `url` (output captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "render_common.db", "migrate"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "LOG_FORMAT": "text"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def migrate_database(url: str) -> None:
    """Run the migrate command against `url` once per test process, as deployments do
    before starting services (services themselves refuse an unmigrated database)."""
    if url in _MIGRATED:
        return
    process = migrate_command(url)
    output, _ = process.communicate(timeout=120)
    if process.returncode != 0:
        raise RuntimeError(f"migrate failed ({process.returncode}):\n{output}")
    _MIGRATED.add(url)


def worker_environment(settings: Settings, name: str, **variables: str) -> dict[str, str]:
    """The environment of a worker process (`python -m services.render_worker` or the
    scripted one) on `settings`' database, Redis and data directory, named `name`, with a
    free health port; `variables` add to it or override it."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "RENDER_DATA_DIR": settings.data_dir,
        "WORKER_NAME": name,
        "WORKER_HEALTH_PORT": str(free_port()),
        "VISIBILITY_TIMEOUT_SECONDS": str(settings.visibility_timeout_seconds),
        "LOG_FORMAT": "text",
        "JWT_SECRET": settings.jwt_secret,
        **variables,
    }
