"""Assemble and run a render worker: engines, storage, consumer, health server."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.config import Settings
from render_common.db.migrate import open_engine
from render_common.redis_client import redis_for
from render_common.renders.attempts import AttemptTransitions
from render_common.renders.bookkeeping import Bookkeeping
from render_common.renders.lease import RenderLifecycle
from render_common.runner import run_service
from render_common.scene_assets import AssetCatalogue
from render_common.server import RunningServer, start_server
from services.render_worker.assets import AssetFetcher, AssetPolicy
from services.render_worker.consumer import Consumer
from services.render_worker.engines.base import Engine
from services.render_worker.engines.lambda_budget import SharedFunctionBudget
from services.render_worker.engines.lambda_client import LambdaClient
from services.render_worker.engines.lambda_engine import LambdaEngine
from services.render_worker.engines.lambda_tracker import LambdaTracker
from services.render_worker.engines.ssr import SsrEngine
from services.render_worker.host import RenderHost
from services.render_worker.leases import LeaseKeeper
from services.render_worker.loop_lag import LoopLagProbe
from services.render_worker.processor import RenderProcessor
from services.render_worker.storage import create_storage
from services.render_worker.webhook import WebhookServer, start_webhook_server
from services.render_worker.workdirs import WorkDirs

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """A running worker."""

    consumer: Consumer
    health: RunningServer | None
    engines: dict[str, Engine]
    db: AsyncEngine
    redis: Redis
    blocking_redis: Redis
    work_dirs: WorkDirs
    leases: asyncio.Task[None]
    loop_lag: LoopLagProbe
    webhook: WebhookServer | None = None

    async def stop(self, grace: float) -> None:
        """Finish or hand back renders, then close everything."""
        await self.consumer.stop(grace)
        self.leases.cancel()
        await asyncio.gather(self.leases, return_exceptions=True)
        await self.loop_lag.stop()
        if self.webhook is not None:
            await self.webhook.stop()
        if self.health is not None:
            await self.health.stop(1)
        for engine in self.engines.values():
            await engine.close()
        await self.redis.aclose()
        await self.blocking_redis.aclose()
        await self.db.dispose()
        self.work_dirs.close()


def worker_name(settings: Settings) -> str:
    """This worker's consumer name: WORKER_NAME or host-pid."""
    return settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"


def pool_size(settings: Settings) -> int:
    """Pooled database connections: an SSR slot needs few; hundreds of Lambda renders
    claiming or completing together need more (they queue for them, see RenderLifecycle)."""
    return 10 if settings.lambda_configured else 5


def build_engines(settings: Settings, data_dir: Path) -> dict[str, Engine]:
    """The engines this worker runs."""
    fetcher = AssetFetcher(
        data_dir / "assets",
        AssetPolicy.create(
            settings.asset_max_bytes,
            settings.asset_timeout_seconds,
            settings.asset_allowed_networks,
        ),
    )
    assets = AssetCatalogue.load()  # which scene props are assets (the catalogue's x-asset)
    host = RenderHost(
        Path(settings.remotion_dir),
        node=settings.node_binary,
        browser_executable=settings.browser_executable,
        asset_dir=fetcher.cache_dir,
        begin_frame_capture=settings.begin_frame_capture,
        browsers=settings.render_browsers,
    )
    engines: dict[str, Engine] = {
        "ssr": SsrEngine(
            host,
            fetcher,
            assets=assets,
            concurrency=settings.render_concurrency,
            timeout_seconds=settings.render_timeout_seconds,
            x264_preset=settings.x264_preset,
            skip_static_frames=settings.skip_static_frames,
        )
    }
    if settings.lambda_configured:
        engines["lambda"] = build_lambda_engine(settings, fetcher, assets)
    return engines


def build_lambda_engine(
    settings: Settings, fetcher: AssetFetcher, assets: AssetCatalogue
) -> LambdaEngine:
    """The Lambda engine with its client (thread pool), tracker and shared function budget
    (each with its own Redis client)."""
    client = LambdaClient(settings)
    tracker = LambdaTracker(
        client,
        redis_for(settings, block_seconds=1.0),  # pub/sub of parked webhooks
        poll_interval=settings.lambda_poll_interval_seconds,
        webhooks=bool(settings.webhook_url),
        pollers=settings.lambda_call_threads,
    )
    budget = SharedFunctionBudget(redis_for(settings), settings.lambda_concurrency_limit)
    return LambdaEngine(client, tracker, fetcher, assets=assets, settings=settings, budget=budget)


