"""render: the command-line client of render-export.

Addresses come from RENDER_API_ADDR (127.0.0.1:50051) and PROGRESS_ADDR (127.0.0.1:50052);
the token from RENDER_TOKEN, or one minted with the local JWT settings for RENDER_USER
(default $USER), which suits the local stack. Exit codes: 0 ok, 1 render failed or was
cancelled, 2 usage/config, 3 not found, 4 invalid argument, 5 refused (quota, cost,
state), 6 service unavailable, 7 authentication, 8 other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import grpc
from render.v1 import render_pb2, render_service_pb2, render_service_pb2_grpc

from render_common.config import ConfigError
from render_common.config.client import ClientSettings
from render_common.renders.states import State
from render_common.resources import (
    ENGINE_TO_PROTO,
    FORMAT_TO_PROTO,
    QUALITY_TO_PROTO,
    STATE_TO_PROTO,
)
from render_common.tokens import mint_session_token, mint_token
from services.cli import output
from services.cli.client import (
    EXIT_OK,
    EXIT_RENDER_FAILED,
    EXIT_USAGE,
    Endpoints,
    describe_error,
)
from services.cli.media_options import add_media_options, add_poster_option, media_fields
from services.cli.options import add_output_options, output_fields
from services.cli.scenes import ScenesFileError, load_scenes
from services.cli.watch import watch_render

# The stored names (render_common.resources), plus "default": the service chooses.
FORMATS = FORMAT_TO_PROTO
QUALITIES = QUALITY_TO_PROTO
ENGINES = {"default": render_pb2.ENGINE_UNSPECIFIED, **ENGINE_TO_PROTO}
STATES = {str(state): STATE_TO_PROTO[state] for state in State}


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    root = argparse.ArgumentParser(
        prog="render", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--json", action="store_true", help="machine-readable output")
    root.add_argument(
        "--user", help="mint a token for this user (local stack) instead of RENDER_USER"
    )
    commands = root.add_subparsers(dest="command", required=True)

    def spec_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "scenes", type=Path, help='JSON file: {"projectId": ..., "scenes": [...]}'
        )
        command.add_argument("--format", choices=FORMATS, default="mp4")
        command.add_argument("--quality", choices=QUALITIES, default="medium")
        command.add_argument("--engine", choices=ENGINES, default="default")
        add_output_options(command)
        add_media_options(command)

    start = commands.add_parser("start", help="start a render from a scenes file")
    spec_options(start)
    start.add_argument("--project", help="project id (default: the file's projectId)")
    start.add_argument(
        "--request-id", default="", help="idempotency key: a retry returns the same render"
    )
    start.add_argument("--watch", action="store_true", help="follow progress until it ends")
    add_poster_option(start)
    estimate = commands.add_parser("estimate", help="price a render without starting it")
    spec_options(estimate)
    watch = commands.add_parser(
        "watch", help="follow a render's progress (resumes if the stream drops)"
    )
    watch.add_argument("render_id")
    get = commands.add_parser("get", help="show a render")
    get.add_argument("render_id")
    listing = commands.add_parser("list", help="list your renders, newest first")
    listing.add_argument("--project", default="")
    listing.add_argument("--state", action="append", choices=STATES, default=[])
    listing.add_argument("--limit", type=int, default=20)
    cancel = commands.add_parser("cancel", help="cancel a queued or running render")
    cancel.add_argument("render_id")
    commands.add_parser("quota", help="show your limits and usage")
    token = commands.add_parser(
        "token", help="print a JWT for USER that the running config accepts"
    )
    token.add_argument("user")
    token.add_argument(
        "--ttl", type=int, help="lifetime in seconds (default 24 h; 15 min with --session)"
    )
    token.add_argument(
        "--session",
        action="store_true",
        help="a short-lived browser session token for the edge (cookie or ?access_token=)",
    )
    return root


Stub = render_service_pb2_grpc.RenderServiceStub
Metadata = tuple[tuple[str, str], ...]


async def run(args: argparse.Namespace, settings: ClientSettings) -> int:
    """Execute one subcommand; returns the exit code."""
    endpoints = Endpoints.from_env(settings, args.user)
    if args.command == "watch":
        return await _watch(endpoints, args.render_id, args.json)
    async with grpc.aio.insecure_channel(endpoints.render_api) as channel:
        stub = render_service_pb2_grpc.RenderServiceStub(channel)
        md = endpoints.metadata
        if args.command == "start":
            render = await _start(stub, md, args)
            if args.watch:
                return await _watch(endpoints, render.render_id, args.json)
            return _show(args, render, output.render_summary)
        if args.command == "estimate":
            _, scenes = load_scenes(args.scenes)
            request = render_service_pb2.EstimateRenderRequest(scenes=scenes, **_spec_fields(args))
            return _show(
                args, await stub.EstimateRender(request, metadata=md), output.estimate_summary
            )
        if args.command == "get":
            request_get = render_service_pb2.GetRenderRequest(render_id=args.render_id)
            render = (await stub.GetRender(request_get, metadata=md)).render
            return _show(args, render, output.render_summary)
        if args.command == "cancel":
            request_cancel = render_service_pb2.CancelRenderRequest(render_id=args.render_id)
            render = (await stub.CancelRender(request_cancel, metadata=md)).render
            return _show(args, render, output.render_summary)
        if args.command == "list":
            return await _list(stub, md, args)
        if args.command == "quota":
            quota = await stub.GetQuota(render_service_pb2.GetQuotaRequest(), metadata=md)
            return _show(args, quota, output.quota_summary)
    raise AssertionError(args.command)


def _spec_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The fields StartRenderRequest and EstimateRenderRequest share, from the flags."""
    return {
        "format": FORMATS[args.format],
        "quality": QUALITIES[args.quality],
        "engine": ENGINES[args.engine],
        **output_fields(args),
        **media_fields(args),
    }


