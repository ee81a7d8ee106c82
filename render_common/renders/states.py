"""A render's states and stages, as stored in `video_renders.status` and `.stage`.

The values are the names of render.v1.Render.State and render.v1.Stage without their
prefix, lower case; being `StrEnum`s they compare equal to, and store as, those strings.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a render is in its life (`video_renders.status`)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Stage(StrEnum):
    """What a render's current attempt is doing (`video_renders.stage`)."""

    QUEUED = "queued"
    BUNDLING = "bundling"
    RENDERING = "rendering"
    ENCODING = "encoding"
    UPLOADING = "uploading"
    DONE = "done"


# A render in one of these states will still change; one in TERMINAL never will.
ACTIVE: frozenset[State] = frozenset({State.QUEUED, State.RUNNING})
TERMINAL: frozenset[State] = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
# The stages an engine reports while it works (between QUEUED and DONE).
WORKING_STAGES: frozenset[Stage] = frozenset(
    {Stage.BUNDLING, Stage.RENDERING, Stage.ENCODING, Stage.UPLOADING}
)
