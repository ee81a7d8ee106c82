"""Assemble the edge: routes, the Connect applications, CORS, and the uvicorn server."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from render.v1 import progress_service_pb2 as ps
from render.v1 import render_service_pb2 as rs
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from render_common.config import Settings
from render_common.errors import NotFound, RenderExportError
from services.edge.auth import Authenticator, Caller
from services.edge.connect import connect_apps
from services.edge.errors import status_of, status_of_rpc_error
from services.edge.feeds import FeedHub
from services.edge.files import RenderFiles
from services.edge.login import Login
from services.edge.sse import EventCache, error_response, open_stream
from services.edge.upstream import Upstream

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# Headers a browser may send cross-origin (Connect, gRPC-Web, SSE resume) and may read.
ALLOW_HEADERS = [
    "authorization",
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    "grpc-timeout",
    "last-event-id",
    "x-grpc-web",
    "x-user-agent",
]
EXPOSE_HEADERS = ["grpc-status", "grpc-message", "grpc-status-details-bin"]
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' https: data:; media-src 'self' https:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


class Edge:
    """The edge's request handlers around one Upstream."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.auth = Authenticator(settings)
        self.login = Login(settings, self.auth, PAGE_HEADERS)
        self.files = RenderFiles(settings)
        self.samples = Path(settings.remotion_dir) / "samples"
        self.upstream: Upstream | None = None
        self.events = EventCache()
        self.hub = FeedHub(settings.edge_heartbeat_seconds)

    @property
    def up(self) -> Upstream:
        """The upstream channels (open while the app runs)."""
        assert self.upstream is not None, "the edge is not started"
        return self.upstream

    def caller(self, request: Request) -> Caller:
        """The caller of an HTTP route (header, cookie, or ?access_token= on GET)."""
        return self.auth.caller(
            request.headers, request.method, request.query_params.get("access_token")
        )

    async def watch_render(self, request: Request) -> Response:
        """GET /v1/renders/{render_id}/events: one render's progress as SSE."""
        try:
            caller = self.caller(request)
        except RenderExportError as exc:
            return error_response(status_of(exc))
        after = _resume_id(request)
        render_id = request.path_params["render_id"]
        request_message = ps.WatchRenderRequest(render_id=render_id, after_event_id=after)
        return await open_stream(
            self.hub,
            lambda: self.up.progress.WatchRender(request_message, metadata=caller.metadata),
            partial(self.events.format, "render"),
            key=None if after else (caller.user, render_id),
            resumed=bool(after),
        )

    async def watch_renders(self, request: Request) -> Response:
        """GET /v1/renders/events: all of the caller's renders as SSE (a dashboard)."""
        try:
            caller = self.caller(request)
        except RenderExportError as exc:
            return error_response(status_of(exc))
        query = request.query_params
        after = _resume_id(request)
        request_message = ps.WatchRendersRequest(
            project_id=query.get("project_id", ""),
            include_active=query.get("include_active", "true").lower() != "false",
            after_event_id=after,
        )
        return await open_stream(
            self.hub,
            lambda: self.up.progress.WatchRenders(request_message, metadata=caller.metadata),
            partial(self.events.format, "renders"),
            key=None,
            resumed=bool(after),
        )

    async def render_file(self, request: Request) -> Response:
        """GET /v1/renders/{render_id}/output and .../thumbnail: download as the owner."""
        if request.path_params["which"] not in ("output", "thumbnail"):
            return error_response(status_of(NotFound("no such route", reason="NO_ROUTE")))
        try:
            caller = self.caller(request)
            reply = await self.up.renders.GetRender(
                rs.GetRenderRequest(render_id=request.path_params["render_id"]),
                metadata=caller.metadata,
            )
            return self.files.response(reply.render, request.path_params["which"])
        except RenderExportError as exc:
            return error_response(status_of(exc))
        except grpc.aio.AioRpcError as exc:
            return error_response(status_of_rpc_error(exc))

    async def whoami(self, request: Request) -> Response:
        """GET /v1/session: who the page is signed in as (401 when not)."""
        try:
            caller = self.caller(request)
        except RenderExportError as exc:
            return error_response(status_of(exc))
        return JSONResponse({"user": caller.user})

    async def page(self, _: Request) -> Response:
        """GET /: the export page."""
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    async def sample_list(self, _: Request) -> Response:
        """GET /samples: the sample scene files the page offers."""
        return JSONResponse(sorted(p.name for p in self.samples.glob("*.json")))

    async def sample(self, request: Request) -> Response:
        """GET /samples/{name}: one sample scenes file (remotion/samples)."""
        name = request.path_params["name"]
        path = self.samples / name
        if "/" in name or not name.endswith(".json") or not path.is_file():
            return error_response(status_of(NotFound(f"no sample {name}", reason="NO_SAMPLE")))
        return FileResponse(path, media_type="application/json")

    async def health(self, _: Request) -> Response:
        """GET /healthz: the process answers (liveness)."""
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        """Open the upstream channels for the app's lifetime."""
        self.upstream = Upstream.connect(self.settings)
        self.hub.start()
        try:
            yield
        finally:
            await self.hub.stop()
            await self.upstream.close()

    def routes(self) -> list[BaseRoute]:
        """Every route of the edge."""
        apps = [Mount(app.path, app=app) for app in self._connect()]
        return [
            Route("/", self.page),
            Route("/healthz", self.health),
            Route("/login", self.login.form, methods=["GET"]),
            Route("/login", self.login.submit, methods=["POST"]),
            Route("/logout", self.login.logout, methods=["POST"]),
            Route("/v1/session", self.whoami),
            Route("/v1/renders/events", self.watch_renders),
            Route("/v1/renders/{render_id}/events", self.watch_render),
            Route("/v1/renders/{render_id}/{which:str}", self.render_file),
            Route("/samples", self.sample_list),
            Route("/samples/{name}", self.sample),
            Mount("/static", app=StaticFiles(directory=STATIC)),
            *apps,
        ]

    def _connect(self) -> list[Any]:
        return connect_apps(lambda: self.up, self.auth, self.settings.max_message_bytes)


def _resume_id(request: Request) -> str:
    """Last-Event-ID (a browser's reconnect), else ?after_event_id=."""
    return request.headers.get("last-event-id") or request.query_params.get("after_event_id", "")


def create_app(settings: Settings) -> Starlette:
    """The edge as an ASGI application."""
    edge = Edge(settings)
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.edge_allowed_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS,
            max_age=600,
        )
    ]
    app = Starlette(routes=edge.routes(), middleware=middleware, lifespan=edge.lifespan)
    app.state.edge = edge
    return app
