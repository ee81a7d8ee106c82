"""deploy/lambda/deploy.sh checked offline against a fake `npx` (tests/support/deploy_lambda.py):
the script itself, and a deploy: the seed sizes, the worker's env block, options, dry runs.
Refusals: test_deploy_lambda_refusals.py; fonts and IAM: test_deploy_lambda_fonts_iam.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.support.deploy_lambda import (
    BUCKET,
    HEX64,
    REMOTION,
    SCRIPT,
    SOURCE_AND_PRINT,
    calls,
    exports,
    needs_remotion,
    run,
)

# --- the script itself -------------------------------------------------------------------


def test_script_is_executable_bash_and_parses() -> None:
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in SCRIPT.read_text()
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(
        ["shellcheck", "--severity=style", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_help_lists_the_options(sandbox: dict[str, Any]) -> None:
    result = run(sandbox["env"], "--help")
    assert result.returncode == 0
    for option in ("--region", "--site-name", "--memory", "--disk", "--timeout", "--dry-run"):
        assert option in result.stdout
    assert not calls(sandbox["log"])


# --- a deploy against the fake CLI -------------------------------------------------------


@needs_remotion
def test_deploy_passes_the_seed_sizes_and_prints_the_worker_env(sandbox: dict[str, Any]) -> None:
    result = run(sandbox["env"])
    assert result.returncode == 0, result.stderr

    function_call, site_call = calls(sandbox["log"])
    for call in (function_call, site_call):
        assert call["cwd"] == str(REMOTION)
        assert call["no_color"] == "1"
        assert call["argv"][:3] == ["--no-install", "remotion", "lambda"]
        assert "--quiet" in call["argv"]
        assert "--region=us-east-1" in call["argv"]
    # Flag names from @remotion/lambda 4.0.527 dist/cli/commands/functions/deploy.js.
    assert function_call["argv"][3:5] == ["functions", "deploy"]
    assert {"--memory=3008", "--disk=10240", "--timeout=900"} <= set(function_call["argv"])
    assert site_call["argv"][3:6] == ["sites", "create", "src/index.ts"]
    assert "--site-name=render-export" in site_call["argv"]
    assert not any(a.startswith("--privacy") for a in site_call["argv"])

    env = exports(result.stdout)
    function = "remotion-render-4-0-527-mem3008mb-disk10240mb-900sec"
    serve_url = f"https://{BUCKET}.s3.us-east-1.amazonaws.com/sites/render-export/index.html"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["REMOTION_FUNCTION_NAME"] == function
    assert env["REMOTION_SERVE_URL"] == serve_url
    assert env["REMOTION_BUCKET"] == BUCKET
    assert env["REMOTION_FRAMES_PER_LAMBDA"] == "20"
    assert env["REMOTION_MAX_RETRIES"] == "3"
    assert env["REMOTION_TIMEOUT_SECONDS"] == "900"
    assert HEX64.fullmatch(env["WEBHOOK_SECRET"])
    assert env["RENDER_MODE"] == "auto"
    assert "WEBHOOK_URL" not in env  # unset: a commented placeholder only
    assert "# export WEBHOOK_URL='https://<public host>/webhooks/remotion'" in result.stdout
    assert "WEBHOOK_URL is not set" in result.stderr
    # stdout is only the env block; everything else is on stderr.
    for line in result.stdout.splitlines():
        assert line.startswith(("export ", "# ")), line
    assert "npx --no-install remotion lambda functions deploy" in result.stderr

    # The block is valid shell: source it and read the values back.
    env_file = sandbox["tmp"] / "lambda.env"
    env_file.write_text(result.stdout)
    sourced = subprocess.run(
        ["bash", "-c", SOURCE_AND_PRINT, "-", str(env_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert sourced.stdout == f"{BUCKET}|auto"


@needs_remotion
def test_secrets_are_fresh_per_run(sandbox: dict[str, Any]) -> None:
    first = exports(run(sandbox["env"]).stdout)["WEBHOOK_SECRET"]
    second = exports(run(sandbox["env"]).stdout)["WEBHOOK_SECRET"]
    assert first != second


@needs_remotion
def test_options_env_and_existing_secret_are_honoured(sandbox: dict[str, Any]) -> None:
    secret = "s" * 40
    result = run(
        sandbox["env"],
        "--region",
        "eu-central-1",
        "--site-name=staging-site",
        "--memory",
        "2048",
        "--disk=4096",
        "--timeout",
        "600",
        "--render-mode",
        "lambda",
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
        AWS_PROFILE="render-deploy",
        WEBHOOK_SECRET=secret,
        WEBHOOK_URL="https://render.example.com/webhooks/remotion",
        REMOTION_FRAMES_PER_LAMBDA="40",
        REMOTION_PRIVACY="no-acl",
    )
    assert result.returncode == 0, result.stderr
    function_call, site_call = calls(sandbox["log"])
    assert {"--region=eu-central-1", "--memory=2048", "--disk=4096", "--timeout=600"} <= set(
        function_call["argv"]
    )
    assert {"--site-name=staging-site", "--region=eu-central-1", "--privacy=no-acl"} <= set(
        site_call["argv"]
    )
    env = exports(result.stdout)
    assert env["AWS_REGION"] == "eu-central-1"
    assert env["REMOTION_FUNCTION_NAME"] == "remotion-render-4-0-527-mem2048mb-disk4096mb-600sec"
    assert env["REMOTION_SERVE_URL"].startswith(f"https://{BUCKET}.s3.eu-central-1.amazonaws.com/")
    assert env["REMOTION_TIMEOUT_SECONDS"] == "600"
    assert env["REMOTION_FRAMES_PER_LAMBDA"] == "40"
    assert env["REMOTION_PRIVACY"] == "no-acl"
    assert env["WEBHOOK_SECRET"] == secret
    assert env["WEBHOOK_URL"] == "https://render.example.com/webhooks/remotion"
    assert env["RENDER_MODE"] == "lambda"
    assert "WEBHOOK_URL is not set" not in result.stderr


@needs_remotion
def test_dry_run_runs_nothing(sandbox: dict[str, Any]) -> None:
    result = run(sandbox["env"], "--dry-run", AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    assert result.returncode == 0, result.stderr
    assert calls(sandbox["log"]) == []
    assert "no AWS credentials" in result.stderr  # a warning in a dry run
    assert (
        "npx --no-install remotion lambda functions deploy --region=us-east-1 --memory=3008"
        " --disk=10240 --timeout=900 --quiet" in result.stderr
    )
    assert (
        "npx --no-install remotion lambda sites create src/index.ts"
        " --site-name=render-export --region=us-east-1 --quiet" in result.stderr
    )
    env = exports(result.stdout)
    assert env["REMOTION_FUNCTION_NAME"] == "remotion-render-4-0-527-mem3008mb-disk10240mb-900sec"
    assert "DRY RUN" in result.stdout
