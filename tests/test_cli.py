"""The `render` command against a running stack, as a user runs it (a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from render_common.config import ROOT, Settings
from tests.support.processes import free_port
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.slow
TINY = ROOT / "remotion" / "samples" / "tiny.json"


@pytest_asyncio.fixture
async def stack(
    base_settings: Settings, postgres_url: str, tmp_path: Path, user: str
) -> AsyncIterator[Stack]:
    settings = base_settings.with_overrides(
        database_url=postgres_url, data_dir=str(tmp_path / "data"), progress_port=free_port()
    )
    running = await start_stack(settings, user)
    from services.progress import app as progress_app

    progress = await progress_app.start(settings, port=settings.progress_port)
    yield running
    await progress.stop(0)
    await running.close()


async def render_cli(stack: Stack, *args: str) -> tuple[int, str, str]:
    """Run `render ARGS` against the stack; (exit code, stdout, stderr)."""
    env = {
        **os.environ,
        "RENDER_API_ADDR": f"127.0.0.1:{stack.api.port}",
        "PROGRESS_ADDR": f"127.0.0.1:{stack.settings.progress_port}",
        "JWT_SECRET": stack.settings.jwt_secret,
        "RENDER_USER": stack.user,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_start_watch_get_list_quota_estimate(stack: Stack) -> None:
    code, out, err = await render_cli(stack, "start", str(TINY), "--quality", "low", "--watch")
    assert code == 0, err
    assert "state    succeeded" in out and "output   file://" in out
    assert "%" in err and "frames" in err  # the progress bar
    code, out, _ = await render_cli(stack, "--json", "list")
    renders = json.loads(out)["renders"]
    assert code == 0 and len(renders) == 1 and renders[0]["state"] == "STATE_SUCCEEDED"
    render_id = renders[0]["render_id"]
    code, out, _ = await render_cli(stack, "get", render_id)
    assert code == 0 and render_id in out and "h264" in out
    code, out, _ = await render_cli(stack, "quota")
    assert code == 0 and "1/50 renders" in out
    code, out, _ = await render_cli(stack, "estimate", str(TINY))
    assert code == 0 and "within budget" in out and "20 frames" in out


async def test_errors_are_one_line_with_meaningful_exit_codes(stack: Stack, tmp_path: Path) -> None:
    code, _, err = await render_cli(stack, "get", "00000000-0000-4000-8000-000000000000")
    assert code == 3 and err.strip().count("\n") == 0
    assert err.startswith("render: NOT_FOUND (RENDER_NOT_FOUND):")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {"projectId": "p", "scenes": [{"type": "nope", "durationInFrames": 10, "props": {}}]}
        )
    )
    code, _, err = await render_cli(stack, "start", str(bad))
    assert code == 4 and "INVALID_ARGUMENT" in err and "scenes[0].type" in err
    code, _, err = await render_cli(stack, "start", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    env_down = await render_cli(stack, "cancel", "00000000-0000-4000-8000-000000000000")
    assert env_down[0] == 3


async def test_unavailable_service_exit_code() -> None:
    env = {**os.environ, "RENDER_API_ADDR": f"127.0.0.1:{free_port()}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "quota", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 6 and b"UNAVAILABLE" in err
