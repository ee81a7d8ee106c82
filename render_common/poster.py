"""The poster frame: which frame of the video the thumbnail shows.

The caller may choose it (StartRenderRequest.poster_frame, counted from 0 at the render's
fps, within the video); otherwise it is one second in (frame 30 at 30 fps), past the
scenes' entrance animations (frame 0 is often blank), or the last frame of a shorter
video. render_api stores the resolved frame on the render (`poster_frame`); both engines
render the thumbnail at it (SSR: the render host's thumbnail step; Lambda:
renderStillOnLambda).
"""

from __future__ import annotations

DEFAULT_POSTER_SECONDS = 1
DEFAULT_FPS = 30


def default_poster_frame(frames_total: int, fps: int = DEFAULT_FPS) -> int:
    """One second in, or the last frame of a shorter video."""
    return max(min(frames_total - 1, (fps or DEFAULT_FPS) * DEFAULT_POSTER_SECONDS), 0)


def poster_frame_problem(frame: int, frames_total: int) -> str | None:
    """Why `frame` cannot be the poster of a video of `frames_total` frames, or None."""
    if 0 <= frame < frames_total:
        return None
    return f"must be a frame of the video: between 0 and {max(frames_total - 1, 0)}"


def resolve_poster_frame(requested: int | None, frames_total: int, fps: int = DEFAULT_FPS) -> int:
    """The requested frame, or the default; clamped into the video (older rows)."""
    if requested is None:
        return default_poster_frame(frames_total, fps)
    return max(min(requested, frames_total - 1), 0)
