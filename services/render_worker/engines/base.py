"""The engine interface: render one job, report progress, honour task cancellation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from render_common.downloads import StoredObject
from render_common.output_shape import OutputShape, default_shape

# Writes engine-specific columns (lambda_render_id, ...) on the render row.
DetailsRecorder = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RenderJob:
    """Everything an engine needs to render one attempt."""

    render_id: str
    project_id: str
    scenes: list[dict[str, Any]]
    format: str
    quality: str
    frames_total: int
    attempt: int
    work_dir: Path  # private temp directory of this attempt, removed afterwards
    # Engine columns already on the render when this attempt was taken over or handed
    # back (e.g. the Lambda render id), so the engine follows that work instead of redoing it.
    resume: Mapping[str, Any] = field(default_factory=dict)
    # Records engine columns on the render as soon as they are known (lease-conditional).
    record: DetailsRecorder | None = None
    # Music under the render and the caption track, as validated (services/render_worker/
    # media.py turns them into the composition's props).
    soundtrack: Mapping[str, Any] | None = None
    captions: Mapping[str, Any] | None = None
    poster_frame: int | None = None  # the thumbnail's frame (None: render_common.poster's default)
    # Size, frame rate, codec and transparency; None: the quality's defaults (16:9, 30 fps).
    shape: OutputShape | None = None

    @property
    def output(self) -> OutputShape:
        """The output's resolved shape."""
        return self.shape or default_shape(self.format, self.quality)


@dataclass(frozen=True, slots=True)
class RenderOutput:
    """What an engine produced: a local file to upload, or an object already stored."""

    probe: dict[str, Any]
    output_path: Path | None = None
    thumbnail_path: Path | None = None
    # Set when the engine stored the output itself (Lambda): where it is, for links signed
    # when the render is read (a private output), or a URL that never expires (public).
    stored: StoredObject | None = None
    output_url: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # engine-specific columns


# Overall progress an engine reports: PREPARED_PROGRESS once its render starts, up to
# RENDERED_PROGRESS when the render is done; the processor takes it on from there
# (UPLOADING_PROGRESS), so events never go backwards whichever engine ran.
PREPARED_PROGRESS = 0.05
RENDERED_PROGRESS = 0.9
UPLOADING_PROGRESS = 0.92


def engine_progress(share: float) -> float:
    """Overall progress for `share` (0..1) of an engine's own render."""
    share = min(max(share, 0.0), 1.0)
    return PREPARED_PROGRESS + (RENDERED_PROGRESS - PREPARED_PROGRESS) * share


# stage ("bundling" | "rendering" | "encoding" | "uploading"), progress 0..1, frames rendered
ProgressReport = Callable[[str, float, int], Awaitable[None]]


class Engine(Protocol):
    """Renders a job; cancelling the calling task must stop the render and its browser."""

    name: str

    async def render(self, job: RenderJob, report: ProgressReport) -> RenderOutput:
        """Render `job`; raise RenderFailure (retryable or not) when it fails."""
        ...

    async def cancel(self, job: RenderJob) -> None:
        """Stop work the engine runs outside this process (the owner cancelled, or timeout).

        Called before the render task is cancelled; not called when the worker merely stops
        or loses its lease, so that another worker can take the work over.
        """
        ...

    async def close(self) -> None:
        """Release what the engine holds (processes, clients)."""
        ...
