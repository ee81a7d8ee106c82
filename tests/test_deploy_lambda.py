"""deploy/lambda/ checked offline: deploy.sh runs against a fake `npx` that logs its argv and
prints what the Remotion 4.0.x CLI prints with --quiet; nothing reaches AWS."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from render_common.config import ROOT

LAMBDA_DIR = ROOT / "deploy" / "lambda"
SCRIPT = LAMBDA_DIR / "deploy.sh"
IAM = LAMBDA_DIR / "iam"
REMOTION = ROOT / "remotion"
BUCKET = "remotionlambda-useast1-abcdefghij"
HEX64 = re.compile(r"[0-9a-f]{64}")
SOURCE_AND_PRINT = 'source "$1" && printf "%s|%s" "$REMOTION_BUCKET" "$RENDER_MODE"'
EXPORT = re.compile(r"^export ([A-Z_]+)='([^']*)'$")

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# The fake CLI. `functions deploy --quiet` prints only the function name
# (@remotion/lambda dist/cli/commands/functions/deploy.js); `sites create --quiet` hides the
# progress bars but still prints its facts, "Serve URL" padded to 20 columns
# (dist/cli/commands/sites/create.js, @remotion/cli printFact), in colour when it is forced.
FAKE_NPX = r"""
import json, os, sys

argv = sys.argv[1:]
# What `sites create` would bundle into the site from the public dir: the fonts.
fonts_dir = os.path.join(os.getcwd(), "public", "fonts")
public_fonts = {name: os.path.getsize(os.path.join(fonts_dir, name))
                for name in sorted(os.listdir(fonts_dir))} if os.path.isdir(fonts_dir) else {}
with open(os.environ["FAKE_NPX_LOG"], "a") as log:
    log.write(json.dumps({"argv": argv, "cwd": os.getcwd(),
                          "no_color": os.environ.get("NO_COLOR"),
                          "public_fonts": public_fonts}) + "\n")
while argv and argv[0].startswith("-"):
    argv.pop(0)
assert argv[:2] == ["remotion", "lambda"], argv
flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
command = argv[2:4]
print("npm warn exec some npm noise on stderr", file=sys.stderr)
if os.environ.get("FAKE_NPX_FAIL") == command[0]:
    print("An error occurred:")
    print("AccessDenied: not authorized to perform lambda:CreateFunction", file=sys.stderr)
    sys.exit(1)
if command == ["functions", "deploy"]:
    assert "--quiet" in argv
    print("remotion-render-4-0-527-mem%smb-disk%smb-%ssec"
          % (flags["memory"], flags["disk"], flags["timeout"]))
elif command == ["sites", "create"]:
    region = flags["region"]
    url = "https://%s.s3.%s.amazonaws.com/sites/%s/index.html" % (
        os.environ["FAKE_BUCKET"], region, flags["site-name"])
    blue = lambda s: "\x1b[94m%s\x1b[39m" % s
    print(blue("Serve URL".ljust(20) + " " + url))
    print(blue("Site name".ljust(20) + " " + flags["site-name"]))
    print()
    print(blue("\u2139\ufe0f   Redeploy your site everytime you make changes to it. "
               "You can overwrite the existing site by running:"))
    print(blue("npx remotion lambda sites create %s --site-name=%s" % (argv[4], flags["site-name"])))
else:
    sys.exit("unexpected command %r" % argv)
