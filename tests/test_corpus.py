"""A corpus of realistic scene sets (tests/corpus/*.json), as a video editor sends them.

Each set says what render_api must answer: `"expect": "accepted"` (StartRender over real
gRPC queues it) or the list of BadRequest field paths it is refused with (content that is
truly invalid). Accepted sets list their `assets`: exactly the URLs the catalogue's asset
props hold, which is what the SSR prefetch fetches and the Lambda engine checks; text is
never among them, whatever it holds. The sets marked `"render": true` are rendered for real
by the SSR engine against the local asset server (`@ASSETS@` and `@HOSTPORT@` in a set
stand for its base URL and host:port), and the server's log proves no text was fetched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import pytest_asyncio
from render.v1 import render_pb2

from render_common.config import Settings
from render_common.scene_assets import AssetCatalogue
from tests.support.asset_server import AssetServer
from tests.support.processes import RedisServer, sqlite_url
from tests.support.rpc import rich_error
from tests.support.scenes import scene_messages
from tests.support.stack import Stack, ffprobe, start_stack

CORPUS = Path(__file__).parent / "corpus"
PLACEHOLDER_BASE = "http://assets.example.com:8080"  # for sets only validated, never fetched


def corpus() -> list[dict[str, Any]]:
    """Every scene set of the corpus, in file order."""
    return [json.loads(path.read_text()) for path in sorted(CORPUS.glob("*.json"))]


def materialise(value: Any, base: str) -> Any:
    """A copy of a set's JSON with the asset server placeholders filled in."""
    if isinstance(value, str):
        return value.replace("@ASSETS@", base).replace("@HOSTPORT@", urlsplit(base).netloc)
    if isinstance(value, list):
        return [materialise(item, base) for item in value]
    if isinstance(value, dict):
        return {key: materialise(item, base) for key, item in value.items()}
    return value


def test_the_corpus_is_broad() -> None:
    sets = corpus()
    names = [s["name"] for s in sets]
    assert len(sets) >= 40 and len(set(names)) == len(names)
    accepted = [s for s in sets if s["expect"] == "accepted"]
    refused = [s for s in sets if s["expect"] != "accepted"]
    assert len(accepted) >= 30 and len(refused) >= 10
    assert all(isinstance(s["expect"], list) and s["expect"] for s in refused)
    rendered = [s for s in sets if s.get("render")]
    assert 3 <= len(rendered) <= 6 and all(s["expect"] == "accepted" for s in rendered)
    kinds = {scene["type"] for s in sets for scene in s["scenes"]}
    assert {"title", "text", "image", "video"} <= kinds


@pytest.mark.parametrize(
    "scene_set",
    [s for s in corpus() if s["expect"] == "accepted"],
    ids=lambda s: str(s["name"]),
)
def test_asset_urls_are_the_asset_props_only(scene_set: dict[str, Any]) -> None:
    """The prefetch list (and the Lambda check's list) holds the set's assets, no text."""
    scenes = materialise(scene_set["scenes"], PLACEHOLDER_BASE)
    expected = materialise(scene_set["assets"], PLACEHOLDER_BASE)
    assert AssetCatalogue.load().urls(scenes) == expected


@pytest_asyncio.fixture
async def private_redis() -> AsyncIterator[RedisServer]:
    """A Redis of this test's own: its queued corpus renders reach no other test's worker."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def asset_server() -> Iterator[AssetServer]:
    server = AssetServer()
    yield server
    server.close()


def corpus_settings(
    base: Settings, redis: RedisServer, tmp_path: Path, **overrides: Any
) -> Settings:
    return base.with_overrides(
        redis_url=redis.url,
        database_url=sqlite_url(tmp_path, "corpus.db"),
        data_dir=str(tmp_path / "data"),
        daily_render_limit=1000,
        concurrent_render_limit=1000,
        **overrides,
    )


async def test_every_set_is_validated_by_render_api(
    base_settings: Settings, private_redis: RedisServer, tmp_path: Path, user: str
) -> None:
    stack = await start_stack(
        corpus_settings(base_settings, private_redis, tmp_path), user, worker=False
    )
    mismatches: list[str] = []
    try:
        for scene_set in corpus():
            scenes = materialise(scene_set["scenes"], PLACEHOLDER_BASE)
            try:
                render = await stack.start(
                    scene_messages(scenes),
                    project=f"corpus-{scene_set['name']}",
                    engine=render_pb2.ENGINE_SSR,
                )
            except grpc.aio.AioRpcError as error:
                details = rich_error(error)
                got: Any = sorted(details.field_violations)
                if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    got = f"{error.code().name}: {error.details()}"
            else:
                assert render.state == render_pb2.Render.STATE_QUEUED
                assert render.scene_count == len(scenes)
                got = "accepted"
            expected = scene_set["expect"]
            if got != (expected if expected == "accepted" else sorted(expected)):
                mismatches.append(f"{scene_set['name']}: expected {expected}, got {got}")
    finally:
        await stack.close()
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.slow
async def test_sample_renders_with_text_as_text(
    base_settings: Settings,
    private_redis: RedisServer,
    tmp_path: Path,
    user: str,
    asset_server: AssetServer,
) -> None:
    base = asset_server.url("")
    settings = corpus_settings(
        base_settings, private_redis, tmp_path, asset_allowed_networks=("127.0.0.1/32",)
    )
    stack: Stack = await start_stack(settings, user)
    sample = [materialise(s, base) for s in corpus() if s.get("render")]
    try:
        started = [
            (
                scene_set,
                await stack.start(
                    scene_messages(scene_set["scenes"]),
                    project=f"corpus-{scene_set['name']}",
                    engine=render_pb2.ENGINE_SSR,
                ),
            )
            for scene_set in sample
        ]
        for scene_set, render in started:
            done = await stack.wait(render.render_id)
            assert done.state == render_pb2.Render.STATE_SUCCEEDED, (scene_set["name"], done.error)
            output = Path(done.output_url.removeprefix("file://"))
            probe = ffprobe(output)
            assert int(probe["video"]["nb_frames"]) == render.frames_total > 0
    finally:
        await stack.close()
    # Every asset was fetched (once: the cache), and nothing else: no text, ever.
    assets = [url for scene_set in sample for url in scene_set["assets"]]
    fetched = asset_server.paths()
    assert sorted(set(fetched)) == sorted(
        {urlsplit(url).path for url in assets} | {"/image.png"}  # the redirect's target
    )
    assert len(fetched) == len(assets) + 1
    assert not [path for path in fetched if "never-fetched" in path]
