"""A real render worker process whose engine follows a script instead of Chromium.

Everything but the engine is the worker as deployed (consumer, processor, lifecycle,
bookkeeping, work directories, storage), so faults injected from outside (Redis
restarts, SIGKILL) meet the real code. The script is the first scene's `text`, with
directives separated by ';':

    seconds=N   render for N seconds, reporting progress (default 0.5)
    crash       SIGKILL this worker process on every delivery (a render that kills its
                worker, as one running it out of memory would)
    hang-once   the first time (no marker file yet under RENDER_DATA_DIR) render for an
                hour instead: a test kills the worker meanwhile
    fail-once   attempt 1 fails with a retryable reason (ASSET_UNAVAILABLE)

The engine first writes `output.mp4` into the attempt's work directory (as a real render
does), and appends "render_id attempt pid" to RENDER_DATA_DIR/engine-runs.log per start.

Run: `python -m tests.support.scripted_worker` with the worker's environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from render_common.config import Settings
from render_common.logs import configure_logging
from render_common.server import wait_for_shutdown_signal
from services.render_worker import app as worker_app
from services.render_worker.engines.base import (
    ProgressReport,
    RenderJob,
    RenderOutput,
    engine_progress,
)
from services.render_worker.failures import RenderFailure


def directives(job: RenderJob) -> dict[str, str]:
    """The script of a job: directive -> value ('' for flags)."""
    text = str((job.scenes[0].get("props") or {}).get("text", ""))
    script: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            script[name] = value
    return script


class ScriptedEngine:
    """An SSR stand-in doing what the scene's script says."""

    name = "ssr"

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    async def render(self, job: RenderJob, report: ProgressReport) -> RenderOutput:
        """Follow the script; the output is a small file in the work directory."""
        script = directives(job)
        with (self._data_dir / "engine-runs.log").open("a") as log:
            log.write(f"{job.render_id} {job.attempt} {os.getpid()}\n")
        await report("bundling", 0.0, 0)
        output = job.work_dir / "output.mp4"
        output.write_bytes(f"{job.render_id} attempt {job.attempt}\n".encode() * 1000)
        if "crash" in script:
            os.kill(os.getpid(), signal.SIGKILL)
        seconds = float(script.get("seconds") or 0.5)
        marker = self._data_dir / f"hung-{job.render_id}"
        if "hang-once" in script and not marker.exists():
            marker.touch()
            seconds = 3600.0
        steps = max(1, int(seconds / 0.1))
        for step in range(steps):
            await asyncio.sleep(seconds / steps)
            frames = job.frames_total * (step + 1) // steps
            await report("rendering", engine_progress((step + 1) / steps), frames)
        if "fail-once" in script and job.attempt == 1:
            raise RenderFailure(
                "ASSET_UNAVAILABLE", "scripted failure of attempt 1", retryable=True
            )
        return RenderOutput(
            probe={
                "durationSec": job.frames_total / 30,
                "sizeBytes": output.stat().st_size,
                "width": 1280,
                "height": 720,
                "fps": 30.0,
                "codec": "h264",
            },
            output_path=output,
        )

    async def cancel(self, job: RenderJob) -> None:
        """Nothing runs elsewhere."""

    async def close(self) -> None:
        """Nothing to release."""


async def main() -> None:
    """Run a worker with the scripted engine until SIGTERM/SIGINT."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    engine = ScriptedEngine(Path(settings.data_dir))
    worker = await worker_app.start(settings, engines={"ssr": engine}, warm=False)
    await wait_for_shutdown_signal()
    await worker.stop(settings.shutdown_grace_seconds)


if __name__ == "__main__":
    asyncio.run(main())
