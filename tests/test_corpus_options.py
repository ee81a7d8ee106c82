"""Realistic editor requests with the output options (tests/corpus/options/*.json).

Each set holds the scenes and the request's other fields in the proto JSON form
(`options`: aspect ratio, fps, size, codec, transparency, soundtrack, captions, poster
frame), what StartRender must answer (`"expect"`: "accepted", the BadRequest field paths,
or a status name) and, where given, what EstimateRender must resolve (`estimate`). The
sets marked `"render": true` are rendered for real by an SSR worker against the local asset
server (`@ASSETS@`), and end as `outcome` says (SUCCEEDED at the estimated shape unless told).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import json_format
from render.v1 import render_pb2, render_service_pb2

from render_common.config import Settings
from tests.support.asset_server import AssetServer
from tests.support.processes import RedisServer, sqlite_url
from tests.support.rpc import rich_error
from tests.support.stack import Stack, ffprobe, start_stack
from tests.test_corpus import PLACEHOLDER_BASE, materialise

SETS = Path(__file__).parent / "corpus" / "options"
ESTIMATED = ("width", "height", "fps", "framesTotal")


def option_sets() -> list[dict[str, Any]]:
    """Every set, in file order."""
    return [json.loads(path.read_text()) for path in sorted(SETS.glob("*.json"))]


def request_json(scene_set: dict[str, Any], base: str) -> dict[str, Any]:
    """The set's StartRenderRequest in proto JSON, placeholders filled in."""
    fields = {"format": "FORMAT_MP4", "quality": "QUALITY_LOW", "engine": "ENGINE_SSR"}
    fields |= {"projectId": f"corpus-{scene_set['name']}"[:128], "scenes": scene_set["scenes"]}
    filled: dict[str, Any] = materialise(fields | scene_set["options"], base)
    return filled


def start_request(scene_set: dict[str, Any], base: str) -> render_service_pb2.StartRenderRequest:
    return json_format.ParseDict(
        request_json(scene_set, base), render_service_pb2.StartRenderRequest()
    )


def estimate_request(scene_set: dict[str, Any]) -> render_service_pb2.EstimateRenderRequest:
    fields = request_json(scene_set, PLACEHOLDER_BASE)
    for start_only in ("projectId", "posterFrame"):
        fields.pop(start_only, None)
    return json_format.ParseDict(fields, render_service_pb2.EstimateRenderRequest())


@pytest_asyncio.fixture
async def stack_on(base_settings: Settings, tmp_path: Path, user: str) -> AsyncIterator[Any]:
    """Start a stack on a Redis of the test's own and SQLite, with room for every set."""
    redis = RedisServer()
    redis.start()
    stacks: list[Stack] = []

    async def start(**overrides: Any) -> Stack:
        stack_options = overrides.pop("stack", {})
        settings = base_settings.with_overrides(
            redis_url=redis.url,
            database_url=sqlite_url(tmp_path, "options.db"),
            data_dir=str(tmp_path / "data"),
            daily_render_limit=1000,
            concurrent_render_limit=1000,
            **overrides,
        )
        stacks.append(await start_stack(settings, user, **stack_options))
        return stacks[-1]

    yield start
    for stack in stacks:
        await stack.close()
    redis.close()


async def answer(stack: Stack, scene_set: dict[str, Any]) -> Any:
    """ "accepted", the sorted BadRequest paths, or the status name (with its message)."""
    try:
        await stack.stub.StartRender(
            start_request(scene_set, PLACEHOLDER_BASE), metadata=stack.auth
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return sorted(rich_error(error).field_violations)
        return error.code().name
    return "accepted"


async def estimate_mismatch(stack: Stack, scene_set: dict[str, Any]) -> str | None:
    reply = await stack.stub.EstimateRender(estimate_request(scene_set), metadata=stack.auth)
    got = json_format.MessageToDict(reply)
    want = scene_set["estimate"]
    seen = {key: got.get(key) for key in ESTIMATED}
    if seen != {key: want[key] for key in ESTIMATED} or not reply.within_budget:
        return f"estimate {seen}, within budget {reply.within_budget}; want {want}"
    return None


def test_the_option_sets_cover_the_editor_cases() -> None:
    sets = option_sets()
    options = [s["options"] for s in sets]
    assert {o.get("fps") for o in options} >= {24, 25, 50, 60}
    assert {o.get("aspectRatio") for o in options} >= {
        "ASPECT_RATIO_9_16",
        "ASPECT_RATIO_1_1",
        "ASPECT_RATIO_4_5",
    }
    assert any("redirect" in o.get("soundtrack", {}).get("src", "") for o in options)
    assert any(s.get("estimate", {}).get("width") == 3840 for s in sets)
    assert 2 <= len([s for s in sets if s.get("render")]) <= 3


async def test_every_option_set_is_validated_and_priced(stack_on: Any) -> None:
    stack: Stack = await stack_on(stack={"worker": False})
    mismatches: list[str] = []
    for scene_set in option_sets():
        got = await answer(stack, scene_set)
        expected = scene_set["expect"]
        if got != (sorted(expected) if isinstance(expected, list) else expected):
            mismatches.append(f"{scene_set['name']}: expected {expected}, got {got}")
        elif "estimate" in scene_set and (problem := await estimate_mismatch(stack, scene_set)):
            mismatches.append(f"{scene_set['name']}: {problem}")
    assert not mismatches, "\n".join(mismatches)


def check_rendered(scene_set: dict[str, Any], done: render_pb2.Render) -> None:
    """A succeeded render at the estimated shape, with its captions sidecar."""
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, (scene_set["name"], done.error)
    want = scene_set["estimate"]
    probe = ffprobe(Path(done.output_url.removeprefix("file://")))
    video = probe["video"]
    assert (video["width"], video["height"]) == (want["width"], want["height"])
    assert video["r_frame_rate"] == f"{want['fps']}/1"
    # Every frame once: two static holds back to back (a title's, then a colour card's)
    # made 117 frames of 90 before the encoder was told where the composition ends.
    assert video["nb_frames"] == want["framesTotal"], video
    seconds = int(want["framesTotal"]) / want["fps"]
    assert abs(float(probe["format"]["duration"]) - seconds) < 0.1, probe["format"]
    if "captions" in scene_set["options"]:
        sidecar = Path(done.captions_url.removeprefix("file://")).read_text()
        assert sidecar.startswith("WEBVTT") and "-->" in sidecar


@pytest.mark.slow
async def test_option_sets_render(stack_on: Any) -> None:
    assets = AssetServer()
    try:
        stack: Stack = await stack_on(asset_allowed_networks=("127.0.0.1/32",))
        base = assets.url("")
        rendering = [s for s in option_sets() if s.get("render")]
        started = [
            await stack.stub.StartRender(start_request(s, base), metadata=stack.auth)
            for s in rendering
        ]
        for scene_set, reply in zip(rendering, started, strict=True):
            done = await stack.wait(reply.render.render_id, timeout=300)
            outcome = scene_set.get("outcome")
            if outcome is None:
                check_rendered(scene_set, done)
                continue
            assert render_pb2.Render.State.Name(done.state) == outcome["state"], done
            assert done.error.reason == outcome["reason"] and not done.error.retryable
            assert assets.url("/redirect-to") in done.error.message  # the client's URL
    finally:
        assets.close()
