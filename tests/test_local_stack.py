"""`make up` / `make down`: the supervisor starts everything, restarts a crash, stops it all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is dead too.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def sign_in_from_the_printed_link(stdout: str, edge_port: str) -> None:
    """The printed sign-in link opens the export page as RENDER_USER (stack-page-user)."""
    link = next(w for w in stdout.split() if "/login?token=" in w)
    assert link.startswith(f"http://127.0.0.1:{edge_port}/login?token=")
    with httpx.Client(timeout=10) as browser:
        # The link shows whose account it is; its button POSTs the sign-in form.
        form = browser.get(link)
        assert "Continue as stack-page-user" in form.text
        base = link.split("/login")[0]
        token = link.split("token=", 1)[1]
        page = browser.post(
            f"{base}/login",
            data={"token": token, "next": "/"},
            headers={"origin": base},
            follow_redirects=True,
        )
        assert page.status_code == 200 and "Export video" in page.text
        assert browser.get(f"{link.split('/login')[0]}/v1/session").json() == {
            "user": "stack-page-user"
        }


def test_up_restart_down(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RENDER_DATA_DIR": str(tmp_path / "data"),
        "RENDER_API_PORT": str(free_port()),
        "PROGRESS_PORT": str(free_port()),
        "WORKER_HEALTH_PORT": str(free_port()),
        "EDGE_PORT": str(free_port()),
        "RENDER_USER": "stack-page-user",
        "LOG_FORMAT": "text",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "services.local_stack"]
    up = subprocess.run([*command, "up"], env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "render_api  127.0.0.1:" in up.stdout and "SERVING" in up.stdout
    state = json.loads((tmp_path / "data" / "stack" / "state.json").read_text())
    children = state["children"]
    assert set(children) == {"redis", "render_api", "progress", "worker", "edge"}
    # The schema was migrated once, by the migrate command, before the services started.
    migrate_log = (tmp_path / "data" / "logs" / "migrate.log").read_text()
    assert "schema migrated: empty -> " in migrate_log
    try:
        sign_in_from_the_printed_link(up.stdout, env["EDGE_PORT"])
        # A crashed service is restarted by the supervisor.
        os.kill(children["render_api"], signal.SIGKILL)
        again = subprocess.run(
            [*command, "up"], env=env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0 and "already running" in again.stdout
        log = (tmp_path / "data" / "logs" / "supervisor.log").read_text()
        assert "render_api exited" in log and "render_api restarted" in log
    finally:
        down = subprocess.run(
            [*command, "down"], env=env, capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0 and "stopped" in down.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in children.values()):
        time.sleep(0.2)
    assert not [name for name, pid in children.items() if alive(pid)]
    assert not (tmp_path / "data" / "stack" / "state.json").exists()
