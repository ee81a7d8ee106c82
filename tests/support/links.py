"""Helpers for download links in tests: when a presigned URL was signed, waiting it out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

OUTPUT_COLUMNS = (
    "output_url",
    "output_key",
    "thumbnail_url",
    "thumbnail_key",
    "storage",
    "storage_location",
)


def signed_at(url: str) -> datetime:
    """The X-Amz-Date of a presigned URL."""
    query = dict(parse_qsl(urlsplit(url).query))
    return datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def expires_in(url: str) -> int:
    """The X-Amz-Expires of a presigned URL."""
    return int(dict(parse_qsl(urlsplit(url).query))["X-Amz-Expires"])


async def wait_until_expired(url: str) -> None:
    """Sleep until a presigned URL has expired (S3 counts whole seconds)."""
    deadline = signed_at(url) + timedelta(seconds=expires_in(url) + 1.2)
    await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()))


async def download(url: str) -> httpx.Response:
    """A plain HTTP GET, as a browser following the link would."""
    async with httpx.AsyncClient() as client:
        return await client.get(url)


def row_values(user: str, render_id: str, **columns: Any) -> dict[str, Any]:
    """A succeeded `video_renders` row (columns override; output columns default to None)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": render_id,
        "user_id": user,
        "project_id": "links",
        "status": "succeeded",
        "stage": "done",
        "progress": 1.0,
        "format": "mp4",
        "quality": "low",
        "engine": "ssr",
        "requested_engine": "ssr",
        "spec": {"scenes": []},
        "scene_count": 1,
        "frames_total": 30,
        "attempt": 1,
        "retry_count": 0,
        "cancel_requested": False,
        "created_at": now,
        "completed_at": now,
        "updated_at": now,
    }
    for column in OUTPUT_COLUMNS:
        values[column] = None
    values.update(columns)
    return values
