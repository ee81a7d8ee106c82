"""Assemble the edge: routes, the Connect applications, CORS, and the uvicorn server."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import uvicorn
from render.v1 import progress_service_pb2 as ps
from render.v1 import render_service_pb2 as rs
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from render_common.config import Settings
from render_common.errors import NotFound, RenderExportError
from render_common.listen import bound_socket
from render_common.runner import service_settings
from services.edge.auth import SESSION_COOKIE, Authenticator, Caller
from services.edge.connect import connect_apps
from services.edge.errors import status_of, status_of_rpc_error
from services.edge.files import RenderFiles
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
        self.files = RenderFiles(settings)
        self.samples = Path(settings.remotion_dir) / "samples"
        self.upstream: Upstream | None = None
        self.events = EventCache()

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
        call = self.up.progress.WatchRender(
            ps.WatchRenderRequest(render_id=request.path_params["render_id"], after_event_id=after),
            metadata=caller.metadata,
        )
        return await open_stream(
            call,
            self.settings.edge_heartbeat_seconds,
            resumed=bool(after),
            formatter=partial(self.events.format, "render"),
        )

    async def watch_renders(self, request: Request) -> Response:
        """GET /v1/renders/events: all of the caller's renders as SSE (a dashboard)."""
        try:
            caller = self.caller(request)
        except RenderExportError as exc:
            return error_response(status_of(exc))
        query = request.query_params
        after = _resume_id(request)
        call = self.up.progress.WatchRenders(
            ps.WatchRendersRequest(
                project_id=query.get("project_id", ""),
                include_active=query.get("include_active", "true").lower() != "false",
                after_event_id=after,
            ),
            metadata=caller.metadata,
        )
        return await open_stream(
            call,
            self.settings.edge_heartbeat_seconds,
            resumed=bool(after),
            formatter=partial(self.events.format, "renders"),
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

    async def login(self, request: Request) -> Response:
        """GET /login?token=<session token>: set the HttpOnly session cookie, go to the page."""
        try:
            caller = self.auth.session(request.query_params.get("token", ""))
        except RenderExportError as exc:
            return error_response(status_of(exc))
        claims = self.auth.verifier.decode(caller.token)
        target = request.query_params.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        response = RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            caller.token,
            max_age=max(int(claims["exp"]) - int(time.time()), 0),
            httponly=True,
            secure=self.settings.edge_cookie_secure,
            samesite="lax",
            path="/",
        )
        return response

    async def logout(self, _: Request) -> Response:
        """POST /logout: forget the session cookie."""
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

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
        try:
            yield
        finally:
            await self.upstream.close()

    def routes(self) -> list[BaseRoute]:
        """Every route of the edge."""
        apps = [Mount(app.path, app=app) for app in self._connect()]
        return [
            Route("/", self.page),
            Route("/healthz", self.health),
            Route("/login", self.login),
            Route("/logout", self.logout, methods=["POST"]),
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
    return app


def server(settings: Settings, *, port: int | None = None) -> tuple[uvicorn.Server, Any]:
    """A uvicorn server for the edge (uvloop, httptools) and its bound socket."""
    config = uvicorn.Config(
        create_app(settings),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        backlog=8192,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    sock = bound_socket(settings.bind_host, settings.edge_port if port is None else port)
    return uvicorn.Server(config), sock


def main() -> None:
    """Run the edge until SIGTERM/SIGINT."""
    settings = service_settings("edge")  # uvicorn below handles the signals and the stop
    srv, sock = server(settings)
    log.info("edge serving", extra={"port": sock.getsockname()[1]})
    srv.run(sockets=[sock])
