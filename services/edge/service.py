"""The edge as a service process: uvicorn under render_common.runner (`run_service`).

The runner configures logging and telemetry, handles SIGTERM/SIGINT and calls `stop`;
uvicorn's own signal handling is switched off. Stopping ends every open SSE stream first
(browsers reconnect elsewhere and resume from Last-Event-ID), then lets uvicorn finish
in-flight requests within the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from render_common.config import Settings
from render_common.listen import bound_socket
from render_common.runner import run_service
from services.edge.app import Edge, create_app

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the runner owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningEdge:
    """A started edge: its uvicorn server, the task serving, the bound port."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    edge: Edge
    port: int

    async def stop(self, grace: float = 5.0) -> None:
        """End the SSE streams, then stop uvicorn within `grace` (forced after it)."""
        await self.edge.hub.stop()
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace + 1)
        except TimeoutError:
            self.server.force_exit = True
            await self.task


async def start(settings: Settings, *, port: int | None = None) -> RunningEdge:
    """Serve the edge on `port` (default EDGE_PORT) with uvloop's loop already running."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        backlog=8192,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=max(int(settings.shutdown_grace_seconds), 1),
    )
    sock = bound_socket(settings.bind_host, settings.edge_port if port is None else port)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            await task  # raises why it stopped
            raise RuntimeError("the edge stopped while starting")
        await asyncio.sleep(0.02)
    port_bound = int(sock.getsockname()[1])
    log.info("edge listening", extra={"port": port_bound})
    return RunningEdge(server, task, app.state.edge, port_bound)


def main() -> None:
    """Run the edge until SIGTERM/SIGINT."""
    run_service("edge", start, fast_loop=True)
