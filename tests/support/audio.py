"""Test audio made with Remotion's bundled ffmpeg, and loudness measured on decoded PCM.

The bundled ffmpeg has no astats/ebur128 filters, so loudness is the RMS (in dBFS) of the
mono 16-bit PCM that ffmpeg decodes, over a time segment.
"""

from __future__ import annotations

import array
import math
import os
import subprocess
import tempfile
import wave
from functools import cache
from pathlib import Path

from render_common.config import ROOT

COMPOSITOR = ROOT / "remotion" / "node_modules" / "@remotion" / "compositor-linux-x64-gnu"
FFMPEG = COMPOSITOR / "ffmpeg"
RATE = 8000  # samples per second of the decoded PCM
SILENCE_DB = -60.0


def _ffmpeg(*args: str, input_bytes: bytes | None = None) -> bytes:
    return subprocess.run(
        [str(FFMPEG), "-hide_banner", "-loglevel", "error", *args],
        input=input_bytes,
        capture_output=True,
        check=True,
        env={**os.environ, "LD_LIBRARY_PATH": str(COMPOSITOR)},
    ).stdout


@cache
def tone_wav(seconds: float, frequency: int = 440) -> bytes:
    """A sine tone at a constant loudness (amplitude 1/8: about -21 dBFS RMS), as a WAV."""
    with tempfile.TemporaryDirectory(prefix="render-test-tone-") as work:
        target = Path(work) / "tone.wav"
        source = f"sine=frequency={frequency}:duration={seconds}:sample_rate=44100"
        _ffmpeg("-f", "lavfi", "-i", source, "-c:a", "pcm_s16le", str(target))
        return target.read_bytes()


@cache
def sound_clip_mp4(seconds: float = 1.0) -> bytes:
    """A small H.264 MP4 (64x36, 30 fps) with an AAC sine tone for its whole length."""
    from tests.support.asset_server import tiny_png  # the server serves this module's audio

    frames = round(seconds * 30)
    with tempfile.TemporaryDirectory(prefix="render-test-sound-clip-") as work:
        target = Path(work) / "clip.mp4"
        _ffmpeg(
            "-f", "image2pipe", "-framerate", "30", "-c:v", "png", "-i", "-",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            "-movflags", "+faststart", str(target),
            input_bytes=tiny_png(64, 36) * frames,
        )  # fmt: skip
        return target.read_bytes()


def pcm(path: Path) -> array.array[int]:
    """The first audio stream of a file as mono 16-bit samples at RATE (via a WAV file: the
    bundled ffmpeg has no raw PCM muxer)."""
    with tempfile.TemporaryDirectory(prefix="render-test-pcm-") as work:
        target = Path(work) / "pcm.wav"
        _ffmpeg(
            "-i", str(path), "-vn", "-ac", "1", "-ar", str(RATE), "-c:a", "pcm_s16le", str(target)
        )
        with wave.open(str(target), "rb") as reader:
            raw = reader.readframes(reader.getnframes())
    samples = array.array("h")
    samples.frombytes(raw)
    return samples


def loudness_db(samples: array.array[int], start: float, end: float) -> float:
    """RMS loudness in dBFS of the samples between two times (seconds); -120 for silence."""
    part = samples[int(start * RATE) : int(end * RATE)]
    if not part:
        raise ValueError(f"no samples between {start}s and {end}s (have {len(samples) / RATE}s)")
    rms = math.sqrt(sum(s * s for s in part) / len(part)) / 32768
    return 20 * math.log10(rms) if rms > 0 else -120.0


def served(path: str) -> tuple[bytes, str]:
    """The asset server's answer for `/tone-<seconds>s...` and `/sound-clip...`."""
    if path.startswith("/sound-clip"):
        return sound_clip_mp4(), "video/mp4"
    seconds = float(path[len("/tone-") :].split("s", 1)[0])
    return tone_wav(seconds), "audio/wav"
