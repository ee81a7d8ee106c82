"""A stack for fault tests: a private Redis, a throwaway PostgreSQL database, render_api and
progress in-process, and scripted workers as real processes (tests/support/scripted_worker).

Everything is the test's own, so its assertions can cover every row and every key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import grpc
from redis.asyncio import Redis
from render.v1 import render_pb2
from sqlalchemy import func, select

from render_common.auth import mint_token
from render_common.config import Settings
from render_common.db.schema import video_renders
from render_common.redis_client import create_redis
from services.cli.client import Endpoints
from services.cli.watch import watch_render
from services.progress import app as progress_app
from services.render_api import app as api_app
from tests.support.processes import RedisServer, ThrowawayDatabase, worker_environment
from tests.support.scenes import scene
from tests.support.stack import RenderClient


def script_scenes(script: str) -> list[render_pb2.Scene]:
    """Scenes whose first `text` is a scripted_worker script (30 frames in all)."""
    return [scene("title", 15, text=script), scene("color", 15, color="#204060")]


@dataclass
class Watcher:
    """A client following one render through the progress service, resuming as the CLI does."""

    render_id: str
    task: asyncio.Task[render_pb2.Render]
    states: list[int] = field(default_factory=list)


@dataclass
class FaultRig(RenderClient):
    """The stack of one fault test."""

    settings: Settings
    redis_server: RedisServer
    database: ThrowawayDatabase
    api: api_app.RenderApi
    progress: progress_app.Progress
    channel: grpc.aio.Channel
    user: str
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    health_ports: dict[int, int] = field(default_factory=dict)  # worker pid -> its port
    watchers: list[Watcher] = field(default_factory=list)

    ride_out_unavailable: ClassVar[bool] = True

    @property
    def data_dir(self) -> Path:
        """RENDER_DATA_DIR of the workers (storage under renders/, work/)."""
        return Path(self.settings.data_dir)

    def redis(self) -> Redis:
        """A client of the rig's Redis (close it)."""
        return create_redis(self.redis_server.url)

    def spawn_worker(self, name: str = "", **env: str) -> subprocess.Popen[bytes]:
        """A scripted worker process (its own session, so a kill reaches only it)."""
        name = name or f"worker-{uuid.uuid4().hex[:6]}"
        s = self.settings
        variables = worker_environment(
            s,
            name,
            RETRY_BASE_DELAY_SECONDS=str(s.retry_base_delay_seconds),
            MAX_DELIVERIES=str(s.max_deliveries),
            REDIS_OUTAGE_SECONDS=str(s.redis_outage_seconds),
            WORKER_CONCURRENCY=str(s.worker_concurrency),
            SHUTDOWN_GRACE_SECONDS="2",
            **env,
        )
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.scripted_worker"],
            env=variables,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers.append(process)
        self.health_ports[process.pid] = int(variables["WORKER_HEALTH_PORT"])
        return process

    async def start(self, script: str, **fields: Any) -> render_pb2.Render:
        """StartRender of a scripted render."""
        project = fields.pop("project_id", "faults")
        return await self.start_render(script_scenes(script), project, **fields)

    async def started(self, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
        """Wait until a worker serves health, which it does once it has started (after
        removing what dead workers left in the work directory)."""
        port = self.health_ports[process.pid]
        async with asyncio.timeout(timeout):
            while True:
                assert process.poll() is None, f"worker exited with {process.returncode}"
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    def watch(self, render_id: str) -> Watcher:
        """Follow a render with the CLI's resuming watcher."""
        endpoints = Endpoints(
            render_api=f"127.0.0.1:{self.api.port}",
            progress=f"127.0.0.1:{self.progress.port}",
            token=mint_token(self.settings, self.user),
        )
        states: list[int] = []
        task = asyncio.create_task(
            watch_render(endpoints, render_id, lambda event: states.append(event.state))
        )
        watcher = Watcher(render_id=render_id, task=task, states=states)
        self.watchers.append(watcher)
        return watcher

    async def status_counts(self) -> Counter[str]:
        """How many renders of the rig's database are in each state."""
        async with self.api.engine.connect() as connection:
            rows = await connection.execute(
                select(video_renders.c.status, func.count()).group_by(video_renders.c.status)
            )
            return Counter({str(status): int(count) for status, count in rows.all()})

    def outputs(self, render_id: str) -> list[Path]:
        """Stored outputs of a render (local storage)."""
        return sorted((self.data_dir / "renders").rglob(f"{render_id}.*"))

    def engine_runs(self) -> Counter[tuple[str, int]]:
        """How many times the engine started each (render id, attempt)."""
        path = self.data_dir / "engine-runs.log"
        runs: Counter[tuple[str, int]] = Counter()
        if path.exists():
            for line in path.read_text().splitlines():
                render_id, attempt, _ = line.split()
                runs[(render_id, int(attempt))] += 1
        return runs

    async def close(self) -> None:
        """Stop workers, watchers, services, Redis; drop the database."""
        for watcher in self.watchers:
            watcher.task.cancel()
        await asyncio.gather(*(w.task for w in self.watchers), return_exceptions=True)
        for process in self.workers:
            stop_process(process, signal.SIGTERM)
        await self.channel.close()
        await self.progress.stop(0)
        await self.api.stop(0)
        self.redis_server.close()
        await self.database.drop()


def stop_process(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal a process started by the rig and reap it (SIGKILL after 20 s)."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def start_rig(
    base_settings: Settings,
    tmp_path: Path,
    user: str,
    *,
    appendonly: bool = False,
    **overrides: Any,
) -> FaultRig:
    """Start the rig's Redis, database, render_api (with its sweeper) and progress."""
    redis_server = RedisServer(appendonly=appendonly)
    redis_server.start()
    database = ThrowawayDatabase()
    await database.create()
    settings = base_settings.with_overrides(
        database_url=database.url,
        redis_url=redis_server.url,
        data_dir=str(tmp_path / "data"),
        **overrides,
    )
    api = await api_app.start(settings, port=0)
    progress = await progress_app.start(settings, port=0)
    logs = tmp_path / "logs"
    logs.mkdir()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{api.port}")
    return FaultRig(
        settings=settings,
        redis_server=redis_server,
        database=database,
        api=api,
        progress=progress,
        channel=channel,
        user=user,
        logs=logs,
    )
