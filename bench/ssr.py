"""SSR benchmark: the reference clip through render-export vs `npx remotion render`.

The reference clip is remotion/samples/reference-150.json (150 frames, 1920x1080, the
high-quality preset). Every figure is a ratio against `npx remotion render` with the
worker's own encoder settings: the flags are derived from the very request the worker
sends its render host (`host_request`, from render_common/presets.py and Settings: codec,
CRF, JPEG quality, frame image format, pixel format, x264 preset, concurrency, size), so
the comparison is like with like. The CLI at its default x264 preset (`medium`) is printed
beside it, as earlier runs compared against that.

Measured, alternating within each round:
- the user's path: `render start remotion/samples/reference-150.json --quality high
  --watch` (the `render` CLI as a new process) against a stack started as `make up` starts
  it (services/local_stack: its own Redis, SQLite, render_api, progress, edge, worker), from
  the command's start to its exit;
- in-process: StartRender to the terminal event in this process, against a render_api and
  worker started in it;
- `npx remotion render` with the same settings, and at its default preset.
Both workers are warm, as in production (bundle cached, browser open); the CLI bundles
and launches a browser every time, as a one-off render does.

Each side is printed twice: wall seconds, and CPU seconds (bench/cpu.py: the CLI's process
tree; this process with its render host, Chromium and Redis; the CLI command with the
make-up stack's processes). On a machine shared with other jobs the wall figures stretch
unevenly (the CLI's bundling suffers most), the CPU figures hardly.

The worker captures one frame per static hold (SKIP_STATIC_FRAMES, on by default); a
worker with it off then renders the same clip in process, so the printout shows what the
holds are worth on their own. Last, a worker capturing with Page.captureScreenshot
(BEGIN_FRAME_CAPTURE=false) renders it in process: what begin-frame capture is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast

import grpc
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc

from bench.cpu import Started, TreeSampler
from bench.ssr_report import SIDES, Figures, report
from bench.ssr_stack import CONCURRENCY as CONCURRENCY  # re-exported: bench/ssr_vertical.py
from bench.ssr_stack import QUALITY as QUALITY
from bench.ssr_stack import SAMPLE as SAMPLE
from bench.ssr_stack import LocalStack, run_command
from render_common import streams
from render_common.config import ROOT, Settings
from render_common.db.migrate import migrate
from render_common.redis_client import create_redis
from render_common.tokens import mint_token
from services.render_api import app as api_app
from services.render_worker import app as worker_app
from services.render_worker.engines.base import RenderJob
from services.render_worker.engines.ssr import host_request
from tests.support.processes import RedisServer
from tests.support.scenes import sample_scenes

ROUNDS = 3
REMOTION = ROOT / "remotion"
# In-process sides of a worker restarted with other settings: side -> the settings changed.
VARIANTS: dict[str, dict[str, object]] = {
    "screenshot": {"begin_frame_capture": False},
    "one_browser": {"render_browsers": 1},
}


def cli_flags(settings: Settings, x264_preset: str | None) -> list[str]:
    """`npx remotion render` flags for the worker's request of the reference clip.

    `x264_preset` None leaves the CLI's default preset (medium).
    """
    job = RenderJob(
        render_id="bench",
        project_id="bench",
        scenes=[],
        format="mp4",
        quality=QUALITY,
        frames_total=150,
        attempt=1,
        work_dir=Path("/nonexistent"),
    )
    request = host_request(job, [], CONCURRENCY, 600_000, settings.x264_preset)
    flags = [
        f"--codec={request['codec']}",
        f"--width={request['width']}",
        f"--height={request['height']}",
        f"--jpeg-quality={request['jpegQuality']}",
        f"--image-format={request['imageFormat']}",
        f"--pixel-format={request['pixelFormat']}",
        f"--concurrency={request['concurrency']}",
        f"--browser-executable={settings.browser_executable}",
    ]
    # The render host gives crf precedence over videoBitrate, as Remotion does.
    if request["crf"] is not None:
        flags.append(f"--crf={request['crf']}")
    elif request["videoBitrate"]:
        flags.append(f"--video-bitrate={request['videoBitrate']}")
    if x264_preset is not None and request["x264Preset"]:
        flags.append(f"--x264-preset={x264_preset}")
    return flags


def cli_render(
    out_dir: Path, flags: Sequence[str], props: Path = SAMPLE, started: Started | None = None
) -> float:
    """Seconds of `npx remotion render` of the same composition and props (its pid is
    added to `started`)."""
    output = out_dir / "cli.mp4"
    began = time.perf_counter()
    run_command(
        [
            "npx",
            "remotion",
            "render",
            "src/index.ts",
            "MainComposition",
            str(output),
            f"--props={props}",
            *flags,
            "--log=error",
        ],
        cwd=REMOTION,
        started=started,
    )
    elapsed = time.perf_counter() - began
    output.unlink(missing_ok=True)
    return elapsed


async def service_render(
    stub: render_service_pb2_grpc.RenderServiceStub,
    auth: tuple[tuple[str, str], ...],
    redis: Redis,
    request: render_service_pb2.StartRenderRequest | None = None,
) -> float:
    """Seconds from StartRender to a SUCCEEDED render with its MP4 uploaded (in process);
    the reference clip unless another `request` is given.

    The end is the render's terminal event (published after the upload and the database
    update), read with a blocking XREAD: polling GetRender every few milliseconds would
    take CPU from the render on a 2-core machine and skew the comparison.
    """
    if request is None:
        project, scenes = sample_scenes("reference-150")
        request = render_service_pb2.StartRenderRequest(
            project_id=project,
            scenes=scenes,
            format=render_pb2.FORMAT_MP4,
            quality=render_pb2.QUALITY_HIGH,
        )
    started = time.perf_counter()
    response = await stub.StartRender(request, metadata=auth)
    render_id = response.render.render_id
    key, last = streams.events_stream(render_id), "0-0"
    while True:
        replies = await redis.xread({key: last}, block=60_000)
        for _, entries in cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], replies or []):
            for entry_id, fields in entries:
                last = entry_id
                if fields.get("state") == "succeeded":
                    elapsed = time.perf_counter() - started
                    render = (
                        await stub.GetRender(
                            render_service_pb2.GetRenderRequest(render_id=render_id),
                            metadata=auth,
                        )
                    ).render
                    assert render.state == render_pb2.Render.STATE_SUCCEEDED and render.output_url
                    return elapsed
                if fields.get("state") in ("failed", "cancelled"):
                    raise RuntimeError(f"render ended {fields}")


def _own_tree() -> list[int]:
    return [os.getpid()]  # this process, its render host, Chromium, Redis


async def _measured(
    side: Callable[[], Awaitable[float]], roots: Callable[[], list[int]] = _own_tree
) -> tuple[float, float]:
    """A side's wall seconds and the CPU seconds of the trees under `roots` meanwhile."""
    with TreeSampler(roots) as sampler:
        wall = await side()
    return wall, sampler.seconds