async def start(
    settings: Settings,
    *,
    health_port: int | None = None,
    engines: dict[str, Engine] | None = None,
    warm: bool = True,
    webhook_port: int | None = None,
) -> Worker:
    """Start a worker (health on WORKER_HEALTH_PORT; port 0 = any, None = settings).

    With the Lambda engine configured and WEBHOOK_SECRET set, the worker also serves the
    Remotion webhook on WEBHOOK_PORT (`webhook_port` overrides it; 0 = any).
    """
    async with AsyncExitStack() as opened:  # closed again if the start fails part-way
        worker = await _start(opened, settings, health_port, engines, warm, webhook_port)
        opened.pop_all()  # started: Worker.stop closes it all, in its order
    log.info(
        "worker started",
        extra={
            "worker": worker.consumer.name,
            "concurrency": settings.worker_concurrency,
            "lambda_max_in_flight": settings.lambda_max_in_flight,
            "engines": sorted(worker.engines),
        },
    )
    return worker


@dataclass
class _Opened:
    """The clients a worker opens first."""

    db: AsyncEngine
    redis: Redis
    blocking: Redis  # XREADGROUP blocks at most a second; pub/sub listens without a timeout
    engines: dict[str, Engine]
    work_dirs: WorkDirs


async def _open(
    opened: AsyncExitStack, settings: Settings, engines: dict[str, Engine] | None, warm: bool
) -> _Opened:
    data_dir = Path(settings.data_dir)
    db = await open_engine(settings, pool_size=pool_size(settings), pre_ping=True)
    opened.push_async_callback(db.dispose)
    redis = redis_for(settings)
    opened.push_async_callback(redis.aclose)
    blocking = redis_for(settings, block_seconds=1.0)
    opened.push_async_callback(blocking.aclose)
    engines = engines if engines is not None else build_engines(settings, data_dir)
    for engine in engines.values():
        opened.push_async_callback(engine.close)
    ssr = engines.get("ssr")
    if warm and isinstance(ssr, SsrEngine):
        await ssr.warm()
    work_dirs = WorkDirs(
        data_dir / "work",
        worker_name(settings),
        legacy_max_age_seconds=settings.render_timeout_seconds,
    )
    opened.callback(work_dirs.close)
    work_dirs.sweep_stale()  # what killed workers (this one's last run too) left behind
    return _Opened(db, redis, blocking, engines, work_dirs)


async def _start(
    opened: AsyncExitStack,
    settings: Settings,
    health_port: int | None,
    engines: dict[str, Engine] | None,
    warm: bool,
    webhook_port: int | None,
) -> Worker:
    parts = await _open(opened, settings, engines, warm)
    name = worker_name(settings)
    transitions = AttemptTransitions(
        settings,
        RenderLifecycle(
            parts.db,
            name,
            visibility_seconds=settings.visibility_timeout_seconds,
            concurrency=pool_size(settings) - 2,  # the rest for the webhook and the drain
        ),
        Bookkeeping(settings, parts.redis),
    )
    keeper = LeaseKeeper(transitions)
    leases = asyncio.create_task(keeper.run(), name="leases")
    opened.callback(leases.cancel)
    loop_lag = LoopLagProbe()
    loop_lag.start()
    opened.push_async_callback(loop_lag.stop)
    processor = RenderProcessor(
        settings, transitions, parts.engines, create_storage(settings), parts.work_dirs, keeper
    )
    consumer = Consumer(
        settings,
        parts.redis,
        parts.blocking,
        processor,
        transitions,
        name,
        db=parts.db,
        follow_lambda="lambda" in parts.engines,
    )
    await consumer.start()
    opened.push_async_callback(consumer.stop, 0.0)
    port = settings.worker_health_port if health_port is None else health_port
    health = await start_server([], settings=settings, port=port, authenticate=False)
    opened.push_async_callback(health.stop, 1)
    webhook = None
    if "lambda" in parts.engines and settings.webhook_secret:
        webhook = await start_webhook_server(settings, parts.db, parts.redis, port=webhook_port)
    return Worker(
        consumer=consumer,
        health=health,
        engines=parts.engines,
        db=parts.db,
        redis=parts.redis,
        blocking_redis=parts.blocking,
        work_dirs=parts.work_dirs,
        leases=leases,
        loop_lag=loop_lag,
        webhook=webhook,
    )


def main() -> None:
    """Run a worker until SIGTERM/SIGINT (finishing or handing back its renders)."""
    run_service("render_worker", start, settle_gc=False)
