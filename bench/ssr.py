"""SSR benchmark: StartRender to uploaded MP4 of the reference clip vs `npx remotion render`.

The reference clip is remotion/samples/reference-150.json (150 frames, 1920x1080, the
high-quality preset: CRF 18, JPEG quality 90). Both sides use the same composition,
props, browser (Debian's chromium-headless-shell) and Chromium concurrency, alternating
rounds in the same run. The worker is warm, as in production (bundle cached, browser
open); the CLI bundles and launches a browser every time, as a one-off render does.
Target: ratio at most 0.6.

The worker captures one frame per static hold (SKIP_STATIC_FRAMES, on by default: 97 of
the clip's 150 frames); a second worker with it off then renders the same clip, so the
printout shows what the holds are worth on their own.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
from redis.asyncio import Redis
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc

from render_common import streams
from render_common.auth import mint_token
from render_common.config import ROOT, Settings
from render_common.redis_client import create_redis
from services.render_api import app as api_app
from services.render_worker import app as worker_app
from tests.support.processes import RedisServer
from tests.support.scenes import sample_scenes

ROUNDS = 3
CONCURRENCY = 2
TARGET = 0.6
REMOTION = ROOT / "remotion"
SAMPLE = REMOTION / "samples" / "reference-150.json"


async def service_render(
    stub: render_service_pb2_grpc.RenderServiceStub,
    auth: tuple[tuple[str, str], ...],
    redis: Redis,
) -> float:
    """Seconds from StartRender to a SUCCEEDED render with its MP4 uploaded.

    The end is the render's terminal event (published after the upload and the database
    update), read with a blocking XREAD: polling GetRender every few milliseconds would
    take CPU from the render on a 2-core machine and skew the comparison.
    """
    project, scenes = sample_scenes("reference-150")
    started = time.perf_counter()
    response = await stub.StartRender(
        render_service_pb2.StartRenderRequest(
            project_id=project,
            scenes=scenes,
            format=render_pb2.FORMAT_MP4,
            quality=render_pb2.QUALITY_HIGH,
        ),
        metadata=auth,
    )
    render_id = response.render.render_id
    key, last = streams.events_stream(render_id), "0-0"
    while True:
        for _, entries in await redis.xread({key: last}, block=60_000) or []:
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


def cli_render(out_dir: Path, browser: str) -> float:
    """Seconds of `npx remotion render` of the same composition and props."""
    output = out_dir / "cli.mp4"
    started = time.perf_counter()
    subprocess.run(
        [
            "npx",
            "remotion",
            "render",
            "src/index.ts",
            "MainComposition",
            str(output),
            f"--props={SAMPLE}",
            f"--browser-executable={browser}",
            f"--concurrency={CONCURRENCY}",
            "--crf=18",
            "--jpeg-quality=90",
            "--width=1920",
            "--height=1080",
            "--log=error",
        ],
        cwd=REMOTION,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    output.unlink(missing_ok=True)
    return elapsed


async def main() -> None:
    """Run alternating rounds and print the medians and their ratio."""
    redis = RedisServer()
    redis.start()
    with tempfile.TemporaryDirectory(prefix="bench-ssr-") as tmp:
        data = Path(tmp)
        settings = Settings(
            data_dir=str(data),
            redis_url=redis.url,
            bind_host="127.0.0.1",
            log_level="WARNING",
            render_concurrency=CONCURRENCY,
            daily_render_limit=1000,
            concurrent_render_limit=100,
        )
        api = await api_app.start(settings, port=0)
        worker = await worker_app.start(settings, health_port=0)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{api.port}")
        stub = render_service_pb2_grpc.RenderServiceStub(channel)
        auth = (("authorization", f"Bearer {mint_token(settings, 'bench')}"),)
        events = create_redis(redis.url, socket_timeout=None)
        try:
            await service_render(stub, auth, events)  # warm-up: browser open, bundle cached
            cli_render(data, settings.browser_executable)  # warm-up: npx cache
            service, cli, every_frame = [], [], []
            for _ in range(ROUNDS):
                service.append(await service_render(stub, auth, events))
                cli.append(await asyncio.to_thread(cli_render, data, settings.browser_executable))
            await worker.stop(5)
            worker = await worker_app.start(
                settings.with_overrides(skip_static_frames=False), health_port=0
            )
            await service_render(stub, auth, events)  # warm-up of the new worker
            for _ in range(ROUNDS):
                every_frame.append(await service_render(stub, auth, events))
        finally:
            await channel.close()
            await events.aclose()
            await worker.stop(5)
            await api.stop(0)
            redis.close()
    ratio = statistics.median(service) / statistics.median(cli)
    every_frame_ratio = statistics.median(every_frame) / statistics.median(cli)
    print(
        "SSR: reference clip, 150 frames 1920x1080 h264 CRF 18, concurrency",
        CONCURRENCY,
        f"(render-export x264 preset {Settings().x264_preset}; the CLI's default, medium)",
    )
    print(
        f"  render-export StartRender -> uploaded MP4: median {statistics.median(service):6.2f} s  rounds {[round(x, 2) for x in service]}"
    )
    print(
        f"  npx remotion render (same props/browser):  median {statistics.median(cli):6.2f} s  rounds {[round(x, 2) for x in cli]}"
    )
    print(
        f"  render-export, every frame captured:       median {statistics.median(every_frame):6.2f} s  rounds {[round(x, 2) for x in every_frame]}  (ratio {every_frame_ratio:.2f})"
    )
    print(f"  ratio {ratio:.2f} (target <= {TARGET}) {'PASS' if ratio <= TARGET else 'MISS'}")


if __name__ == "__main__":
    asyncio.run(main())