async def _start(stub: Stub, md: Metadata, args: argparse.Namespace) -> render_pb2.Render:
    """Start the render of the scenes file; says so on stderr when it is to be watched."""
    project, scenes = load_scenes(args.scenes)
    request = render_service_pb2.StartRenderRequest(
        project_id=args.project or project or "cli",
        scenes=scenes,
        request_id=args.request_id,
        **_spec_fields(args),
    )
    response: render_service_pb2.StartRenderResponse = await stub.StartRender(request, metadata=md)
    render = response.render
    if args.watch and not args.json:
        note = "Ctrl-C stops watching, not the render"
        print(f"render {render.render_id} queued; watching ({note})", file=sys.stderr)
    return render


async def _list(stub: Stub, md: Metadata, args: argparse.Namespace) -> int:
    listed = await stub.ListRenders(
        render_service_pb2.ListRendersRequest(
            page_size=max(1, min(args.limit, 100)),
            project_id=args.project,
            states=[STATES[s] for s in args.state],
        ),
        metadata=md,
    )
    if args.json:
        output.print_json(listed)
        return EXIT_OK
    for render in listed.renders:
        print(output.render_row(render))
    if not listed.renders:
        print("no renders")
    return EXIT_OK


def _show(args: argparse.Namespace, message: Any, summary: Callable[[Any], str]) -> int:
    """Print a response as JSON (--json) or as its summary; EXIT_OK."""
    if args.json:
        output.print_json(message)
    else:
        print(summary(message))
    return EXIT_OK


async def _watch(endpoints: Endpoints, render_id: str, as_json: bool) -> int:
    bar = output.ProgressBar()

    def on_event(event: Any) -> None:
        if as_json:
            print(output.as_json(event).replace("\n", " "))
        else:
            bar.update(event)

    final = await watch_render(endpoints, render_id, on_event, on_gap=bar.note)
    bar.finish()
    if as_json:
        return EXIT_OK if final.state == render_pb2.Render.STATE_SUCCEEDED else EXIT_RENDER_FAILED
    print(output.render_summary(final))
    return EXIT_OK if final.state == render_pb2.Render.STATE_SUCCEEDED else EXIT_RENDER_FAILED


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `render` command; returns the exit code.

    Run as the program (`argv` None: the `render` script, `python -m services.cli`), it
    ends the process itself once the output is flushed: the interpreter's teardown
    after a grpc import costs 0.3-0.5 s of wall time (grpc's shutdown) that the user
    would wait for with nothing left to do.
    """
    code = command(argv)
    if argv is None:
        exit_now(code)
    return code


def exit_now(code: int) -> NoReturn:
    """Flush stdout/stderr and end the process without the interpreter's teardown."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 120  # what Python's own exit returns when stdout cannot be flushed
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def command(argv: list[str] | None) -> int:
    """Parse `argv` (None: sys.argv) and run the command; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        settings = ClientSettings.from_env()
    except ConfigError as exc:
        print(f"render: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "token":
        if args.session:
            print(mint_session_token(settings, args.user, ttl_seconds=args.ttl or 900))
        else:
            print(mint_token(settings, args.user, ttl_seconds=args.ttl or 24 * 3600))
        return EXIT_OK
    try:
        return asyncio.run(run(args, settings))
    except ScenesFileError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as exc:
        line, code = describe_error(exc)
        print(f"render: {line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
