"""Assemble and run progress: database, the two Redis clients, the hub and the servicer."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from redis.asyncio import BlockingConnectionPool, Redis
from render.v1 import progress_service_pb2, progress_service_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.config import Settings
from render_common.db.migrate import open_engine
from render_common.downloads import DownloadLinks
from render_common.runner import run_service
from render_common.server import RunningServer, ServiceRegistration, start_server
from services.progress.hub import Hub
from services.progress.servicer import ProgressService

log = logging.getLogger(__name__)
SERVICE_NAME = progress_service_pb2.DESCRIPTOR.services_by_name["ProgressService"].full_name


def create_reader(settings: Settings) -> Redis:
    """The client whose connections the hub's shards keep for blocking reads (no retries)."""
    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=settings.redis_connect_timeout_seconds,
        # The hub reads replies on these connections itself: a silent Redis fails a read
        # after its block time plus REDIS_SOCKET_TIMEOUT_SECONDS.
        socket_timeout=settings.progress_read_block_ms / 1000
        + settings.redis_socket_timeout_seconds,
        max_connections=settings.progress_readers,
    )


def create_pool(settings: Settings) -> Redis:
    """A client over a small fixed pool: callers wait for a connection, none is added."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=settings.redis_connect_timeout_seconds,
        socket_timeout=settings.redis_socket_timeout_seconds,
        max_connections=settings.progress_redis_pool_size,
        timeout=10,
    )
    return Redis(connection_pool=pool)


@dataclass
class Progress:
    """A running progress service: its server, hub and connections."""

    server: RunningServer
    engine: AsyncEngine
    reader: Redis
    pool: Redis
    hub: Hub
    stopped: bool = False

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port

    async def stop(self, grace: float = 5.0) -> None:
        """Stop: NOT_SERVING, end every stream resumably (UNAVAILABLE), then the server."""
        if self.stopped:
            return
        self.stopped = True
        for name in (*self.server.names, ""):
            await self.server.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.hub.close()
        await self.server.stop(grace)
        await self.reader.aclose()
        await self.pool.aclose()
        await self.pool.connection_pool.disconnect()
        await self.engine.dispose()


async def start(settings: Settings, *, port: int | None = None) -> Progress:
    """Start progress on `port` (default PROGRESS_PORT) once the schema is current."""
    async with AsyncExitStack() as opened:  # closed again if the start fails part-way
        engine = await open_engine(settings, pool_size=10)
        opened.push_async_callback(engine.dispose)
        reader = create_reader(settings)
        opened.push_async_callback(reader.aclose)
        pool = create_pool(settings)
        opened.push_async_callback(pool.connection_pool.disconnect)
        opened.push_async_callback(pool.aclose)
        hub = Hub(
            reader,
            pool,
            readers=settings.progress_readers,
            buffer=settings.progress_buffer_events,
            block_ms=settings.progress_read_block_ms,
            outage_seconds=settings.progress_redis_outage_seconds,
        )
        hub.start()
        opened.push_async_callback(hub.close)
        links = DownloadLinks(settings)
        await asyncio.to_thread(links.warm)
        servicer = ProgressService(settings, engine, pool, hub, links)
        server = await _serve(settings, servicer, port)
        opened.pop_all()  # started: Progress.stop closes it all, in its order
    return Progress(server=server, engine=engine, reader=reader, pool=pool, hub=hub)


async def _serve(settings: Settings, servicer: ProgressService, port: int | None) -> RunningServer:
    return await start_server(
        [
            ServiceRegistration(
                SERVICE_NAME,
                lambda s: progress_service_pb2_grpc.add_ProgressServiceServicer_to_server(
                    servicer, s
                ),
            )
        ],
        settings=settings,
        port=settings.progress_port if port is None else port,
    )


def main() -> None:
    """Run progress until SIGTERM/SIGINT."""
    run_service("progress", start)
