"""Assemble and run render_api: database, Redis, catalogue, servicer, sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from redis.asyncio import Redis
from render.v1 import render_service_pb2, render_service_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.config import Settings
from render_common.db.migrate import open_engine
from render_common.downloads import DownloadLinks
from render_common.redis_client import redis_for
from render_common.runner import run_service
from render_common.server import RunningServer, ServiceRegistration, start_server
from services.render_api.catalogue import SceneCatalogue
from services.render_api.servicer import RenderService
from services.render_api.sweeper import Sweeper
from services.render_api.validation import RequestValidator
from services.render_api.webhook_delivery import WebhookDelivery

log = logging.getLogger(__name__)
SERVICE_NAME = render_service_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name


@dataclass
class RenderApi:
    """A running render_api: its server, dependencies and background tasks."""

    server: RunningServer
    engine: AsyncEngine
    redis: Redis
    servicer: RenderService
    # Named "sweeper" and "webhook-delivery" (when started).
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port

    async def stop(self, grace: float = 5.0) -> None:
        """Stop serving, the background tasks, and close connections."""
        await self.server.stop(grace)
        await self.servicer.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.redis.aclose()
        await self.engine.dispose()


async def start(
    settings: Settings,
    *,
    port: int | None = None,
    run_sweeper: bool = True,
    run_webhooks: bool = True,
) -> RenderApi:
    """Start render_api on `port` (default RENDER_API_PORT) once the schema is current.

    Raises SchemaNotCurrent when the database has not been migrated (`migrate` command).
    Its background tasks: the sweeper and the caller webhook delivery loop. Webhooks go
    out from render_api rather than the worker: render_api always runs (the worker
    scales to zero on an empty queue and is busy rendering), and sending is light I/O
    that must never take a render's slot.
    """
    async with AsyncExitStack() as opened:  # closed again if the start fails part-way
        engine = await open_engine(settings)
        opened.push_async_callback(engine.dispose)
        redis = redis_for(settings)
        opened.push_async_callback(redis.aclose)
        validator = RequestValidator(settings, SceneCatalogue.load())
        links = DownloadLinks(settings)
        await asyncio.to_thread(links.warm)
        servicer = RenderService(settings, engine, redis, validator, links)
        opened.push_async_callback(servicer.close)
        server = await _serve(settings, servicer, port)
        opened.pop_all()  # started: RenderApi.stop closes it all, in its order
    api = RenderApi(server=server, engine=engine, redis=redis, servicer=servicer)
    if run_sweeper:
        sweeper = Sweeper(
            engine,
            redis,
            grace_seconds=settings.sweeper_grace_seconds,
            silent_after_seconds=2 * settings.visibility_timeout_seconds,
            settings=settings,
        )
        run = sweeper.run(settings.sweeper_interval_seconds)
        api.tasks.append(asyncio.create_task(run, name="sweeper"))
    if run_webhooks:
        delivery = WebhookDelivery(settings, engine, links, redis).run()
        api.tasks.append(asyncio.create_task(delivery, name="webhook-delivery"))
    return api


async def _serve(settings: Settings, servicer: RenderService, port: int | None) -> RunningServer:
    return await start_server(
        [
            ServiceRegistration(
                SERVICE_NAME,
                lambda s: render_service_pb2_grpc.add_RenderServiceServicer_to_server(servicer, s),
            )
        ],
        settings=settings,
        port=settings.render_api_port if port is None else port,
    )


def main() -> None:
    """Run render_api until SIGTERM/SIGINT."""
    run_service("render_api", start)