"""


def make_fake_npx(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    npx = bin_dir / "npx"
    npx.write_text(f"#!{sys.executable}\n{textwrap.dedent(FAKE_NPX)}")
    npx.chmod(npx.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Any]:
    bin_dir = tmp_path / "bin"
    make_fake_npx(bin_dir)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),  # no ~/.aws/credentials
        "LANG": "C.UTF-8",
        "FAKE_NPX_LOG": str(tmp_path / "npx.log"),
        "FAKE_BUCKET": BUCKET,
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
    }
    return {"env": env, "log": tmp_path / "npx.log", "tmp": tmp_path}


def changed(env: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    """`env` with some variables set, and those given as None removed."""
    full = dict(env)
    for key, value in changes.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return full


def run(
    env: dict[str, str], *args: str, script: Path = SCRIPT, **extra: str | None
) -> subprocess.CompletedProcess[str]:
    full = changed(env, extra)
    return subprocess.run(
        ["bash", str(script), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def exports(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        match = EXPORT.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def remotion_installed() -> bool:
    return (REMOTION / "node_modules" / "@remotion" / "lambda" / "package.json").is_file()


needs_remotion = pytest.mark.skipif(
    not remotion_installed() or shutil.which("node") is None,
    reason="remotion/node_modules is not installed (make setup)",
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


def copy_tree(tmp: Path, py_pin: str, npm_pin: str, installed: str | None) -> Path:
    """A minimal copy of the repo layout deploy.sh expects, with chosen version pins."""
    root = tmp / "repo"
    (root / "deploy" / "lambda").mkdir(parents=True)
    script = root / "deploy" / "lambda" / "deploy.sh"
    shutil.copy2(SCRIPT, script)
    (root / "pyproject.toml").write_text(f'dependencies = [\n  "remotion-lambda=={py_pin}",\n]\n')
    remotion = root / "remotion"
    (remotion / "src").mkdir(parents=True)
    (remotion / "src" / "index.ts").write_text("// entry\n")
    for part in ("src/fonts.json", "lib/fonts.mjs", "scripts/stage-fonts.mjs"):
        (remotion / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REMOTION / part, remotion / part)
    (remotion / "package.json").write_text(
        json.dumps({"dependencies": {"@remotion/lambda": npm_pin}})
    )
    if installed is not None:
        package = remotion / "node_modules" / "@remotion" / "lambda"
        package.mkdir(parents=True)
        (package / "package.json").write_text(json.dumps({"version": installed}))
    return script


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


def font_files() -> list[dict[str, str]]:
    manifest = json.loads((REMOTION / "src" / "fonts.json").read_text())
    return [
        {**face, "package": family["package"]}
        for family in manifest["families"]
        for face in family["faces"]
    ]


def fake_fonts(tmp: Path) -> Path:
    """A RENDER_FONTS_DIR with a small stand-in file per font (a copy tree gets these)."""
    fonts = tmp / "installed-fonts"
    fonts.mkdir(exist_ok=True)
    for i, face in enumerate(font_files()):
        (fonts / face["file"]).write_bytes(b"f" * (100 + i))
    return fonts


@needs_node
def test_copied_tree_with_matching_pins_deploys(sandbox: dict[str, Any]) -> None:
    script = copy_tree(sandbox["tmp"], "4.0.527", "4.0.527", "4.0.527")
    fonts = fake_fonts(sandbox["tmp"])
    result = run(sandbox["env"], script=script, RENDER_FONTS_DIR=str(fonts))
    assert result.returncode == 0, result.stderr
    assert calls(sandbox["log"])[0]["cwd"] == str(script.parents[2] / "remotion")


# --- fonts: the site carries them ----------------------------------------------------------


@needs_remotion
def test_the_site_is_created_with_the_fonts_in_its_public_dir(sandbox: dict[str, Any]) -> None:
    """Lambda's Chromium has only its own fonts: `sites create` bundles remotion/public,
    so every font of src/fonts.json is there (as installed by Debian) when it runs."""
    result = run(sandbox["env"])
    assert result.returncode == 0, result.stderr
    _, site_call = calls(sandbox["log"])
    assert site_call["argv"][3:5] == ["sites", "create"]
    expected = {face["file"]: Path(face["source"]).stat().st_size for face in font_files()}
    assert site_call["public_fonts"] == expected
    assert "remotion/public/fonts (the site carries them)" in result.stderr


@needs_node
def test_missing_fonts_stop_the_deploy_before_anything_runs(sandbox: dict[str, Any]) -> None:
    script = copy_tree(sandbox["tmp"], "4.0.527", "4.0.527", "4.0.527")
    empty = sandbox["tmp"] / "no-fonts"
    empty.mkdir()
    result = run(sandbox["env"], script=script, RENDER_FONTS_DIR=str(empty))
    assert result.returncode != 0
    assert "FONTS_MISSING" in result.stderr
    for package in ("fonts-noto-cjk", "fonts-noto-color-emoji", "fonts-noto-core", "make setup"):
        assert package in result.stderr
    assert calls(sandbox["log"]) == []
    # A dry run only warns (and copies nothing).
    dry = run(sandbox["env"], "--dry-run", script=script, RENDER_FONTS_DIR=str(empty))
    assert dry.returncode == 0, dry.stderr
    assert "warning: FONTS_MISSING" in dry.stderr
    assert not list((script.parents[2] / "remotion" / "public" / "fonts").glob("*"))


@pytest.mark.slow
@needs_remotion
def test_the_site_bundle_carries_the_font_files(tmp_path: Path) -> None:
    """Bundled as `sites create` bundles (the default public dir, copied, not linked), the
    site holds every font as a real file, so the upload to S3 carries it."""
    subprocess.run(
        ["node", "scripts/stage-fonts.mjs"], cwd=REMOTION, check=True, capture_output=True
    )
    out = tmp_path / "site"
    script = (
        "const {bundle} = await import('@remotion/bundler');"
        f"await bundle({{entryPoint: 'src/index.ts', outDir: {json.dumps(str(out))},"
        " enableCaching: true});"
    )
    subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=REMOTION,
        check=True,
        capture_output=True,
        timeout=600,
    )
    for face in font_files():
        bundled = out / "public" / "fonts" / face["file"]
        assert not bundled.is_symlink() and not bundled.parent.is_symlink()
        assert bundled.stat().st_size == Path(face["source"]).stat().st_size, face
    assert "fonts/NotoSansCJK-Regular.ttc" in (out / "index.html").read_text()


def test_repo_pins_match_the_python_sdk() -> None:
    npm_pin = json.loads((REMOTION / "package.json").read_text())["dependencies"][
        "@remotion/lambda"
    ]
    py_pin = re.search(r'"remotion-lambda==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert py_pin and py_pin.group(1) == npm_pin
    import remotion_lambda

    assert npm_pin == remotion_lambda.VERSION
    if remotion_installed():
        installed = REMOTION / "node_modules" / "@remotion" / "lambda" / "package.json"
        assert json.loads(installed.read_text())["version"] == npm_pin


# --- IAM ---------------------------------------------------------------------------------


def actions(policy: dict[str, Any]) -> dict[str, list[str]]:
    """Action -> resources."""
    found: dict[str, list[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            found.setdefault(action, []).extend(statement["Resource"])
    return found


def test_iam_policies_parse_and_grant_what_renders_need() -> None:
    role = actions(json.loads((IAM / "role-policy.json").read_text()))
    user = actions(json.loads((IAM / "user-policy.json").read_text()))
    for policy in (role, user):
        assert "arn:aws:lambda:*:*:function:remotion-render-*" in policy["lambda:InvokeFunction"]
        for action in ("s3:GetObject", "s3:PutObject"):
            assert "arn:aws:s3:::remotionlambda-*" in policy[action]
    for action in ("lambda:CreateFunction", "lambda:GetFunction", "s3:CreateBucket"):
        assert action in user
    assert user["iam:PassRole"] == ["arn:aws:iam::*:role/remotion-lambda-role"]
    readme = (IAM / "README.md").read_text()
    assert "remotion-lambda-role" in readme
    assert "lambda:InvokeFunction" in readme


@needs_remotion
@pytest.mark.parametrize("kind", ["role", "user"])
def test_iam_policies_match_the_installed_remotion(kind: str) -> None:
    """Fails after a Remotion upgrade until the policies are regenerated (iam/README.md)."""
    printed = subprocess.run(
        [str(REMOTION / "node_modules" / ".bin" / "remotion"), "lambda", "policies", kind],
        cwd=REMOTION,
        env={**os.environ, "NO_COLOR": "1", "AWS_REGION": "us-east-1", "REMOTION_AWS_REGION": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    saved = (IAM / f"{kind}-policy.json").read_text()
    assert json.loads(printed.stdout) == json.loads(saved)
