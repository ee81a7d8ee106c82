"""The render host's own suite (remotion/test, node --test): protocol, renders, static holds.

It renders with real Chromium and Remotion, so it is marked slow like the worker tests.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from render_common.config import ROOT

pytestmark = pytest.mark.slow


def test_render_host_node_suite() -> None:
    """`npm test` in remotion/ passes (unit tests of the frame plan, host end to end)."""
    npm = shutil.which("npm")
    assert npm, "npm is needed (make setup installs Node's packages with it)"
    result = subprocess.run(
        [npm, "test", "--silent"],
        cwd=ROOT / "remotion",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = [line for line in result.stdout.splitlines() if line.startswith(("not ok", "# "))]
    assert result.returncode == 0, "\n".join(summary[-60:]) + result.stderr[-4000:]
