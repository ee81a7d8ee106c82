"""The `render` command against a running stack, as a user runs it (a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from render_common.config import ROOT
from services.progress import app as progress_app
from tests.support.stack import Stack, StackFactory

pytestmark = pytest.mark.slow
TINY = ROOT / "remotion" / "samples" / "tiny.json"


@dataclass(frozen=True)
class Cli:
    """The `render` command (a real subprocess) pointed at a stack and a progress service."""

    stack: Stack
    progress_port: int

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        """Run `render ARGS`; (exit code, stdout, stderr)."""
        env = {
            **os.environ,
            "RENDER_API_ADDR": f"127.0.0.1:{self.stack.api.port}",
            "PROGRESS_ADDR": f"127.0.0.1:{self.progress_port}",
            "JWT_SECRET": self.stack.settings.jwt_secret,
            "RENDER_USER": self.stack.user,
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


StartCli = Callable[..., Awaitable[Cli]]


@pytest_asyncio.fixture
async def cli_for(stack_factory: StackFactory) -> AsyncIterator[StartCli]:
    """A stack (a worker only if asked) and progress service, and the CLI pointed at them."""
    started: list[progress_app.Progress] = []

    async def start(*, worker: bool = False) -> Cli:
        stack = await stack_factory(worker=worker)
        progress = await progress_app.start(stack.settings, port=0)
        started.append(progress)
        return Cli(stack, progress.port)

    yield start
    for progress in started:
        await progress.stop(0)


async def test_start_watch_get_list_quota_estimate(cli_for: StartCli) -> None:
    render_cli = await cli_for(worker=True)
    code, out, err = await render_cli("start", str(TINY), "--quality", "low", "--watch")
    assert code == 0, err
    assert "state    succeeded" in out and "output   file://" in out
    assert "%" in err and "frames" in err  # the progress bar
    code, out, _ = await render_cli("--json", "list")
    renders = json.loads(out)["renders"]
    assert code == 0 and len(renders) == 1 and renders[0]["state"] == "STATE_SUCCEEDED"
    render_id = renders[0]["render_id"]
    code, out, _ = await render_cli("get", render_id)
    assert code == 0 and render_id in out and "h264" in out
    code, out, _ = await render_cli("quota")
    assert code == 0 and "1/50 renders" in out
    code, out, _ = await render_cli("estimate", str(TINY))
    assert code == 0 and "within budget" in out and "20 frames" in out


async def test_errors_are_one_line_with_meaningful_exit_codes(
    cli_for: StartCli, tmp_path: Path
) -> None:
    render_cli = await cli_for()
    code, _, err = await render_cli("get", "00000000-0000-4000-8000-000000000000")
    assert code == 3 and err.strip().count("\n") == 0
    assert err.startswith("render: NOT_FOUND (RENDER_NOT_FOUND):")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {"projectId": "p", "scenes": [{"type": "nope", "durationInFrames": 10, "props": {}}]}
        )
    )
    code, _, err = await render_cli("start", str(bad))
    assert code == 4 and "INVALID_ARGUMENT" in err and "scenes[0].type" in err
    code, _, err = await render_cli("start", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    env_down = await render_cli("cancel", "00000000-0000-4000-8000-000000000000")
    assert env_down[0] == 3


async def test_unavailable_service_exit_code() -> None:
    # A port bound and never listened on refuses connections, and nobody else can take it
    # meanwhile (a port merely free a moment ago might be someone else's by then).
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        env = {**os.environ, "RENDER_API_ADDR": f"127.0.0.1:{closed.getsockname()[1]}"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "quota", env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
    assert process.returncode == 6 and b"UNAVAILABLE" in err, err


async def test_caption_and_poster_flags_reach_the_service(
    cli_for: StartCli, tmp_path: Path
) -> None:
    render_cli = await cli_for()
    broken = tmp_path / "broken.srt"
    broken.write_text("1\n00:00:01,000 --> 00:00:00,500\nends before it starts\n")
    code, _, err = await render_cli("start", str(TINY), "--captions", str(broken))
    assert code == 4 and "captions.srt" in err, err
    code, _, err = await render_cli("start", str(TINY), "--poster-frame", "999")
    assert code == 4 and "poster_frame" in err, err
    code, _, err = await render_cli("start", str(TINY), "--captions", str(tmp_path / "no.vtt"))
    assert code == 2 and "cannot read captions" in err