def bench_settings(data: Path, redis_url: str) -> Settings:
    """The in-process services' settings: this run's Redis and data dir, no quota in the way."""
    return Settings(
        data_dir=str(data / "in-process"),
        redis_url=redis_url,
        bind_host="127.0.0.1",
        log_level="WARNING",
        render_concurrency=CONCURRENCY,
        daily_render_limit=1000,
        concurrent_render_limit=100,
    )


Side = Callable[[], Awaitable[tuple[float, float]]]


async def run(rounds: int, every_frame: bool, variants: Sequence[str] = tuple(VARIANTS)) -> Figures:
    """Alternating rounds of every side; returns the wall and CPU seconds of each."""
    figures: Figures = {side: [] for side in SIDES}
    redis = RedisServer()
    redis.start()
    with tempfile.TemporaryDirectory(prefix="bench-ssr-") as tmp:
        data = Path(tmp)
        settings = bench_settings(data, redis.url)
        same, default = cli_flags(settings, settings.x264_preset), cli_flags(settings, None)
        stack = LocalStack(data / "stack")
        await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True)
        await migrate(settings.effective_database_url)  # what `make up` runs before the services
        api = await api_app.start(settings, port=0)
        worker = await worker_app.start(settings, health_port=0)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{api.port}")
        stub = render_service_pb2_grpc.RenderServiceStub(channel)
        auth = (("authorization", f"Bearer {mint_token(settings, 'bench')}"),)
        events = create_redis(redis.url, block_seconds=60.0)  # XREAD BLOCK 60 s below

        # Each side counts the processes doing its work: the CLI's own tree; the `render`
        # command and the make-up stack; this process (render_api and worker in it) with
        # its render host, Chromium and Redis. Not the other sides' idle services.
        def cli(flags: list[str]) -> Side:
            return _cli_side(data, flags)

        async def user() -> tuple[float, float]:
            started = Started()
            return await _measured(
                lambda: asyncio.to_thread(stack.user_render, started),
                lambda: [*started(), stack.supervisor_pid()],
            )

        in_process: Side = lambda: _measured(lambda: service_render(stub, auth, events))  # noqa: E731
        try:
            # Inside try: a stack that fails to serve is still stopped. In a thread: the
            # in-process worker's Redis reads would time out while the loop waited.
            await asyncio.to_thread(stack.up)
            # Warm-ups: browsers open, bundles cached, npx cache.
            await asyncio.to_thread(stack.user_render)
            await service_render(stub, auth, events)
            await asyncio.to_thread(cli_render, data, same)
            sides = [("user", user), ("service", in_process)]
            sides += [("cli_same", cli(same)), ("cli_default", cli(default))]
            await _rotated_rounds(figures, rounds, sides)
            warm_up = lambda: service_render(stub, auth, events)  # noqa: E731
            if every_frame:
                worker = await _restarted(worker, settings, warm_up, skip_static_frames=False)
                await _every_frame_rounds(figures, rounds, in_process, cli(same))
            for variant in variants:
                worker = await _restarted(worker, settings, warm_up, **VARIANTS[variant])
                for _ in range(rounds):
                    figures[variant].append(await in_process())
        finally:
            await channel.close()
            await events.aclose()
            await worker.stop(5)
            await api.stop(0)
            await asyncio.to_thread(stack.down)
            redis.close()
    return figures


