"""The long-lived Node render host (remotion/render-host.mjs), spoken to in JSON lines.

One host per worker keeps the webpack bundle and a Chromium open across renders. Jobs are
multiplexed by id. If the process dies, the renders in flight fail as retryable
(RENDER_HOST_CRASHED) and the next render starts a new host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.render_worker.failures import RenderCancelled, RenderFailure
from services.render_worker.host_messages import (
    DoneMessage,
    ErrorMessage,
    HostMessage,
    ProgressMessage,
    ReadyMessage,
    RenderOptions,
    RenderRequest,
    Request,
    decode,
    encode,
)

log = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 300.0
LINE_LIMIT = 16 << 20

ProgressCallback = Callable[[ProgressMessage], Awaitable[None]]


class RenderHost:
    """A client of one render host process, (re)started on demand."""

    def __init__(
        self,
        remotion_dir: Path,
        *,
        node: str = "node",
        browser_executable: str = "/usr/bin/chromium-headless-shell",
        asset_dir: Path | None = None,
        bundle_cache: Path | None = None,
        begin_frame_capture: bool | None = None,
        browsers: int | None = None,
    ) -> None:
        self._remotion_dir = remotion_dir
        self._node = node
        self._env = {
            **os.environ,
            "REMOTION_BROWSER_EXECUTABLE": browser_executable,
        }
        # Unset: the host's defaults (remotion/render-host.mjs); the worker passes Settings'.
        if begin_frame_capture is not None:
            self._env["RENDER_BEGIN_FRAME_CAPTURE"] = "1" if begin_frame_capture else "0"
        if browsers is not None:
            self._env["RENDER_HOST_BROWSERS"] = str(browsers)
        if asset_dir is not None:
            self._env["RENDER_ASSET_DIR"] = str(asset_dir)
        if bundle_cache is not None:
            self._env["RENDER_BUNDLE_CACHE"] = str(bundle_cache)
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr: asyncio.Task[None] | None = None
        self._jobs: dict[str, asyncio.Queue[HostMessage]] = {}
        self._start_lock = asyncio.Lock()
        self._starting: asyncio.Task[ReadyMessage] | None = None
        self._closing = False  # close() asked the host to exit: its exit is no crash
        self.ready: ReadyMessage | None = None

    @property
    def asset_base_url(self) -> str:
        """Base URL under which the host serves prefetched assets."""
        return self.ready["assetBaseUrl"] if self.ready else ""

    @property
    def pid(self) -> int | None:
        """Process id of the running host, if any."""
        return self._process.pid if self._process and self._process.returncode is None else None

    async def start(self) -> ReadyMessage:
        """Start the host if it is not running; returns its ready message.

        The start (launching Node, bundling when the sources changed, opening Chromium)
        runs in a task of its own: a caller cancelled meanwhile (the render was cancelled)
        returns at once, and the start carries on for the next render instead of leaving a
        half-started process behind.
        """
        if self._process is not None and self._process.returncode is None and self.ready:
            return self.ready
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._launch(), name="render-host-start")
            self._starting.add_done_callback(_retrieve)
        return await asyncio.shield(self._starting)

    async def _launch(self) -> ReadyMessage:
        async with self._start_lock:
            if self._process is not None and self._process.returncode is None and self.ready:
                return self.ready
            process = await asyncio.create_subprocess_exec(
                self._node,
                "render-host.mjs",
                cwd=self._remotion_dir,
                env=self._env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
            )
            self._process = process
            self._stderr = asyncio.create_task(self._drain_stderr(process))
            try:
                async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                    ready = await self._read_until_ready(process)
            except (TimeoutError, RenderFailure, asyncio.CancelledError):
                await self._kill(process)
                raise
            self.ready = ready
            self._reader = asyncio.create_task(self._read(process))
            log.info(
                "render host ready",
                extra={k: ready[k] for k in ("bundleHash", "bundleMs", "cached")},
            )
            return ready

    async def _read_until_ready(self, process: asyncio.subprocess.Process) -> ReadyMessage:
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                raise RenderFailure(
                    "RENDER_HOST_CRASHED", "render host exited while starting", retryable=True
                )
            message = decode(line)
            if message is None:
                continue
            if message["type"] == "ready":
                return message
            if message["type"] == "fatal":
                error = message["error"]
                raise RenderFailure(
                    str(error.get("reason") or "RENDER_HOST_FAILED"),
                    f"render host failed to start: {error.get('message', '')}",
                    retryable=False,
                    stack=str(error.get("stack", "")),
                )

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                line = await process.stdout.readline()
                if not line:
                    break
                message = decode(line)
                if message is None:
                    continue
                queue = self._jobs.get(str(message.get("id", "")))
                if queue is not None:
                    queue.put_nowait(message)
                elif message["type"] == "fatal":
                    log.error("render host fatal error", extra={"error": message["error"]})
        finally:
            code = await process.wait()
            level = logging.INFO if self._closing else logging.WARNING
            log.log(level, "render host exited", extra={"returncode": code})
            crash: ErrorMessage = {
                "type": "error",
                "id": None,
                "error": {
                    "reason": "RENDER_HOST_CRASHED",
                    "message": f"render host exited with code {code}",
                    "stack": "",
                    "retryable": True,
                },
            }
            for queue in self._jobs.values():
                queue.put_nowait(crash)

    async def _drain_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            log.debug("render host: %s", line.decode(errors="replace").rstrip())

    async def _send(self, message: Request) -> None:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise RenderFailure("RENDER_HOST_CRASHED", "render host is not running", retryable=True)
        process.stdin.write(encode(message))
        try:
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise RenderFailure(
                "RENDER_HOST_CRASHED", "render host went away", retryable=True
            ) from exc

    async def render(
        self, job_id: str, request: RenderOptions, on_progress: ProgressCallback
    ) -> DoneMessage:
        """Run one render; returns the host's `done` message.

        Raises RenderCancelled when cancelled, RenderFailure otherwise. Cancelling the
        calling task cancels the render in the host too.
        """
        await self.start()
        queue: asyncio.Queue[HostMessage] = asyncio.Queue()
        self._jobs[job_id] = queue
        try:
            render: RenderRequest = {**request, "type": "render", "id": job_id}
            await self._send(render)
            while True:
                message = await queue.get()
                if message["type"] == "progress":
                    await on_progress(message)
                elif message["type"] == "done":
                    frames = message.get("frames") or {}
                    log.info(
                        "render host finished",
                        extra={
                            "job": job_id,
                            "render_ms": message.get("renderMs"),
                            "frames_captured": frames.get("captured"),
                            "frames_total": frames.get("total"),
                            **(message.get("timings") or {}),
                        },
                    )
                    return message
                elif message["type"] == "error":
                    error = message.get("error") or {}
                    if error.get("reason") == "CANCELLED":
                        raise RenderCancelled()
                    raise RenderFailure(
                        str(error.get("reason") or "INTERNAL"),
                        str(error.get("message") or "render failed"),
                        retryable=bool(error.get("retryable", True)),
                        stack=str(error.get("stack") or ""),
                    )
        except asyncio.CancelledError:
            with contextlib.suppress(RenderFailure):
                await self.cancel_and_wait(job_id, queue)
            raise
        finally:
            self._jobs.pop(job_id, None)

    async def cancel_and_wait(
        self, job_id: str, queue: asyncio.Queue[HostMessage] | None = None
    ) -> None:
        """Ask the host to cancel a job and wait (bounded) until it confirms."""
        await self._send({"type": "cancel", "id": job_id})
        queue = queue or self._jobs.get(job_id)
        if queue is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while (await queue.get())["type"] not in ("error", "done"):
                    pass

    async def close(self) -> None:
        """Shut the host down (graceful, then killed after 10 s)."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            self._closing = True
            with contextlib.suppress(RenderFailure, OSError):
                await self._send({"type": "shutdown"})
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                await self._kill(process)
        for task in (self._reader, self._stderr):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)
        self._process = None
        self._closing = False

    @staticmethod
    async def _kill(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _retrieve(task: asyncio.Task[ReadyMessage]) -> None:
    """Mark a start's failure as seen (its callers, if any, got it already)."""
    if not task.cancelled():
        task.exception()
