"""render_api and render_worker started in-process, and helpers to follow a render."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import grpc
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc

from render_common.auth import mint_token
from render_common.config import ROOT, Settings
from render_common.redis_client import create_redis
from services.render_api import app as api_app
from services.render_worker import app as worker_app
from tests.support.lambda_env import lambda_settings
from tests.support.redis_streams import attempts_over

FFPROBE = ROOT / "remotion" / "node_modules" / "@remotion" / "compositor-linux-x64-gnu" / "ffprobe"
TERMINAL = {
    render_pb2.Render.STATE_SUCCEEDED,
    render_pb2.Render.STATE_FAILED,
    render_pb2.Render.STATE_CANCELLED,
}


class RenderClient:
    """StartRender, GetRender and polling for one user over a channel to render_api.

    The client half of Stack and of the fault rig (tests/support/fault_rig.py)."""

    settings: Settings
    channel: grpc.aio.Channel
    user: str
    # Whether `wait` rides out UNAVAILABLE (a rig whose Redis or render_api goes away).
    ride_out_unavailable: ClassVar[bool] = False

    @property
    def stub(self) -> render_service_pb2_grpc.RenderServiceStub:
        """RenderService client."""
        return render_service_pb2_grpc.RenderServiceStub(self.channel)

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        """Call metadata of the user."""
        return (("authorization", f"Bearer {mint_token(self.settings, self.user)}"),)

    async def start_render(
        self, scenes: list[Any], project: str = "proj", **fields: Any
    ) -> render_pb2.Render:
        """StartRender (MP4, low quality unless told otherwise) and return the render."""
        request = render_service_pb2.StartRenderRequest(
            project_id=project,
            scenes=scenes,
            format=fields.pop("format", render_pb2.FORMAT_MP4),
            quality=fields.pop("quality", render_pb2.QUALITY_LOW),
            **fields,
        )
        started: render_service_pb2.StartRenderResponse = await self.stub.StartRender(
            request, metadata=self.auth
        )
        return started.render

    async def get(self, render_id: str) -> render_pb2.Render:
        """GetRender."""
        request = render_service_pb2.GetRenderRequest(render_id=render_id)
        response: render_service_pb2.GetRenderResponse = await self.stub.GetRender(
            request, metadata=self.auth
        )
        return response.render

    async def wait(
        self, render_id: str, until: Any = None, *, timeout: float = 180.0
    ) -> render_pb2.Render:
        """Poll until terminal (or `until(render)` is true)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    render = await self.get(render_id)
                except grpc.aio.AioRpcError as error:
                    unavailable = error.code() == grpc.StatusCode.UNAVAILABLE
                    if not (unavailable and self.ride_out_unavailable):
                        raise
                else:
                    if until(render) if until else render.state in TERMINAL:
                        return render
                await asyncio.sleep(0.1)

    async def attempts_over(self, timeout: float = 60.0) -> None:
        """Wait until every job entry a worker read is acknowledged: the attempts' events
        are published and their work directories removed (a row is terminal before)."""
        client = create_redis(self.settings.redis_url)
        try:
            await attempts_over(client, timeout)
        finally:
            await client.aclose()


@dataclass
class Stack(RenderClient):
    """A running render_api (and optionally a worker) with a client for one user."""

    settings: Settings
    api: api_app.RenderApi
    worker: worker_app.Worker | None
    channel: grpc.aio.Channel
    user: str

    async def start(
        self, scenes: list[Any], project: str = "proj", **fields: Any
    ) -> render_pb2.Render:
        """StartRender and return the render."""
        return await self.start_render(scenes, project, **fields)

    async def close(self) -> None:
        """Stop everything."""
        await self.channel.close()
        if self.worker is not None:
            await self.worker.stop(5)
        await self.api.stop(0)


async def close_all(stacks: list[Stack]) -> None:
    """Close every stack even if one fails to close (a leaked worker would take later
    tests' jobs), then raise the first failure."""
    errors: list[BaseException] = []
    for stack in stacks:
        try:
            await stack.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


async def start_stack(
    settings: Settings, user: str, *, worker: bool = True, warm: bool = True
) -> Stack:
    """render_api on a free port and, unless told otherwise, a worker (`warm`: SSR host up)."""
    api = await api_app.start(settings, port=0)
    running_worker = await worker_app.start(settings, health_port=0, warm=warm) if worker else None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{api.port}")
    return Stack(settings=settings, api=api, worker=running_worker, channel=channel, user=user)


StartStack = Callable[..., Awaitable[Stack]]


# A StackFactory call's options that are not settings fields, and their defaults.
_STACK_OPTIONS = {"worker": True, "warm": True, "lambda_engine": False, "webhook": True}


class StackFactory:
    """Starts a test's stacks on its settings and closes them all at the end (conftest's
    `stack_factory` fixture). A call's keyword arguments override settings fields, plus
    `worker` and `warm` as in `start_stack` (both true unless told otherwise), and
    `lambda_engine`: the Lambda engine configured for the local fake function
    (tests/support/lambda_env.py), with its webhook endpoint unless `webhook=False`."""

    def __init__(
        self, settings: Settings, user: str, stacks: list[Stack] | None = None, **defaults: Any
    ) -> None:
        self.settings = settings
        self.user = user
        self.defaults = defaults
        self.stacks: list[Stack] = [] if stacks is None else stacks

    def with_defaults(self, **defaults: Any) -> StackFactory:
        """A factory with more defaults (a module's own), whose stacks this one closes."""
        return StackFactory(self.settings, self.user, self.stacks, **self.defaults, **defaults)

    async def __call__(self, **overrides: Any) -> Stack:
        """Start a stack: render_api and, unless `worker=False`, a worker."""
        options = {**_STACK_OPTIONS, **self.defaults, **overrides}
        worker, warm = bool(options.pop("worker")), bool(options.pop("warm"))
        lambda_engine, webhook = bool(options.pop("lambda_engine")), bool(options.pop("webhook"))
        if lambda_engine:  # its defaults first, then the overrides
            settings = lambda_settings(self.settings, webhook=webhook, **options)
        else:
            settings = self.settings.with_overrides(**options)
        stack = await start_stack(settings, self.user, worker=worker, warm=warm)
        self.stacks.append(stack)
        return stack

    async def close(self) -> None:
        """Close every stack started through this factory or one derived from it."""
        await close_all(self.stacks)


def ffprobe_json(path: Path, *show: str) -> dict[str, Any]:
    """ffprobe's JSON of a file for the given -show_* options."""
    command = [str(FFPROBE), "-v", "error", "-print_format", "json", *show, str(path)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(result.stdout))


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's format and first video stream of a file."""
    data = ffprobe_json(path, "-show_format", "-show_streams")
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    return {"format": data["format"], "video": video}
