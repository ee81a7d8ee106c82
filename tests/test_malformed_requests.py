"""Undecodable request bytes against every RPC of both services, over a real channel.

A generic channel call sends raw bytes (no serializer), as a broken or hostile client
would: garbage, a truncated message, nesting past the decoder's depth limit, and a string
field holding a lone UTF-16 surrogate the way protobufjs writes it (invalid UTF-8). Each
must answer INVALID_ARGUMENT with ErrorInfo reason MALFORMED_REQUEST, with a valid token,
without one and with a bad one (decoding comes before authentication: the answer depends
only on the bytes sent), and log exactly one WARNING line without a traceback. The server
stays healthy: well-formed requests still work afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2
from google.protobuf import message as protobuf_message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from render.v1 import (
    progress_service_pb2,
    render_pb2,
    render_service_pb2,
    render_service_pb2_grpc,
)

from render_common.config import Settings
from render_common.errors import DOMAIN
from render_common.status_details import ErrorDetails, error_details
from services.progress import app as progress_app
from services.render_api import app as api_app
from tests.conftest import bearer
from tests.support.processes import sqlite_url
from tests.support.scenes import scene, simple_scenes, start_request

# protobufjs encodes a lone surrogate (U+D800) as these three bytes: not UTF-8.
LONE_SURROGATE = b"\xed\xa0\x80"
PLACEHOLDER = "@@@"  # as long as LONE_SURROGATE, so no length prefix changes
GARBAGE = b"\x00\xffnot a protobuf message\xff\xff"
STRUCT_DEPTH = 40  # the issue's ~33 levels fail; 40 is clear of the limit
GROUP_DEPTH = 120  # nested unknown groups: the only nesting a flat message has


@dataclass(frozen=True)
class Rpc:
    """One RPC: its path, whether it streams, and a well-formed request template."""

    service: str  # "render_api" or "progress"
    method: str
    streaming: bool
    template: Callable[[str], protobuf_message.Message]  # render id -> a request
    has_struct: bool = False

    @property
    def request_type(self) -> str:
        return self.template("r").DESCRIPTOR.full_name

    def payloads(self) -> dict[str, tuple[bytes, str | None]]:
        """name -> (raw bytes, the ErrorInfo `problem` expected, None = any)."""
        valid = self.template(PLACEHOLDER).SerializeToString()
        payloads: dict[str, tuple[bytes, str | None]] = {
            "garbage": (GARBAGE, "UNDECODABLE"),
            # Cut inside the last field (its value or length runs past the end).
            "truncated": (valid[:-1] if valid else b"\x7a\x05ab", "UNDECODABLE"),
        }
        if self.has_struct:
            payloads["deep_struct"] = (self._deep_struct(), "TOO_DEEP")
        else:
            # upb reports nesting past its limit inside unknown groups as corrupt wire data.
            payloads["deep_groups"] = (b"\x7b" * GROUP_DEPTH + b"\x7c" * GROUP_DEPTH, None)
        if PLACEHOLDER.encode() in valid:
            payloads["bad_utf8"] = (
                valid.replace(PLACEHOLDER.encode(), LONE_SURROGATE),
                "INVALID_UTF8",
            )
        return payloads

    def _deep_struct(self) -> bytes:
        request = self.template(PLACEHOLDER)
        props = request.scenes[0].props  # type: ignore[attr-defined]
        for _ in range(STRUCT_DEPTH):
            props = props.fields["nested"].struct_value
        props.fields["leaf"].string_value = "x"
        return bytes(request.SerializeToString())


def _estimate(text: str) -> render_service_pb2.EstimateRenderRequest:
    """An estimate whose first scene is a title showing `text` (a Struct string value)."""
    scenes = [scene("title", 30, text=text), *simple_scenes()]
    return render_service_pb2.EstimateRenderRequest(
        scenes=scenes, format=render_pb2.FORMAT_MP4, quality=render_pb2.QUALITY_LOW
    )


RS = "/render.v1.RenderService/"
PS = "/render.v1.ProgressService/"
RPCS = [
    Rpc("render_api", RS + "StartRender", False, lambda r: start_request(project_id=r), True),
    Rpc(
        "render_api",
        RS + "GetRender",
        False,
        lambda r: render_service_pb2.GetRenderRequest(render_id=r),
    ),
    Rpc(
        "render_api",
        RS + "ListRenders",
        False,
        lambda r: render_service_pb2.ListRendersRequest(page_size=10, project_id=r),
    ),
    Rpc(
        "render_api",
        RS + "CancelRender",
        False,
        lambda r: render_service_pb2.CancelRenderRequest(render_id=r),
    ),
    Rpc("render_api", RS + "EstimateRender", False, _estimate, True),
    Rpc("render_api", RS + "GetQuota", False, lambda _: render_service_pb2.GetQuotaRequest()),
    Rpc(
        "render_api",
        RS + "GetWebhookSecret",
        False,
        lambda _: render_service_pb2.GetWebhookSecretRequest(),
    ),
    Rpc(
        "render_api",
        RS + "RotateWebhookSecret",
        False,
        lambda _: render_service_pb2.RotateWebhookSecretRequest(
            grace_period=duration_pb2.Duration(seconds=60)
        ),
    ),
    Rpc(
        "progress",
        PS + "WatchRender",
        True,
        lambda r: progress_service_pb2.WatchRenderRequest(render_id=r),
    ),
    Rpc(
        "progress",
        PS + "WatchRenders",
        True,
        lambda r: progress_service_pb2.WatchRendersRequest(project_id=r, include_active=True),
    ),
]


@dataclass
class Stack:
    """render_api and progress, in-process on SQLite, and a channel to each."""

    channels: dict[str, grpc.aio.Channel]

    async def call(
        self, rpc: Rpc, payload: bytes, metadata: tuple[tuple[str, str], ...]
    ) -> bytes | ErrorDetails:
        """Send raw bytes; the first response's raw bytes, or the error's details."""
        channel = self.channels[rpc.service]
        try:
            if rpc.streaming:
                call = channel.unary_stream(rpc.method)(payload, metadata=metadata, timeout=10)
                try:
                    async for response in call:
                        return bytes(response)
                finally:
                    call.cancel()
                raise AssertionError(f"{rpc.method} ended without a message")
            return bytes(
                await channel.unary_unary(rpc.method)(payload, metadata=metadata, timeout=10)
            )
        except grpc.aio.AioRpcError as error:
            return error_details(error)


@pytest_asyncio.fixture(scope="module")
async def stack(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    directory: Path = tmp_path_factory.mktemp("malformed")
    settings = base_settings.with_overrides(database_url=sqlite_url(directory))
    api = await api_app.start(settings, port=0, run_sweeper=False)
    progress = await progress_app.start(settings, port=0)
    channels = {
        "render_api": grpc.aio.insecure_channel(f"127.0.0.1:{api.port}"),
        "progress": grpc.aio.insecure_channel(f"127.0.0.1:{progress.port}"),
    }
    yield Stack(channels)
    for channel in channels.values():
        await channel.close()
    await progress.stop(0)
    await api.stop(0)


def _tokens(token: str) -> dict[str, tuple[tuple[str, str], ...]]:
    return {
        "valid token": bearer(token),
        "no token": (),
        "bad token": (("authorization", "Bearer not-a-jwt"),),
    }


@pytest.mark.parametrize("rpc", RPCS, ids=lambda rpc: rpc.method.rsplit("/", 1)[-1])
async def test_undecodable_requests_are_malformed_request(
    rpc: Rpc,
    stack: Stack,
    user: str,
    token_for: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    token = token_for(user)
    for name, (payload, problem) in rpc.payloads().items():
        with pytest.raises(protobuf_message.DecodeError):
            type(rpc.template("r")).FromString(payload)  # the payload really is undecodable
        answers: set[str] = set()
        for who, metadata in _tokens(token).items():
            case = f"{rpc.method} {name} ({who})"
            caplog.clear()
            answer = await stack.call(rpc, payload, metadata)
            assert isinstance(answer, ErrorDetails), f"{case}: accepted"
            assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, f"{case}: {answer}"
            assert (answer.reason, answer.domain) == ("MALFORMED_REQUEST", DOMAIN), case
            assert answer.metadata["message_type"] == rpc.request_type, case
            if problem is not None:
                assert answer.metadata["problem"] == problem, case
            assert "class" not in answer.message and "Error" not in answer.message, case
            answers.add(repr((answer.message, sorted(answer.metadata.items()))))
            logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert [(r.levelno, r.name) for r in logged] == [
                (logging.WARNING, "render_common.interceptors")
            ], f"{case}: {[r.getMessage() for r in logged]}"
            assert logged[0].exc_info is None and logged[0].stack_info is None, case
            assert rpc.method in logged[0].getMessage(), case
        # The answer depends only on the bytes: the caller's identity changes nothing.
        assert len(answers) == 1, f"{rpc.method} {name}: {answers}"


async def test_well_formed_requests_work_after_malformed_ones(
    stack: Stack, user: str, token_for: Callable[[str], str]
) -> None:
    metadata = bearer(token_for(user))
    for rpc in RPCS:
        for payload, _ in rpc.payloads().values():
            assert isinstance(await stack.call(rpc, payload, metadata), ErrorDetails)
    started = await render_service_pb2_grpc.RenderServiceStub(
        stack.channels["render_api"]
    ).StartRender(start_request(project_id=f"p-{user}"), metadata=metadata, timeout=10)
    render_id = started.render.render_id
    for rpc in sorted(RPCS, key=lambda rpc: rpc.method.endswith("/CancelRender")):
        valid = rpc.template(render_id)
        if rpc.method.endswith("/StartRender"):
            valid = start_request(project_id=f"p-{user}")
        elif rpc.method.endswith(("/ListRenders", "/WatchRenders")):
            valid = type(valid)(project_id=f"p-{user}")
            if rpc.method.endswith("/WatchRenders"):
                valid.include_active = True  # type: ignore[attr-defined]
        answer = await stack.call(rpc, valid.SerializeToString(), metadata)
        assert isinstance(answer, bytes), f"{rpc.method}: {answer}"
    for channel in stack.channels.values():
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_authentication_still_guards_well_formed_requests(stack: Stack) -> None:
    """Refusing undecodable bytes first opens nothing: decodable ones still need a token."""
    for rpc in RPCS:
        for metadata in ((), (("authorization", "Bearer not-a-jwt"),)):
            answer = await stack.call(rpc, rpc.template("r").SerializeToString(), metadata)
            assert isinstance(answer, ErrorDetails), rpc.method
            assert answer.code == grpc.StatusCode.UNAUTHENTICATED, f"{rpc.method}: {answer}"


def test_every_rpc_of_the_contract_is_listed() -> None:
    """A new RPC must join RPCS, so that it is checked here too."""
    declared = {
        f"/{service.full_name}/{method.name}"
        for module in (render_service_pb2, progress_service_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert declared == {rpc.method for rpc in RPCS}
