"""A render as intake and the worker record it, for tests that read it back: the row as
intake inserts it, the outcome the worker stores, and the progress events it publishes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from render_common.db.schema import video_renders
from render_common.events import ProgressEvent, publish_event

# A full render as the worker reports it: (state, stage, progress).
RUN = [
    ("running", "bundling", 0.0),
    ("running", "rendering", 0.25),
    ("running", "rendering", 0.5),
    ("running", "rendering", 0.75),
    ("running", "encoding", 0.9),
    ("running", "uploading", 0.95),
]


async def insert_render(
    engine: AsyncEngine, user: str, *, project_id: str = "project-1", **values: Any
) -> str:
    """Insert a render row as intake does (every NOT NULL column)."""
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "project_id": project_id,
        "status": "queued",
        "stage": "queued",
        "progress": 0.0,
        "format": "mp4",
        "quality": "low",
        "engine": "ssr",
        "requested_engine": "default",
        "spec": {"scenes": [{"type": "color", "durationInFrames": 100, "props": {}}]},
        "scene_count": 1,
        "frames_total": 100,
        "attempt": 0,
        "retry_count": 0,
        "cancel_requested": False,
        "cost_estimate": {"total_usd": 0.01, "compute_usd": 0.005, "storage_usd": 0.005},
        "created_at": now,
        "updated_at": now,
        **values,
    }
    async with engine.begin() as connection:
        await connection.execute(insert(video_renders).values(**row))
    return str(row["id"])


async def finish_row(engine: AsyncEngine, render_id: str, status: str = "succeeded") -> None:
    """Record the render's outcome as the worker does before its terminal event."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": status, "stage": "done", "completed_at": now}
    if status == "succeeded":
        values.update(
            progress=1.0,
            output_url=f"https://cdn.example/{render_id}.mp4",
            thumbnail_url=f"https://cdn.example/{render_id}.jpg",
            metadata={"duration": 3.3, "fileSize": 12345, "fps": 30, "codec": "h264"},
        )
    elif status == "failed":
        values.update(error_reason="ASSET_NOT_FOUND", error_message="asset 404")
    async with engine.begin() as connection:
        await connection.execute(
            update(video_renders)
            .where(video_renders.c.id == render_id)
            .values(updated_at=now, **values)
        )


async def publish(
    redis: Redis,
    render_id: str,
    state: str,
    stage: str,
    progress: float = 0.0,
    *,
    user_id: str | None = None,
    maxlen: int = 1000,
    **fields: Any,
) -> str:
    """Publish one event as the worker does."""
    return await publish_event(
        redis,
        ProgressEvent(
            render_id=render_id,
            state=state,
            stage=stage,
            progress=progress,
            frames_rendered=round(progress * 100),
            frames_total=100,
            **fields,
        ),
        maxlen=maxlen,
        user_id=user_id,
    )


async def publish_run(redis: Redis, render_id: str, user_id: str | None = None) -> list[str]:
    """Publish a whole run up to (not including) the terminal event."""
    ids = [await publish(redis, render_id, "queued", "queued", user_id=user_id)]
    for state, stage, progress in RUN:
        ids.append(await publish(redis, render_id, state, stage, progress, user_id=user_id))
    return ids
