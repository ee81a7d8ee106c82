"""`render watch` against a real progress service whose history is trimmed while it is away."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from redis.asyncio import Redis

from render_common import streams
from render_common.config import Settings
from services.progress import app
from tests.support.processes import free_port, sqlite_url
from tests.support.redis_streams import entries as stream_entries
from tests.support.render_rows import finish_row, insert_render, publish


async def read_until(stream: asyncio.StreamReader, marker: str, lines: list[str]) -> None:
    """Collect lines until one contains `marker` (bounded, so a bug fails instead of hanging)."""
    async with asyncio.timeout(60):
        while True:
            line = (await stream.readline()).decode()
            assert line, f"ended before {marker!r}: {lines}"
            lines.append(line)
            if marker in line:
                return


async def test_watch_shows_a_gap_when_resuming_after_trimmed_events(
    base_settings: Settings, sqlite_dir: Path, redis: Redis, user: str
) -> None:
    settings = base_settings.with_overrides(
        database_url=sqlite_url(sqlite_dir), progress_port=free_port(), events_maxlen=10
    )
    progress = await app.start(settings, port=settings.progress_port)
    render_id = await insert_render(progress.engine, user, status="running")
    env = {
        **os.environ,
        "PROGRESS_ADDR": f"127.0.0.1:{settings.progress_port}",
        "JWT_SECRET": settings.jwt_secret,
        "RENDER_USER": user,
    }
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "watch",
        render_id,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert cli.stderr is not None and cli.stdout is not None
        await read_until(cli.stderr, "0%", lines)  # the snapshot drew the bar
        seen = await publish(redis, render_id, "running", "rendering", 0.1, maxlen=10)
        await read_until(cli.stderr, " 10%", lines)
        await progress.stop(0)  # the stream drops (UNAVAILABLE); the CLI keeps resuming
        for index in range(250):  # meanwhile the capped history trims what it saw
            await publish(redis, render_id, "running", "rendering", 0.2 + index / 1000, maxlen=10)
        oldest = (await stream_entries(redis, streams.events_stream(render_id), count=1))[0][0]
        assert oldest != seen
        newest = await publish(redis, render_id, "running", "encoding", 0.9, maxlen=10)
        progress = await app.start(settings, port=settings.progress_port)
        await read_until(cli.stderr, "gap:", lines)
        await read_until(cli.stderr, " 90%", lines)  # the current state, after the notice
        await finish_row(progress.engine, render_id)
        await publish(redis, render_id, "succeeded", "done", 1.0, maxlen=10)
        async with asyncio.timeout(60):
            out, err = await cli.communicate()
        lines.extend(err.decode().splitlines(keepends=True))
    finally:
        if cli.returncode is None:
            cli.kill()
            await cli.wait()
        await progress.stop(0)
    assert cli.returncode == 0, lines
    notice = next(line for line in lines if "gap:" in line)
    assert notice.startswith("! gap: progress events after event ")
    assert f"after event {seen} were lost up to event {newest}" in notice
    assert "state    succeeded" in out.decode()
