"""A Node client built from protos/ alone (tests/polyglot/client.mjs) against the real stack.

render_api, a worker and progress run in this process; the tokens come from `render token
USER`, as README says; the client runs StartRender with the output options, EstimateRender,
WatchRender to the end, GetRender, a refused request decoded into google.rpc.BadRequest and
another user's CancelRender. Its own node:assert checks fail the run; the JSON it prints is
checked again here against the files on disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from render_common.config import ROOT, Settings
from services.progress import app as progress_app
from tests.support.asset_server import AssetServer
from tests.support.stack import Stack, ffprobe, start_stack

pytestmark = pytest.mark.slow
POLYGLOT = ROOT / "tests" / "polyglot"


@pytest_asyncio.fixture
async def stack(
    base_settings: Settings, postgres_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Stack, int, AssetServer]]:
    """render_api + worker, progress and an asset server; (stack, progress port, assets)."""
    settings = base_settings.with_overrides(
        database_url=postgres_url,
        data_dir=str(tmp_path / "data"),
        asset_allowed_networks=("127.0.0.1/32",),
    )
    assets = AssetServer()
    running = await start_stack(settings, f"user-{uuid.uuid4().hex[:12]}")
    progress = await progress_app.start(settings, port=0)
    yield running, progress.port, assets
    await progress.stop(0)
    await running.close()
    assets.close()


async def run(*args: str, env: dict[str, str], cwd: Path = ROOT) -> str:
    """Run a command; its stdout (stderr in the failure message)."""
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, f"{args[:2]} exited {process.returncode}: {err.decode()}"
    return out.decode()


async def cli_token(settings: Settings, user: str) -> str:
    """`render token USER` with the stack's JWT settings, as README shows."""
    env = {**os.environ, "JWT_SECRET": settings.jwt_secret}
    out = await run(sys.executable, "-m", "services.cli", "token", user, env=env)
    return out.strip()


def local(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(url[len("file://") :])


async def test_node_client_from_the_protos_alone(
    stack: tuple[Stack, int, AssetServer],
) -> None:
    running, progress_port, assets = stack
    if not (POLYGLOT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("tests/polyglot has no node_modules: run `make setup`")
    env = {
        **os.environ,
        "RENDER_API_ADDR": f"127.0.0.1:{running.api.port}",
        "PROGRESS_ADDR": f"127.0.0.1:{progress_port}",
        "RENDER_TOKEN": await cli_token(running.settings, running.user),
        "OTHER_TOKEN": await cli_token(running.settings, f"other-{running.user}"),
        "SOUNDTRACK_URL": assets.url("/redirect/tone-3s.wav"),
    }
    seen: dict[str, Any] = json.loads(await run("node", "client.mjs", env=env, cwd=POLYGLOT))
    assert seen["bad_request"]["code"] == "INVALID_ARGUMENT"
    assert {"fps", "width"} <= set(seen["bad_request"]["fields"])
    assert seen["cancel"]["other_user"] == "NOT_FOUND"
    assert "KIND_SNAPSHOT" in seen["events"]["kinds"]
    output = ffprobe(local(seen["render"]["output_url"]))
    assert (output["video"]["width"], output["video"]["height"]) == (720, 720)
    assert output["video"]["r_frame_rate"] == "25/1"
    assert local(seen["render"]["thumbnail_url"]).stat().st_size > 0
    assert "Hello from Node" in local(seen["render"]["captions_url"]).read_text()