async def _restarted(
    worker: worker_app.Worker,
    settings: Settings,
    warm_up: Callable[[], Awaitable[float]],
    **overrides: object,
) -> worker_app.Worker:
    """The in-process worker stopped and started again with `overrides`, warmed up."""
    await worker.stop(5)
    worker = await worker_app.start(settings.with_overrides(**overrides), health_port=0)
    await warm_up()
    return worker


async def _rotated_rounds(figures: Figures, rounds: int, sides: list[tuple[str, Side]]) -> None:
    """Each round runs every side once, the order rotated so that no side always follows
    the same one."""
    for index in range(rounds):
        for name, side in sides[index % len(sides) :] + sides[: index % len(sides)]:
            figures[name].append(await side())


def _cli_side(data: Path, flags: list[str]) -> Side:
    """`npx remotion render` with these flags, measured over its own process tree."""

    async def side() -> tuple[float, float]:
        started = Started()
        return await _measured(
            lambda: asyncio.to_thread(cli_render, data, flags, started=started), started
        )

    return side


async def _every_frame_rounds(figures: Figures, rounds: int, in_process: Side, cli: Side) -> None:
    """Rounds of the worker capturing every frame, each beside a same-preset CLI run."""
    for _ in range(rounds):
        figures["every_frame"].append(await in_process())
        figures["cli_same"].append(await cli())


def main(argv: list[str] | None = None) -> None:
    """Run alternating rounds and print the medians as ratios to the same-preset CLI."""
    parser = argparse.ArgumentParser(prog="python -m bench.ssr", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument(
        "--no-every-frame", action="store_true", help="skip the SKIP_STATIC_FRAMES=false rounds"
    )
    parser.add_argument(
        "--no-screenshot", action="store_true", help="skip the BEGIN_FRAME_CAPTURE=false rounds"
    )
    parser.add_argument(
        "--no-one-browser", action="store_true", help="skip the RENDER_BROWSERS=1 rounds"
    )
    args = parser.parse_args(argv)
    skipped = {"screenshot": args.no_screenshot, "one_browser": args.no_one_browser}
    variants = [variant for variant in VARIANTS if not skipped[variant]]
    before = os.getloadavg()[0]
    figures = asyncio.run(run(args.rounds, not args.no_every_frame, variants))
    report(figures, (before, os.getloadavg()[0]), cli_flags(Settings(), Settings().x264_preset))


if __name__ == "__main__":
    main()
