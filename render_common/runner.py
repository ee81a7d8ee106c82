"""Run a service process the same way everywhere: `run_service(name, start)`.

Settings from the environment, logging, telemetry, then `start(settings)`; the started
service is stopped (gracefully, within SHUTDOWN_GRACE_SECONDS) when SIGTERM or SIGINT
arrives, and also when anything after its start fails. A database that has not been
migrated ends the process with status 1 and the reason (`python -m render_common.db
migrate` first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Protocol

from render_common.config import Settings
from render_common.db.migrate import refuse_stale_schema
from render_common.logs import configure_logging
from render_common.server import settle_garbage_collector, wait_for_shutdown_signal
from render_common.telemetry import configure_telemetry

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    """What a service's `start` returns: something to stop within a grace period."""

    async def stop(self, grace: float) -> None:
        """Stop serving, finish or hand back in-flight work within `grace`, close all."""


Start = Callable[[Settings], Awaitable[Stoppable]]


def service_settings(name: str) -> Settings:
    """Settings from the environment, with logging and telemetry configured for `name`."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    configure_telemetry(name)
    return settings


async def serve_until_signal(
    name: str, start: Start, settings: Settings, *, settle_gc: bool = True
) -> None:
    """Start the service, wait for SIGTERM/SIGINT, stop it within the grace period."""
    async with AsyncExitStack() as stack:
        service = await start(settings)
        stack.push_async_callback(_stop, name, service, settings.shutdown_grace_seconds)
        if settle_gc:
            # With thousands of requests or open streams, collections otherwise show in p99.
            settle_garbage_collector()
        log.info("%s serving", name)
        await wait_for_shutdown_signal()


async def _stop(name: str, service: Stoppable, grace: float) -> None:
    log.info("%s stopping", name, extra={"grace_seconds": grace})
    await service.stop(grace)


def run_service(
    name: str, start: Start, *, settle_gc: bool = True, fast_loop: bool = False
) -> None:
    """The body of a service's `python -m`: configure, start, serve until a signal, stop.

    `fast_loop`: run on uvloop (the edge: thousands of HTTP streams on one loop).
    """
    with refuse_stale_schema(name):
        settings = service_settings(name)
        factory = _uvloop_factory() if fast_loop else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve_until_signal(name, start, settings, settle_gc=settle_gc))


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    return uvloop.new_event_loop
