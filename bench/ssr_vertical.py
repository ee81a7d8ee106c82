"""SSR benchmark of a 9:16 1080p clip with a soundtrack and captions, beside the reference.

The vertical clip is the reference clip's scenes (remotion/samples/reference-150.json, 150
frames, quality high) at 1080x1920 with music under it (a 6 s tone served on 127.0.0.1,
faded in and out) and three burned-in captions. Both clips are measured the way bench/
ssr.py measures the reference: StartRender to the terminal event in this process (warm
worker) against `npx remotion render` of the same composition and props with the worker's
own encoder settings (flags from the worker's request; the CLI fetches the soundtrack
from the same server). Rounds alternate the four sides. Target: the vertical clip's ratio
no worse than the reference clip's, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc

from bench.ssr import CONCURRENCY, cli_flags, cli_render, service_render
from render_common.config import Settings
from render_common.db.migrate import migrate
from render_common.redis_client import create_redis
from render_common.tokens import mint_token
from services.render_api import app as api_app
from services.render_worker import app as worker_app
from tests.support.asset_server import AssetServer
from tests.support.processes import RedisServer
from tests.support.scenes import sample_scenes

ROUNDS = 3
WIDTH, HEIGHT = 1080, 1920
CUES = ((0.3, 1.6, "Vertical video, with music"), (1.8, 3.4, "and captions"), (3.6, 4.9, "Bye"))


def _at(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(seconds * 1e9))
    return out


def vertical_request(music: str) -> render_service_pb2.StartRenderRequest:
    """The vertical clip's StartRender."""
    project, scenes = sample_scenes("reference-150")
    return render_service_pb2.StartRenderRequest(
        project_id=f"{project}-vertical",
        scenes=scenes,
        format=render_pb2.FORMAT_MP4,
        quality=render_pb2.QUALITY_HIGH,
        aspect_ratio=render_pb2.ASPECT_RATIO_9_16,
        resolution=render_pb2.RESOLUTION_1080P,
        soundtrack=render_pb2.Soundtrack(src=music, fade_in_seconds=1, fade_out_seconds=1),
        captions=render_pb2.Captions(
            cues=[render_pb2.CaptionCue(start=_at(a), end=_at(b), text=t) for a, b, t in CUES],
            style=render_pb2.CAPTION_STYLE_BOXED,
        ),
    )


def vertical_props(music: str, path: Path) -> Path:
    """The same clip as `npx remotion render --props` (what the worker gives the host)."""
    project, _ = sample_scenes("reference-150")
    sample = Path(__file__).resolve().parents[1] / "remotion" / "samples" / "reference-150.json"
    props = json.loads(sample.read_text())
    props["projectId"] = f"{project}-vertical"
    props.update(width=WIDTH, height=HEIGHT, fps=30, transparent=False)  # as the worker sizes it
    props["soundtrack"] = {
        "src": music,
        "volume": 1.0,
        "fadeInSeconds": 1.0,
        "fadeOutSeconds": 1.0,
        "startFromSeconds": 0.0,
        "loop": False,
    }
    cues = [{"start": a, "end": b, "text": t} for a, b, t in CUES]
    props["captions"] = {"cues": cues, "style": "boxed"}
    path.write_text(json.dumps(props))
    return path


def vertical_flags(flags: list[str]) -> list[str]:
    """The reference's CLI flags at 1080x1920."""
    kept = [f for f in flags if not f.startswith(("--width=", "--height="))]
    return [*kept, f"--width={WIDTH}", f"--height={HEIGHT}"]


