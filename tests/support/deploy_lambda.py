"""deploy/lambda/deploy.sh's test rig: the script run against a fake `npx` that logs its argv
and prints what the Remotion 4.0.x CLI prints with --quiet (nothing reaches AWS), a copy of
the repo layout with chosen version pins, and stand-in fonts. `sandbox` is a fixture
(registered in tests/conftest.py); the rest are helpers the test_deploy_lambda* modules share.
"""

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
    """Write the fake `npx` into `bin_dir`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    npx = bin_dir / "npx"
    npx.write_text(f"#!{sys.executable}\n{textwrap.dedent(FAKE_NPX)}")
    npx.chmod(npx.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Any]:
    """The fake `npx` first on PATH, test AWS keys, no ~/.aws: the env, the npx log, tmp."""
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
    """Run the script (or a copy of it) with `env`, changed by `extra`."""
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
    """The fake npx's logged calls."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def exports(stdout: str) -> dict[str, str]:
    """The `export NAME='value'` lines of the script's output."""
    found = {}
    for line in stdout.splitlines():
        match = EXPORT.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def remotion_installed() -> bool:
    """Whether remotion/node_modules holds @remotion/lambda."""
    return (REMOTION / "node_modules" / "@remotion" / "lambda" / "package.json").is_file()


needs_remotion = pytest.mark.skipif(
    not remotion_installed() or shutil.which("node") is None,
    reason="remotion/node_modules is not installed (make setup)",
)


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


def font_files() -> list[dict[str, str]]:
    """Every font face of remotion/src/fonts.json, with its package."""
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
