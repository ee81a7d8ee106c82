"""The edge in front of real render_api and progress, for the tests/test_edge*.py modules.

`stack` (module-scoped: render_api + progress in this process on SQLite, the edge in its
own process with a short heartbeat and one allowed origin) and `client` are fixtures,
registered in tests/conftest.py. The helpers speak plain HTTP: Connect as raw JSON POSTs,
SSE parsed line by line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from render_common.auth import mint_token
from render_common.config import Settings
from render_common.events import ProgressEvent, publish_event
from services.progress import app as progress_app
from services.render_api import app as api_app
from tests.support.edge import EdgeProcess
from tests.support.processes import sqlite_url

ALLOWED = "https://editor.example"
HEARTBEAT = 0.4
TINY = {
    "projectId": "edge",
    "scenes": [{"type": "color", "durationInFrames": 30, "props": {"color": "red"}}],
    "format": "FORMAT_MP4",
    "quality": "QUALITY_LOW",
}


@dataclass
class EdgeStack:
    """render_api and progress in this process, the edge in its own."""

    settings: Settings
    edge: EdgeProcess
    progress_port: int

    @property
    def url(self) -> str:
        """The edge's base URL."""
        return self.edge.url

    def token(self, user: str) -> str:
        """An ordinary bearer token."""
        return mint_token(self.settings, user)

    def headers(self, user: str) -> dict[str, str]:
        """Request headers carrying a user's bearer token."""
        return {"authorization": f"Bearer {self.token(user)}"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EdgeStack]:
    """render_api + progress on SQLite, and the edge with a short heartbeat."""
    directory = tmp_path_factory.mktemp("edge")
    settings = base_settings.with_overrides(database_url=sqlite_url(directory))
    api = await api_app.start(settings, port=0, run_sweeper=False)
    progress = await progress_app.start(settings, port=0)
    edge = EdgeProcess(
        settings,
        render_api_port=api.port,
        progress_port=progress.port,
        log=directory / "edge.log",
        EDGE_HEARTBEAT_SECONDS=str(HEARTBEAT),
        EDGE_ALLOWED_ORIGINS=ALLOWED,
        EDGE_SESSION_MAX_TTL_SECONDS="600",
    )
    await asyncio.to_thread(edge.start)
    yield EdgeStack(settings, edge, progress.port)
    await asyncio.to_thread(edge.stop)
    await progress.stop(0)
    await api.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def start_render(stack: EdgeStack, http: httpx.AsyncClient, user: str) -> dict[str, Any]:
    """StartRender over Connect with a raw JSON POST; returns the render as JSON."""
    reply = await http.post(
        f"{stack.url}/render.v1.RenderService/StartRender",
        json=TINY,
        headers={**stack.headers(user), "connect-protocol-version": "1"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    render: dict[str, Any] = reply.json()["render"]
    assert render["state"] == "STATE_QUEUED"
    return render


async def publish(redis: Redis, render_id: str, user: str, progress: float) -> str:
    """One running event as the worker writes it; returns its id."""
    return await publish_event(
        redis,
        ProgressEvent(
            render_id=render_id,
            state="running",
            stage="rendering",
            progress=progress,
            frames_rendered=round(progress * 30),
            frames_total=30,
        ),
        user_id=user,
    )


@dataclass
class Message:
    """One SSE message."""

    id: str | None
    event: str
    data: dict[str, Any]


class SseReader:
    """Parses a text/event-stream response line by line (comments kept apart)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments: list[str] = []
        self.retry: str | None = None

    async def next(self, timeout: float = 10.0) -> Message | None:
        """The next message, or None when the stream ends."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line == "":
                    if "data" in fields:
                        return Message(
                            fields.get("id"),
                            fields.get("event", "message"),
                            json.loads(fields["data"]),
                        )
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "retry":
                    self.retry = value
                else:
                    fields[name] = value
        return None

    async def rest(self) -> list[Message]:
        """Every message until the stream ends."""
        messages = []
        while (message := await self.next()) is not None:
            messages.append(message)
        return messages


async def cancel(stack: EdgeStack, http: httpx.AsyncClient, user: str, render_id: str) -> None:
    """CancelRender over Connect (a queued render is cancelled at once: the terminal event)."""
    reply = await http.post(
        f"{stack.url}/render.v1.RenderService/CancelRender",
        json={"renderId": render_id},
        headers=stack.headers(user),
    )
    assert reply.status_code == 200, reply.text
