"""deploy/lambda/deploy.sh refuses before anything runs, offline against a fake `npx`:
missing credentials, bad options, a failing CLI command, no node, version pins that
disagree (in a copy of the repo layout).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from tests.support.deploy_lambda import (
    SCRIPT,
    calls,
    changed,
    copy_tree,
    fake_fonts,
    needs_node,
    needs_remotion,
    run,
)

# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            {"AWS_SECRET_ACCESS_KEY": None},
            "an AWS access key id is set but no secret access key",
        ),
    ],
)
@needs_remotion
def test_missing_credentials_fail_clearly(
    sandbox: dict[str, Any], extra: dict[str, str | None], message: str
) -> None:
    result = run(changed(sandbox["env"], extra))
    assert result.returncode != 0
    assert message in result.stderr
    assert "deploy.sh: error:" in result.stderr
    assert calls(sandbox["log"]) == []
    assert result.stdout == ""


@needs_remotion
def test_default_profile_in_credentials_file_is_accepted(sandbox: dict[str, Any]) -> None:
    credentials = sandbox["tmp"] / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIAFAKE\n")
    result = run(
        sandbox["env"],
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "99999"], "--memory must be between 512 and 10240"),
        (["--disk=100"], "--disk must be between 512 and 10240"),
        (["--timeout", "901"], "--timeout must be between 15 and 900"),
        (["--timeout", "ten"], "--timeout must be an integer"),
        (["--site-name", "has space"], "--site-name 'has space' may only contain"),
        (["--region", "mars"], "is not an AWS region"),
        (["--render-mode", "cloud"], "--render-mode must be ssr, lambda or auto"),
        (["--site-name"], "--site-name needs a value"),
        (["--bogus"], "unknown option '--bogus'"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    sandbox: dict[str, Any], args: list[str], message: str
) -> None:
    result = run(sandbox["env"], *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert calls(sandbox["log"]) == []


@needs_remotion
@pytest.mark.parametrize("failing", ["functions", "sites"])
def test_a_failing_cli_command_stops_the_deploy(sandbox: dict[str, Any], failing: str) -> None:
    result = run(sandbox["env"], FAKE_NPX_FAIL=failing)
    assert result.returncode != 0
    assert "AccessDenied" in result.stderr  # the CLI's own error passes through
    assert f"'remotion lambda {failing} " in result.stderr
    assert result.stdout == ""
    assert len(calls(sandbox["log"])) == (1 if failing == "functions" else 2)


def test_missing_node_is_reported(sandbox: dict[str, Any]) -> None:
    bin_dir = sandbox["tmp"] / "bare-bin"
    bin_dir.mkdir()
    dirname = shutil.which("dirname")
    assert dirname
    (bin_dir / "dirname").symlink_to(dirname)
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run(
        [bash, str(SCRIPT)],
        env={**sandbox["env"], "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "'node' is not on PATH" in result.stderr


@needs_node
@pytest.mark.parametrize(
    ("py_pin", "npm_pin", "installed", "message"),
    [
        ("4.0.526", "4.0.527", "4.0.527", "Version mismatch"),
        ("4.0.527", "4.0.527", "4.0.500", "installed @remotion/lambda is 4.0.500"),
        ("4.0.527", "4.0.527", None, "is not installed"),
    ],
)
def test_version_pins_must_agree(
    sandbox: dict[str, Any], py_pin: str, npm_pin: str, installed: str | None, message: str
) -> None:
    script = copy_tree(sandbox["tmp"], py_pin, npm_pin, installed)
    result = run(sandbox["env"], script=script)
    assert result.returncode != 0
    assert message in result.stderr
    assert calls(sandbox["log"]) == []


@needs_node
def test_copied_tree_with_matching_pins_deploys(sandbox: dict[str, Any]) -> None:
    script = copy_tree(sandbox["tmp"], "4.0.527", "4.0.527", "4.0.527")
    fonts = fake_fonts(sandbox["tmp"])
    result = run(sandbox["env"], script=script, RENDER_FONTS_DIR=str(fonts))
    assert result.returncode == 0, result.stderr
    assert calls(sandbox["log"])[0]["cwd"] == str(script.parents[2] / "remotion")
