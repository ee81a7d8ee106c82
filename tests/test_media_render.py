"""Soundtrack, scene volume, audio-only exports and captions, rendered for real and measured.

One stack (render_api and an SSR worker) serves the module; clips are 2-3 s at 720p
(LOW) of plain scenes. Loudness is the RMS of the decoded audio over a segment
(tests/support/audio.py); captions are compared pixel by pixel with the same render
without them.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf import duration_pb2
from render.v1 import render_pb2

from render_common.captions import Cue, parse_vtt
from render_common.config import ROOT, Settings
from services.render_worker.host import RenderHost
from services.render_worker.host_messages import ProgressMessage
from tests.support.asset_server import AssetServer
from tests.support.audio import COMPOSITOR as LIBS
from tests.support.audio import FFMPEG, SILENCE_DB, loudness_db, pcm
from tests.support.scenes import scene
from tests.support.stack import FFPROBE, Stack, start_stack

pytestmark = pytest.mark.slow
LOUD_DB = -32.0  # the test tone is about -24 dBFS mono (ffmpeg sine: amplitude 1/8)


@pytest.fixture(scope="module")
def assets() -> Iterator[AssetServer]:
    server = AssetServer()
    yield server
    server.close()


@pytest_asyncio.fixture(scope="module")
async def stack(
    base_settings: Settings, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    settings = base_settings.with_overrides(
        database_url=postgres_url,
        data_dir=str(tmp_path_factory.mktemp("media")),
        asset_allowed_networks=("127.0.0.1/32",),
    )
    running = await start_stack(settings, f"user-{uuid.uuid4().hex[:12]}")
    yield running
    await running.close()


def local(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(url[len("file://") :])


def streams(path: Path) -> dict[str, dict[str, Any]]:
    """ffprobe's streams of a file by type (first of each)."""
    import json

    out = subprocess.run(
        [str(FFPROBE), "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    found: dict[str, dict[str, Any]] = {}
    for stream in json.loads(out)["streams"]:
        found.setdefault(stream["codec_type"], stream)
    return found


async def rendered(stack: Stack, scenes: list[Any], **fields: Any) -> render_pb2.Render:
    render = await stack.start(scenes, **fields)
    done = await stack.wait(render.render_id, timeout=300)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    return done


def track(url: str, **fields: Any) -> render_pb2.Soundtrack:
    return render_pb2.Soundtrack(src=url, **fields)


async def test_soundtrack_fades_and_is_cut_at_the_video_end(
    stack: Stack, assets: AssetServer
) -> None:
    music = track(assets.url("/tone-5s.wav"), fade_in_seconds=1, fade_out_seconds=1)
    done = await rendered(stack, [scene("color", 90, color="#123456")], soundtrack=music)
    output = local(done.output_url)
    audio = streams(output)["audio"]
    assert float(audio["duration"]) == pytest.approx(3.0, abs=0.1)
    samples = pcm(output)
    mid = loudness_db(samples, 1.25, 1.75)
    assert mid > LOUD_DB
    assert loudness_db(samples, 0.0, 0.25) < mid - 10  # fading in
    assert loudness_db(samples, 2.8, 2.95) < mid - 10  # fading out
    meta = done.metadata
    assert meta.audio_codec == "aac" and meta.audio_sample_rate_hz > 0 and meta.audio_channels > 0
    assert done.soundtrack.src == music.src and done.soundtrack.fade_in_seconds == 1


async def test_mp3_of_a_looped_soundtrack(stack: Stack, assets: AssetServer) -> None:
    music = track(assets.url("/tone-1s.wav"), loop=True)
    done = await rendered(
        stack, [scene("color", 60, color="#000")], soundtrack=music, format=render_pb2.FORMAT_MP3
    )
    output = local(done.output_url)
    assert output.suffix == ".mp3" and "video" not in streams(output)
    assert streams(output)["audio"]["codec_name"] == "mp3"
    assert done.metadata.duration.ToNanoseconds() / 1e9 == pytest.approx(2.0, abs=0.15)
    assert loudness_db(pcm(output), 1.2, 1.8) > LOUD_DB  # the second time round
    assert done.thumbnail_url == ""  # no picture, no thumbnail


async def test_wav_of_a_trimmed_soundtrack(stack: Stack, assets: AssetServer) -> None:
    music = track(assets.url("/tone-1s.wav"), loop=False)
    done = await rendered(
        stack, [scene("color", 60, color="#000")], soundtrack=music, format=render_pb2.FORMAT_WAV
    )
    output = local(done.output_url)
    audio = streams(output)["audio"]
    assert output.suffix == ".wav" and audio["codec_name"].startswith("pcm_s16")
    assert float(audio["duration"]) == pytest.approx(2.0, abs=0.1)
    samples = pcm(output)
    assert loudness_db(samples, 0.2, 0.8) > LOUD_DB
    assert loudness_db(samples, 1.2, 1.9) < SILENCE_DB  # played once, then silence


async def test_video_scene_volume(stack: Stack, assets: AssetServer) -> None:
    clip = assets.url("/sound-clip.mp4")
    scenes = [scene("video", 30, src=clip, volume=0), scene("video", 30, src=clip, volume=1)]
    done = await rendered(stack, scenes)
    samples = pcm(local(done.output_url))
    assert loudness_db(samples, 0.1, 0.9) < SILENCE_DB
    assert loudness_db(samples, 1.1, 1.9) > LOUD_DB


def gray_frame(path: Path, seconds: float) -> bytes:
    """The frame at `seconds` as 8-bit gray pixels."""
    return subprocess.run(
        [
            *(str(FFMPEG), "-v", "error", "-ss", f"{seconds}", "-i", str(path), "-frames:v", "1"),
            *("-pix_fmt", "gray", "-c:v", "rawvideo", "-f", "image2pipe", "-"),
        ],
        capture_output=True,
        check=True,
        env={"LD_LIBRARY_PATH": str(LIBS)},
    ).stdout


def changed_pixels(a: bytes, b: bytes) -> int:
    assert len(a) == len(b) > 0
    return sum(1 for x, y in zip(a, b, strict=True) if abs(x - y) > 24)


def cue(start: float, end: float, text: str) -> render_pb2.CaptionCue:
    def at(value: float) -> duration_pb2.Duration:
        out = duration_pb2.Duration()
        out.FromNanoseconds(round(value * 1e9))
        return out

    return render_pb2.CaptionCue(start=at(start), end=at(end), text=text)


async def test_burned_captions_and_the_vtt_sidecar(stack: Stack) -> None:
    scenes = [scene("color", 60, color="#336699")]
    captions = render_pb2.Captions(
        cues=[cue(0.5, 1.2, "Hello captions,\nburned in")], style=render_pb2.CAPTION_STYLE_BOXED
    )
    with_captions = await rendered(stack, scenes, captions=captions)
    without = await rendered(stack, scenes)
    assert without.captions_url == ""
    shown, plain = local(with_captions.output_url), local(without.output_url)
    during = changed_pixels(gray_frame(shown, 0.8), gray_frame(plain, 0.8))
    after = changed_pixels(gray_frame(shown, 1.6), gray_frame(plain, 1.6))
    before = changed_pixels(gray_frame(shown, 0.2), gray_frame(plain, 0.2))
    assert during > 2000 and after < 50 and before < 50, (before, during, after)
    sidecar = local(with_captions.captions_url)
    assert sidecar.name == f"{with_captions.render_id}.vtt"
    assert parse_vtt(sidecar.read_text()) == [Cue(0.5, 1.2, "Hello captions,\nburned in")]


async def test_sidecar_only_is_not_burned(stack: Stack) -> None:
    srt = "1\n00:00:00,000 --> 00:00:01,000\nNot in the picture\n"
    captions = render_pb2.Captions(srt=srt, sidecar_only=True)
    scenes = [scene("color", 30, color="#336699")]
    done, plain = await rendered(stack, scenes, captions=captions), await rendered(stack, scenes)
    frame = gray_frame(local(done.output_url), 0.5)
    assert changed_pixels(frame, gray_frame(local(plain.output_url), 0.5)) < 50
    assert parse_vtt(local(done.captions_url).read_text()) == [Cue(0.0, 1.0, "Not in the picture")]


async def test_private_soundtrack_address_is_refused(stack: Stack) -> None:
    music = track("http://10.1.2.3/music.mp3")
    render = await stack.start([scene("color", 30, color="#000")], soundtrack=music)
    done = await stack.wait(render.render_id, timeout=120)
    assert done.state == render_pb2.Render.STATE_FAILED
    assert done.error.reason == "ASSET_FORBIDDEN" and music.src in done.error.message


async def test_static_holds_keep_the_whole_soundtrack(assets: AssetServer, tmp_path: Path) -> None:
    """The host captures one frame per hold and renders the sound on its own: the music
    plays to the end although Chromium captured a few frames only."""
    host = RenderHost(ROOT / "remotion")
    await host.start()

    async def ignore(_: ProgressMessage) -> None:
        return None

    try:
        props = {
            "projectId": "holds",
            "scenes": [{"type": "color", "durationInFrames": 60, "props": {"color": "#000"}}],
            "soundtrack": {
                "src": assets.url("/tone-3s.wav"),
                "volume": 1,
                "fadeInSeconds": 0,
                "fadeOutSeconds": 0,
                "startFromSeconds": 0,
                "loop": False,
            },
        }
        output = tmp_path / "holds.mp4"
        request: dict[str, Any] = {"inputProps": props, "codec": "h264", "concurrency": 1}
        request |= {"outputPath": str(output), "width": 320, "height": 180}
        done = await host.render("holds", request, ignore)  # type: ignore[arg-type]
    finally:
        await host.close()
    assert done["frames"]["captured"] < 10 and done["frames"]["total"] == 60
    assert float(streams(output)["audio"]["duration"]) == pytest.approx(2.0, abs=0.1)
    samples = pcm(output)
    assert loudness_db(samples, 0.1, 0.5) > LOUD_DB and loudness_db(samples, 1.5, 1.9) > LOUD_DB
