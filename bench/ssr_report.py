"""bench/ssr.py's printout: each side's wall and CPU seconds as ratios to the same-preset CLI."""

from __future__ import annotations

import os
import statistics

from bench.ssr_stack import CONCURRENCY, QUALITY
from render_common.config import Settings

Figures = dict[str, list[tuple[float, float]]]  # side -> (wall s, CPU s) per round
# In the order printed; bench/ssr.py fills them.
SIDES = ("cli_same", "cli_default", "user", "service", "every_frame", "screenshot", "one_browser")
TARGET_USER = 0.5
TARGET_IN_PROCESS = 0.45


def _line(label: str, values: list[float], baseline: float | None, unit: str) -> str:
    median = statistics.median(values)
    ratio = f"  ratio {median / baseline:.2f}" if baseline else ""
    rounds = [round(x, 1) for x in values]
    return f"  {label:<44} {unit:<4} median {median:6.2f} s{ratio}  rounds {rounds}"


def report(figures: Figures, load: tuple[float, float], flags: list[str]) -> None:
    """Print wall and CPU seconds of each side, as ratios to the same-preset CLI (run with
    `flags`)."""
    preset = Settings().x264_preset
    print(
        f"SSR: reference clip, 150 frames 1920x1080 h264, quality {QUALITY}, concurrency"
        f" {CONCURRENCY}, x264 preset {preset}; load average before {load[0]:.1f},"
        f" after {load[1]:.1f} on {os.cpu_count()} cores"
    )
    print(f"  CLI flags (from the worker's request): {' '.join(flags)}")
    labels = {
        "cli_same": f"npx remotion render --x264-preset={preset}",
        "cli_default": "npx remotion render, default preset (medium)",
        "user": "user: render start --watch, start to exit",
        "service": "in process: StartRender -> terminal event",
        "every_frame": "in process, every frame captured",
        "screenshot": "in process, Page.captureScreenshot",
        "one_browser": "in process, one browser (RENDER_BROWSERS=1)",
    }
    ratios: dict[tuple[str, int], float] = {}
    for which, unit in ((0, "wall"), (1, "CPU")):
        baseline = statistics.median(f[which] for f in figures["cli_same"])
        for side in SIDES:
            values = [f[which] for f in figures[side]]
            if values:
                ratios[side, which] = statistics.median(values) / baseline
                base = None if side == "cli_same" else baseline
                print(_line(labels[side], values, base, unit))
    for which, unit in ((0, "wall"), (1, "CPU")):
        user, service = ratios["user", which], ratios["service", which]
        print(
            f"  {unit}: user path {user:.2f} (target <= {TARGET_USER}) "
            f"{'PASS' if user <= TARGET_USER else 'MISS'};"
            f" in process {service:.2f} (target <= {TARGET_IN_PROCESS}) "
            f"{'PASS' if service <= TARGET_IN_PROCESS else 'MISS'}"
        )
