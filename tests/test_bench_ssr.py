"""bench/ssr.py gives `npx remotion render` the worker's own encoder settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.cpu import Started, TreeSampler
from bench.ssr import CONCURRENCY, QUALITY, cli_flags
from bench.ssr_stack import run_command
from render_common.config import ROOT, Settings
from render_common.output_shape import default_shape
from render_common.presets import FRAME_IMAGE_FORMAT, PIXEL_FORMAT, QUALITY_PRESETS


def test_cli_flags_are_the_worker_request_of_the_reference_clip() -> None:
    settings = Settings(x264_preset="faster")
    preset = QUALITY_PRESETS[QUALITY]
    shape = default_shape("mp4", QUALITY)
    flags = cli_flags(settings, settings.x264_preset)
    for expected in (
        "--codec=h264",
        f"--crf={preset.crf}",
        f"--jpeg-quality={preset.jpeg_quality}",
        f"--width={shape.width}",
        f"--height={shape.height}",
        f"--image-format={FRAME_IMAGE_FORMAT}",
        f"--pixel-format={PIXEL_FORMAT}",
        f"--concurrency={CONCURRENCY}",
        "--x264-preset=faster",
        f"--browser-executable={settings.browser_executable}",
    ):
        assert expected in flags
    # CRF only: the presets have no bitrate (render_common/presets.py).
    assert not any(flag.startswith("--video-bitrate") for flag in flags)


def test_default_preset_run_differs_only_by_the_x264_preset() -> None:
    settings = Settings()
    same, default = cli_flags(settings, settings.x264_preset), cli_flags(settings, None)
    assert [f for f in same if not f.startswith("--x264-preset=")] == default
    assert f"--x264-preset={settings.x264_preset}" in same


def test_cpu_sampler_follows_a_process_after_its_parent_ends() -> None:
    """`npx remotion render` ends before its Chromium: the sampler still counts Chromium."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"
    script = f"{sys.executable} -c '{burn}' & sleep 0.4"  # the shell ends first
    with TreeSampler(lambda: [os.getpid()], interval=0.1) as sampler:
        subprocess.run(["sh", "-c", script], check=True)
        deadline = time.monotonic() + 60
        while sampler.seconds < 1.0 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert sampler.seconds >= 1.0


def _burn(seconds: float) -> None:
    began = time.process_time()
    while time.process_time() - began < seconds:
        pass


def test_cpu_sampler_of_a_started_command_counts_it_not_this_process() -> None:
    """The CLI sides count their command's tree only, not this process's idle services."""
    started = Started()
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"
    with TreeSampler(started, interval=0.1) as sampler:
        run_command([sys.executable, "-c", burn], cwd=ROOT, started=started)
        _burn(1.0)  # this process: not among the roots
    assert started() and 0.7 <= sampler.seconds < 1.5
