"""A service whose start fails part-way (its port is taken) leaves nothing running behind."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from render_common.config import Settings
from services.progress import app as progress_app
from services.render_api import app as render_api_app
from tests.support.processes import sqlite_url


def taken_port() -> tuple[socket.socket, int]:
    """A port something already listens on (closed by the caller)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, int(sock.getsockname()[1])


def background_tasks() -> set[str]:
    current = asyncio.current_task()
    return {t.get_name() for t in asyncio.all_tasks() if t is not current and not t.done()}


async def test_progress_that_cannot_bind_stops_its_readers(
    base_settings: Settings, tmp_path: Path
) -> None:
    settings = base_settings.with_overrides(database_url=sqlite_url(tmp_path), progress_readers=3)
    before = background_tasks()
    sock, port = taken_port()
    try:
        with pytest.raises((RuntimeError, OSError), match=str(port)):  # grpc: "Failed to bind"
            await progress_app.start(settings, port=port)
    finally:
        sock.close()
    await asyncio.sleep(0)
    leaked = {name for name in background_tasks() - before if "progress-hub" in name}
    assert not leaked  # the hub's three reader tasks were stopped, not left pending


async def test_render_api_that_cannot_bind_closes_what_it_opened(
    base_settings: Settings, tmp_path: Path
) -> None:
    settings = base_settings.with_overrides(database_url=sqlite_url(tmp_path))
    sock, port = taken_port()
    try:
        with pytest.raises((RuntimeError, OSError), match=str(port)):  # grpc: "Failed to bind"
            await render_api_app.start(settings, port=port, run_sweeper=True)
    finally:
        sock.close()
    # The same port, free now, serves a fresh start normally.
    api = await render_api_app.start(settings, port=port, run_sweeper=False, run_webhooks=False)
    try:
        assert api.port == port
    finally:
        await api.stop(0)