async def run(rounds: int) -> tuple[dict[str, list[float]], str]:
    """Alternating rounds of the four sides; the seconds of each, and the output's size."""
    figures: dict[str, list[float]] = {"ref": [], "ref_cli": [], "vertical": [], "vert_cli": []}
    redis, assets = RedisServer(), AssetServer()
    redis.start()
    with tempfile.TemporaryDirectory(prefix="bench-ssr-vertical-") as tmp:
        data = Path(tmp)
        settings = Settings(
            data_dir=str(data / "in-process"),
            redis_url=redis.url,
            bind_host="127.0.0.1",
            log_level="WARNING",
            render_concurrency=CONCURRENCY,
            daily_render_limit=1000,
            concurrent_render_limit=100,
            asset_allowed_networks=("127.0.0.1/32",),
        )
        music = assets.url("/tone-6s.wav")
        flags = cli_flags(settings, settings.x264_preset)
        props = vertical_props(music, data / "vertical.json")
        await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True)
        await migrate(settings.effective_database_url)
        api = await api_app.start(settings, port=0)
        worker = await worker_app.start(settings, health_port=0)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{api.port}")
        stub = render_service_pb2_grpc.RenderServiceStub(channel)
        auth = (("authorization", f"Bearer {mint_token(settings, 'bench')}"),)
        events = create_redis(redis.url, block_seconds=60.0)
        request = vertical_request(music)
        sides: list[tuple[str, Any]] = [
            ("ref", lambda: service_render(stub, auth, events)),
            ("ref_cli", lambda: asyncio.to_thread(cli_render, data, flags)),
            ("vertical", lambda: service_render(stub, auth, events, request)),
            ("vert_cli", lambda: asyncio.to_thread(cli_render, data, vertical_flags(flags), props)),
        ]
        try:
            for _, side in sides:  # warm-ups: browser open, bundles cached, npx cache
                await side()
            for index in range(rounds):
                for name, side in sides[index % 4 :] + sides[: index % 4]:
                    figures[name].append(await side())
            size = await _output_size(stub, auth, request)
        finally:
            await channel.close()
            await events.aclose()
            await worker.stop(5)
            await api.stop(0)
            assets.close()
            redis.close()
    return figures, size


async def _output_size(
    stub: render_service_pb2_grpc.RenderServiceStub,
    auth: tuple[tuple[str, str], ...],
    request: render_service_pb2.StartRenderRequest,
) -> str:
    """The vertical clip's output as the service reports it (size, audio, captions)."""
    asked = render_service_pb2.ListRendersRequest(project_id=request.project_id, page_size=5)
    listed = await stub.ListRenders(asked, metadata=auth)
    for render in listed.renders:
        if render.metadata.width:
            meta = render.metadata
            return (
                f"{meta.width}x{meta.height}, audio {meta.audio_codec or 'none'},"
                f" captions {'yes' if render.captions_url else 'no'}"
            )
    return "unknown"


def _line(label: str, values: list[float], baseline: float | None) -> str:
    median = statistics.median(values)
    ratio = f"  ratio {median / baseline:.2f}" if baseline else ""
    return f"  {label:<46} median {median:6.2f} s{ratio}  rounds {[round(x, 2) for x in values]}"


def main(argv: list[str] | None = None) -> None:
    """Run the rounds; print both clips' ratios to their own CLI render."""
    parser = argparse.ArgumentParser(prog="python -m bench.ssr_vertical", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    figures, size = asyncio.run(run(args.rounds))
    ref_cli, vert_cli = (
        statistics.median(figures["ref_cli"]),
        statistics.median(figures["vert_cli"]),
    )
    ref = statistics.median(figures["ref"]) / ref_cli
    vertical = statistics.median(figures["vertical"]) / vert_cli
    print(
        f"SSR vertical: reference clip 1920x1080 vs the same scenes at {WIDTH}x{HEIGHT} with a"
        f" soundtrack and captions (output: {size}); quality high, concurrency {CONCURRENCY};"
        f" load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    print(_line("reference: npx remotion render", figures["ref_cli"], None))
    print(_line("reference: StartRender -> terminal event", figures["ref"], ref_cli))
    print(_line("vertical + music + captions: npx remotion render", figures["vert_cli"], None))
    print(_line("vertical + music + captions: StartRender -> end", figures["vertical"], vert_cli))
    verdict = "PASS" if vertical <= ref else "MISS"
    print(f"  vertical ratio {vertical:.2f} vs reference ratio {ref:.2f} (target <=): {verdict}")


if __name__ == "__main__":
    main()
